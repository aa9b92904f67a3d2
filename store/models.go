package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ModelVersion is one row of model_versions with its model's name and project. Its lineage
// columns record where it came from: the job and run that trained it, the artifact,
// dataset version, config hash and code commit, and the evaluation that let it in.
type ModelVersion struct {
	ID             uuid.UUID       `db:"id" json:"id"`
	ModelID        uuid.UUID       `db:"model_id" json:"model_id"`
	ModelName      string          `db:"model_name" json:"model_name"`
	ProjectID      string          `db:"project_id" json:"project_id"`
	VersionNumber  int             `db:"version_number" json:"version_number"`
	Stage          string          `db:"stage" json:"stage"`
	JobID          uuid.UUID       `db:"job_id" json:"job_id"`
	JobCreatedAt   time.Time       `db:"job_created_at" json:"-"`
	RunID          *uuid.UUID      `db:"run_id" json:"run_id,omitempty"`
	ArtifactURI    string          `db:"artifact_uri" json:"artifact_uri"`
	DatasetVersion *string         `db:"dataset_version" json:"dataset_version,omitempty"`
	ConfigHash     *string         `db:"config_hash" json:"config_hash,omitempty"`
	CodeCommit     *string         `db:"code_commit" json:"code_commit,omitempty"`
	TrackingRunID  *string         `db:"mlflow_run_id" json:"tracking_run_id,omitempty"`
	EvalMetrics    json.RawMessage `db:"eval_metrics_json" json:"eval_metrics"`
	CreatedAt      time.Time       `db:"created_at" json:"created_at"`
	PromotedAt     *time.Time      `db:"promoted_at" json:"promoted_at,omitempty"`
	PromotedBy     *string         `db:"promoted_by" json:"promoted_by,omitempty"`
}

// Job returns the key of the job that trained the version.
func (v ModelVersion) Job() JobRef { return JobRef{ID: v.JobID, CreatedAt: v.JobCreatedAt} }

// Older releases stored a version without metrics as JSON null. versionColumns reads that
// as {}, the column's default, as RegisterModelVersion now stores it.
const versionColumns = `v.id, v.model_id, m.model_name, m.project_id, v.version_number, v.stage::text AS stage,
    v.job_id, v.job_created_at, v.run_id, v.artifact_uri, v.dataset_version, v.config_hash,
    v.code_commit, v.mlflow_run_id,
    COALESCE(NULLIF(v.eval_metrics_json, 'null'::jsonb), '{}'::jsonb) AS eval_metrics_json,
    v.created_at, v.promoted_at, v.promoted_by`

const sqlVersionFrom = ` FROM model_versions v JOIN models m ON m.id = v.model_id `

// NewVersion is what a workflow registers after a job passed its evaluation.
type NewVersion struct {
	ProjectID      string
	ModelName      string
	BaseModelRef   string
	Job            JobRef
	RunID          *uuid.UUID
	ArtifactURI    string
	DatasetVersion string
	ConfigHash     string
	CodeCommit     string
	TrackingRunID  string
	EvalMetrics    map[string]float64
}

const sqlEnsureModel = `
INSERT INTO models (project_id, model_name, base_model_ref) VALUES ($1, $2, NULLIF($3, ''))
ON CONFLICT (project_id, model_name) DO NOTHING`

// Taking the number locks the model's row until the transaction ends, so registrations of
// one model are numbered one after another, and a rollback returns the number.
const sqlNextVersionNumber = `
UPDATE models SET latest_version = latest_version + 1
WHERE project_id = $1 AND model_name = $2
RETURNING id, latest_version`

const sqlInsertVersion = `
INSERT INTO model_versions (id, model_id, version_number, job_id, job_created_at, run_id, artifact_uri,
    dataset_version, config_hash, code_commit, mlflow_run_id, eval_metrics_json)
VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), NULLIF($9, ''), NULLIF($10, ''), NULLIF($11, ''), $12)`

// RegisterModelVersion creates the model if needed and adds the next version, numbered
// without gaps per model however many registrations run at once. A job registers at most
// one version: registering the same model again for the job returns the version it already
// has, so a retried workflow step is harmless, and registering another model fails with
// ErrInvalid.
func (s *Store) RegisterModelVersion(ctx context.Context, nv NewVersion) (ModelVersion, error) {
	doing := fmt.Sprintf("register a version of model %s/%s for job %s", nv.ProjectID, nv.ModelName, nv.Job.ID)
	if existing, err := s.JobModelVersion(ctx, nv.Job.ID, nv.ProjectID, nv.ModelName); !errors.Is(err, ErrNotFound) {
		return existing, err
	}
	// A job without an evaluation has no metrics. json.Marshal writes a nil map as null,
	// which jsonb stores as a value, so the column's default {} would not apply.
	evalMetrics := nv.EvalMetrics
	if evalMetrics == nil {
		evalMetrics = map[string]float64{}
	}
	metrics, err := json.Marshal(evalMetrics)
	if err != nil {
		return ModelVersion{}, fmt.Errorf("%s: encode metrics: %w", doing, err)
	}

	id, err := uuid.NewV7()
	if err != nil {
		return ModelVersion{}, fmt.Errorf("%s: %w", doing, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlEnsureModel, nv.ProjectID, nv.ModelName, nv.BaseModelRef); err != nil {
			return err
		}
		var modelID uuid.UUID
		var number int
		if err := tx.QueryRow(ctx, sqlNextVersionNumber, nv.ProjectID, nv.ModelName).Scan(&modelID, &number); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlInsertVersion, id, modelID, number, nv.Job.ID, nv.Job.CreatedAt, nv.RunID,
			nv.ArtifactURI, nv.DatasetVersion, nv.ConfigHash, nv.CodeCommit, nv.TrackingRunID, metrics)
		return err
	})
	if isUniqueViolation(err, "model_versions_one_per_job_idx") {
		// A concurrent registration for the same job committed first.
		return s.JobModelVersion(ctx, nv.Job.ID, nv.ProjectID, nv.ModelName)
	}
	if err != nil {
		return ModelVersion{}, wrap(err, doing)
	}
	v, err := s.GetModelVersion(ctx, id)
	return v, wrap(err, doing)
}

func isUniqueViolation(err error, index string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == index
}

// JobModelVersion returns the version of the project's model that the job registered. It
// returns ErrNotFound when the job registered none, and ErrInvalid when it registered a
// version of another model, because a job registers at most one version.
func (s *Store) JobModelVersion(ctx context.Context, jobID uuid.UUID, projectID, modelName string) (ModelVersion, error) {
	doing := fmt.Sprintf("find the version of model %s/%s of job %s", projectID, modelName, jobID)
	rows, err := s.pool.Query(ctx, `SELECT `+versionColumns+sqlVersionFrom+`WHERE v.job_id = $1`, jobID)
	if err != nil {
		return ModelVersion{}, wrap(err, doing)
	}
	v, err := collectOne[ModelVersion](rows)
	if err != nil {
		return ModelVersion{}, wrap(err, doing)
	}
	if v.ProjectID != projectID || v.ModelName != modelName {
		return ModelVersion{}, fmt.Errorf("%s: %w: the job registered version %d of model %s/%s, and a job registers one version only",
			doing, ErrInvalid, v.VersionNumber, v.ProjectID, v.ModelName)
	}
	return v, nil
}

// GetModelVersion reads one version by id.
func (s *Store) GetModelVersion(ctx context.Context, id uuid.UUID) (ModelVersion, error) {
	return getModelVersion(ctx, s.pool, id)
}

func getModelVersion(ctx context.Context, db querier, id uuid.UUID) (ModelVersion, error) {
	rows, err := db.Query(ctx, `SELECT `+versionColumns+sqlVersionFrom+`WHERE v.id = $1`, id)
	if err != nil {
		return ModelVersion{}, wrap(err, "get model version "+id.String())
	}
	v, err := collectOne[ModelVersion](rows)
	return v, wrap(err, "get model version "+id.String())
}

// ListModelVersions returns the versions of a project's model, newest first.
func (s *Store) ListModelVersions(ctx context.Context, projectID, modelName string) ([]ModelVersion, error) {
	doing := fmt.Sprintf("list versions of model %s/%s", projectID, modelName)
	rows, err := s.pool.Query(ctx, `SELECT `+versionColumns+sqlVersionFrom+`
		WHERE m.project_id = $1 AND m.model_name = $2 ORDER BY v.version_number DESC`, projectID, modelName)
	if err != nil {
		return nil, wrap(err, doing)
	}
	versions, err := collectAll[ModelVersion](rows)
	return versions, wrap(err, doing)
}

const sqlArchiveProd = `
UPDATE model_versions SET stage = 'archived'
WHERE model_id = $1 AND stage = 'prod' AND id <> $2`

const sqlPromote = `
UPDATE model_versions SET stage = $2, promoted_at = now(), promoted_by = $3
WHERE id = $1 AND stage <> $2`

// Locking the model's row makes promotions of one model wait for each other, so each reads
// the prod version that the one before it left.
const sqlLockModel = `SELECT id FROM models WHERE id = $1 FOR UPDATE`

// sqlLaterProd returns the number of the model's prod version when its last approval for
// prod was decided after the last one of version $2.
const sqlLaterProd = `
WITH approved AS (
    SELECT model_version_id, max(decided_at) AS decided_at FROM approvals
    WHERE status = 'approved' AND target_stage = 'prod' GROUP BY model_version_id)
SELECT p.version_number FROM model_versions p
JOIN approved later ON later.model_version_id = p.id
JOIN approved this ON this.model_version_id = $2
WHERE p.model_id = $1 AND p.stage = 'prod' AND p.id <> $2 AND later.decided_at > this.decided_at`

// PromoteVersion moves a version to stage. The database refuses staging and prod without
// an approved request for that stage (ErrIllegalTransition). Promoting to prod archives the
// model's previous prod version in the same transaction, so a model never has two prod
// versions nor, for a moment, none while a promotion runs. Promoting a version to the stage
// it has changes nothing.
//
// Workflows promote in whatever order they run, so the order of the approvals decides. When
// the model's prod version was approved for prod after this version, this version keeps its
// stage, and PromoteVersion returns it with ErrStaleStatus. So does a version promoted to
// staging that reached prod, or was archived, since its staging approval: a request through
// the API may have moved it there (RequestPromotion).
func (s *Store) PromoteVersion(ctx context.Context, id uuid.UUID, stage, by string) (ModelVersion, error) {
	doing := fmt.Sprintf("promote model version %s to %s", id, stage)
	v, err := s.GetModelVersion(ctx, id)
	if err != nil {
		return ModelVersion{}, fmt.Errorf("%s: %w", doing, err)
	}
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		if stage == "prod" {
			return promoteToProd(ctx, tx, v, by)
		}
		return promoteToStaging(ctx, tx, v, by)
	})
	if errors.Is(err, ErrStaleStatus) {
		current, getErr := s.GetModelVersion(ctx, id)
		if getErr != nil {
			return ModelVersion{}, fmt.Errorf("%s: %w", doing, getErr)
		}
		return current, fmt.Errorf("%s: %w", doing, err)
	}
	if err != nil {
		return ModelVersion{}, wrap(err, doing)
	}
	return s.GetModelVersion(ctx, id)
}

// promoteToProd archives the model's prod version and puts v in its place, unless that prod
// version was approved after v (ErrStaleStatus).
func promoteToProd(ctx context.Context, tx pgx.Tx, v ModelVersion, by string) error {
	if _, err := tx.Exec(ctx, sqlLockModel, v.ModelID); err != nil {
		return err
	}
	later, err := laterProdVersion(ctx, tx, v)
	if err != nil {
		return err
	}
	if later != 0 {
		return fmt.Errorf("%w: version %d of the model was approved for prod after version %d and stays in prod",
			ErrStaleStatus, later, v.VersionNumber)
	}
	if _, err := tx.Exec(ctx, sqlArchiveProd, v.ModelID, v.ID); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, sqlPromote, v.ID, "prod", by)
	return err
}

// sqlPromoteToStaging moves a version to staging unless it is in prod or archived. Moving a
// prod version back would leave its model without one, and an archived version stays
// archived.
const sqlPromoteToStaging = `
UPDATE model_versions SET stage = 'staging', promoted_at = now(), promoted_by = $2
WHERE id = $1 AND stage NOT IN ('staging', 'prod', 'archived')`

// promoteToStaging moves v to staging, unless v is in prod or archived (ErrStaleStatus).
// The stage is read again after an update that changed nothing, so that it includes a
// change that the update waited for.
func promoteToStaging(ctx context.Context, tx pgx.Tx, v ModelVersion, by string) error {
	tag, err := tx.Exec(ctx, sqlPromoteToStaging, v.ID, by)
	if err != nil || tag.RowsAffected() == 1 {
		return err
	}
	var stage string
	if err := tx.QueryRow(ctx, `SELECT stage::text FROM model_versions WHERE id = $1`, v.ID).Scan(&stage); err != nil {
		return err
	}
	if stage == "staging" {
		return nil
	}
	return fmt.Errorf("%w: version %d of the model is in %s and stays there", ErrStaleStatus, v.VersionNumber, stage)
}

// laterProdVersion returns the number of the model's prod version when that version was
// approved for prod after v was, and 0 otherwise.
func laterProdVersion(ctx context.Context, tx pgx.Tx, v ModelVersion) (int, error) {
	var later int
	err := tx.QueryRow(ctx, sqlLaterProd, v.ModelID, v.ID).Scan(&later)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return later, err
}
