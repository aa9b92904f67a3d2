package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ArtifactTypes are the values of the artifact_type column.
var ArtifactTypes = []string{"checkpoint", "model", "adapter", "log", "eval_report"}

// Artifact is one row of artifacts: an object a run wrote to storage.
type Artifact struct {
	ID        uuid.UUID       `db:"id" json:"id"`
	RunID     uuid.UUID       `db:"run_id" json:"run_id"`
	Type      string          `db:"artifact_type" json:"artifact_type"`
	URI       string          `db:"storage_uri" json:"storage_uri"`
	Checksum  string          `db:"checksum_sha256" json:"checksum_sha256"`
	SizeBytes int64           `db:"size_bytes" json:"size_bytes"`
	CreatedAt time.Time       `db:"created_at" json:"created_at"`
	Metadata  json.RawMessage `db:"metadata_json" json:"metadata"`
	DeletedAt *time.Time      `db:"deleted_at" json:"deleted_at,omitempty"`
}

const artifactColumns = `a.id, a.run_id, a.artifact_type::text AS artifact_type, a.storage_uri,
    a.checksum_sha256, a.size_bytes, a.created_at, a.metadata_json, a.deleted_at`

// NewArtifact is the report a run's program sends after writing an object.
type NewArtifact struct {
	RunID     uuid.UUID
	Type      string
	URI       string
	Checksum  string // lowercase hex SHA-256 of the object
	SizeBytes int64
	Metadata  json.RawMessage
	// Step is a checkpoint's training step; it becomes the run's last checkpoint, the
	// point a resumed run starts from.
	Step *int64
}

// ErrRunEnded: the run has ended and accepts no more artifacts.
var ErrRunEnded = errors.New("run has ended")

const sqlLockLiveRun = `
SELECT r.job_id, r.job_created_at FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
WHERE r.id = $1 AND r.status IN ('pending', 'running')
FOR UPDATE OF r`

const sqlFindArtifact = `SELECT ` + artifactColumns + ` FROM artifacts a
WHERE a.run_id = $1 AND a.artifact_type = $2 AND a.storage_uri = $3`

// The insert of a new artifact. A checkpoint's step goes into metadata_json as "step" too,
// because retention orders a run's checkpoints by that field and leaves alone a run whose
// checkpoints lack it. A trainer that reports its step only in the request's field would
// otherwise never have its old checkpoints deleted.
const sqlInsertArtifact = `
INSERT INTO artifacts (id, run_id, artifact_type, storage_uri, checksum_sha256, size_bytes, metadata_json)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb || CASE WHEN $8::bigint IS NULL THEN '{}'::jsonb
                                                  ELSE jsonb_build_object('step', $8::bigint) END)`

// sqlSetCheckpoint makes a checkpoint the run's last one and, when the checkpoint is
// progress, sets its job's preemptions back to 0 in the same statement, so a run end reads
// both changes or neither. A checkpoint is progress unless it has a step and some run of
// the job already recorded a step at least as high, so a trainer that saves again at the
// step it resumed from does not reset the count. All parts of a WITH statement read the
// rows as they were before it, so the max subquery reads the run's previous step. The
// job's key is passed as parameters so that PostgreSQL reads one partition of jobs and
// finds the runs by the runs_job_id_run_number_key index. Locking the run before the job
// is the order StartRun and EndRun take too.
// NOTE: a checkpoint without a step cannot be compared, so any new one resets the count.
const sqlSetCheckpoint = `
WITH run AS (
    UPDATE runs SET last_checkpoint_uri = $2, last_checkpoint_step = $3 WHERE id = $1
)
UPDATE jobs SET preemptions = 0
WHERE id = $4 AND created_at = $5 AND preemptions > 0
  AND ($3::bigint IS NULL OR $3::bigint > (
      SELECT COALESCE(max(last_checkpoint_step), -1) FROM runs
      WHERE job_id = $4 AND job_created_at = $5))`

// setCheckpoint makes uri the last checkpoint of the run of job, in the transaction that
// locked the run, and resets the job's preemption count if the checkpoint shows progress.
func setCheckpoint(ctx context.Context, tx pgx.Tx, job JobRef, runID uuid.UUID, uri string, step *int64) error {
	if _, err := tx.Exec(ctx, sqlSetCheckpoint, runID, uri, step, job.ID, job.CreatedAt); err != nil {
		return fmt.Errorf("make %s the last checkpoint of run %s: %w", uri, runID, err)
	}
	return nil
}

// sqlReplaceCheckpoint makes a checkpoint row describe the object a newer report wrote to its
// URI: the report's checksum, size and metadata, created_at now, and metadata_json's "step"
// set to the reported step. Retention orders a run's checkpoints by that step, then by
// created_at. With the first report's step kept, the run's resume point would rank below
// the slots it moved away from, and a keep-latest policy would keep those in its place.
// Nothing changes unless the step is above the run's last checkpoint step. Nothing changes
// either once retention has set delete_started_at, because it then deletes whatever objects
// the URI names.
const sqlReplaceCheckpoint = `
UPDATE artifacts a SET checksum_sha256 = $2, size_bytes = $3, created_at = now(),
    metadata_json = $4::jsonb || jsonb_build_object('step', $5::bigint)
FROM runs r
WHERE a.id = $1 AND a.delete_started_at IS NULL
  AND r.id = a.run_id AND r.last_checkpoint_step < $5
RETURNING ` + artifactColumns

// RecordArtifact stores an artifact of a live run; a checkpoint also becomes the run's last
// checkpoint, and one that shows progress sets the job's preemption count back to 0 (see
// sqlSetCheckpoint). A run that has ended accepts none (ErrRunEnded), so a late report
// cannot change what a finished run left. Reporting the same run, type and URI again
// returns the first record, so the program may retry. The exception is a checkpoint
// reported again with a step above the run's last checkpoint step: a trainer that rotates
// between slots wrote a new checkpoint there, so the row describes it and the run resumes
// from it.
func (s *Store) RecordArtifact(ctx context.Context, a NewArtifact) (Artifact, error) {
	doing := fmt.Sprintf("record %s artifact of run %s", a.Type, a.RunID)
	metadata := a.Metadata
	if len(metadata) == 0 {
		metadata = json.RawMessage("{}")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Artifact{}, fmt.Errorf("%s: %w", doing, err)
	}

	var recorded Artifact
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var job JobRef
		if err := tx.QueryRow(ctx, sqlLockLiveRun, a.RunID).Scan(&job.ID, &job.CreatedAt); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sqlFindArtifact, a.RunID, a.Type, a.URI)
		if err != nil {
			return err
		}
		found, err := collectOne[Artifact](rows)
		if err == nil {
			recorded, err = recordAgain(ctx, tx, job, found, a, metadata)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}

		if _, err := tx.Exec(ctx, sqlInsertArtifact, id, a.RunID, a.Type, a.URI, a.Checksum, a.SizeBytes, metadata,
			a.Step); err != nil {
			return err
		}
		if a.Type == "checkpoint" {
			if err := setCheckpoint(ctx, tx, job, a.RunID, a.URI, a.Step); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts a WHERE a.id = $1`, id)
		if err != nil {
			return err
		}
		recorded, err = collectOne[Artifact](rows)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Artifact{}, s.whyNoArtifact(ctx, a.RunID, doing)
	}
	return recorded, wrap(err, doing)
}

// recordAgain applies a report of an artifact that the run already recorded, in the
// transaction that locked the run. A checkpoint with a step above the run's last checkpoint
// step replaces the row and becomes the run's last checkpoint. Any other report is a retry
// and returns found as it is. A report without a step, or to a run whose last checkpoint
// has none, cannot be ordered, so it counts as a retry.
func recordAgain(ctx context.Context, tx pgx.Tx, job JobRef, found Artifact, a NewArtifact,
	metadata json.RawMessage) (Artifact, error) {
	if a.Type != "checkpoint" || a.Step == nil {
		return found, nil
	}
	rows, err := tx.Query(ctx, sqlReplaceCheckpoint, found.ID, a.Checksum, a.SizeBytes, metadata, *a.Step)
	if err != nil {
		return Artifact{}, fmt.Errorf("replace checkpoint %s: %w", found.ID, err)
	}
	replaced, err := collectOne[Artifact](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return found, nil
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("replace checkpoint %s: %w", found.ID, err)
	}
	if err := setCheckpoint(ctx, tx, job, a.RunID, a.URI, a.Step); err != nil {
		return Artifact{}, err
	}
	return replaced, nil
}

func (s *Store) whyNoArtifact(ctx context.Context, runID uuid.UUID, doing string) error {
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status::text FROM runs WHERE id = $1`, runID).Scan(&status)
	if err != nil {
		return wrap(err, doing)
	}
	return fmt.Errorf("%s: %w (it is %s)", doing, ErrRunEnded, status)
}

// RunProject returns the project of a run's job, for the API to check the caller's access.
func (s *Store) RunProject(ctx context.Context, runID uuid.UUID) (string, error) {
	var project string
	err := s.pool.QueryRow(ctx, `SELECT j.project_id FROM runs r
		JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at WHERE r.id = $1`, runID).Scan(&project)
	return project, wrap(err, "find the project of run "+runID.String())
}

const sqlLatestArtifact = `SELECT ` + artifactColumns + ` FROM artifacts a JOIN runs r ON r.id = a.run_id
WHERE r.job_id = $1 AND r.job_created_at = $2 AND a.artifact_type = $3 AND a.deleted_at IS NULL
ORDER BY r.run_number DESC, a.created_at DESC LIMIT 1`

// LatestArtifact returns the newest artifact of a type that the job's runs wrote, from its
// latest run first; ErrNotFound when there is none.
func (s *Store) LatestArtifact(ctx context.Context, job JobRef, artifactType string) (Artifact, error) {
	doing := fmt.Sprintf("find the latest %s of job %s", artifactType, job.ID)
	rows, err := s.pool.Query(ctx, sqlLatestArtifact, job.ID, job.CreatedAt, artifactType)
	if err != nil {
		return Artifact{}, wrap(err, doing)
	}
	a, err := collectOne[Artifact](rows)
	return a, wrap(err, doing)
}

const sqlRunArtifact = `SELECT ` + artifactColumns + ` FROM artifacts a
WHERE a.run_id = $1 AND a.artifact_type = $2 AND a.deleted_at IS NULL
ORDER BY a.created_at DESC, a.id DESC LIMIT 1`

// RunArtifact returns the newest artifact of a type that one run wrote; ErrNotFound when
// there is none. The evaluation reads the completed run's report this way, never one that
// an earlier, preempted run left.
func (s *Store) RunArtifact(ctx context.Context, runID uuid.UUID, artifactType string) (Artifact, error) {
	doing := fmt.Sprintf("find the latest %s of run %s", artifactType, runID)
	rows, err := s.pool.Query(ctx, sqlRunArtifact, runID, artifactType)
	if err != nil {
		return Artifact{}, wrap(err, doing)
	}
	a, err := collectOne[Artifact](rows)
	return a, wrap(err, doing)
}

// JobArtifacts lists every artifact the job's runs wrote, by run and time.
func (s *Store) JobArtifacts(ctx context.Context, job JobRef) ([]Artifact, error) {
	doing := "list artifacts of job " + job.ID.String()
	rows, err := s.pool.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts a JOIN runs r ON r.id = a.run_id
		WHERE r.job_id = $1 AND r.job_created_at = $2 ORDER BY r.run_number, a.created_at, a.id`, job.ID, job.CreatedAt)
	if err != nil {
		return nil, wrap(err, doing)
	}
	list, err := collectAll[Artifact](rows)
	return list, wrap(err, doing)
}

// JobRuns lists the job's runs in order.
func (s *Store) JobRuns(ctx context.Context, job JobRef) ([]Run, error) {
	doing := "list runs of job " + job.ID.String()
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs r
		JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at WHERE r.job_id = $1 AND r.job_created_at = $2 ORDER BY r.run_number`, job.ID, job.CreatedAt)
	if err != nil {
		return nil, wrap(err, doing)
	}
	list, err := collectAll[Run](rows)
	return list, wrap(err, doing)
}
