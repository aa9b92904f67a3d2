package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// QueuePosition is the place of a queued job in admission order (priority, then age).
type QueuePosition struct {
	Ahead          int64 // queued jobs of every project admitted before it
	AheadInProject int64 // of those, the jobs of its own project
	Queued         int64 // queued jobs in all
}

// JobExplanation is what decides whether a job may start, read in one snapshot.
type JobExplanation struct {
	Job Job
	// Now is the database's time of the snapshot, the clock that admission uses.
	Now time.Time
	// CPUMilli and MemoryMiB are the job's pod request, which a node of its GPU model must
	// offer.
	CPUMilli  int64
	MemoryMiB int64
	// Position is nil unless the job is queued.
	Position *QueuePosition
	// QueuedAt is when the job last entered the queue, zero unless it is queued.
	QueuedAt time.Time
	// StarvingAhead are the reservations in GPU-hours, in queue order, of the GPU jobs of
	// the job's project that are queued ahead of it, have waited the starvation bound
	// given to ExplainJob and have a node that could run them. Nil unless the job is queued.
	StarvingAhead []float64
	// Quota is nil when the project has no quota.
	Quota  *QuotaState
	Models []ModelCapacity
	// LiveRun is the job's pending or running run, or nil when it has none.
	LiveRun *Run
	// LastEndedRun is the job's latest run that has ended, with its exit code and end
	// reason, or nil when no run of the job has ended.
	LastEndedRun *Run
}

const sqlQueuePosition = `
SELECT count(*) FILTER (WHERE ahead) AS ahead,
       count(*) FILTER (WHERE ahead AND project_id = $4) AS ahead_in_project,
       count(*) AS queued
FROM (SELECT project_id,
             priority > $1 OR (priority = $1 AND (job_created_at, job_id) < ($2, $3)) AS ahead
      FROM job_queue) q`

// The reservations of the GPU jobs of project $1 queued ahead of the job at priority $2,
// created at $3 with id $4, that have waited at least $5 microseconds, in queue order. A
// job that no node of its allowed models could run holds nothing, so it is left out.
// NOTE: this checks each resource's largest value over a model's nodes (sqlModelFits),
// where the policy checks each node's size, so a job that fits no single node but the
// largest values of several counts here as holding.
const sqlStarvingAhead = `
SELECT ` + sqlReservation + `::float8
FROM job_queue q
WHERE q.project_id = $1 AND q.gpu_milli > 0
  AND (q.priority > $2 OR (q.priority = $2 AND (q.job_created_at, q.job_id) < ($3, $4)))
  AND q.queued_at <= now() - $5::bigint * interval '1 microsecond'
  AND EXISTS (SELECT 1 FROM gpu_models m WHERE ` + sqlModelFits + `)
ORDER BY q.priority DESC, q.job_created_at, q.job_id`

// ExplainJob reads a job with its queue position, its project's quota and the GPU
// capacity by model, in one read-only snapshot so that the numbers agree with each other.
// For a queued job it also reads the older jobs of its project that have waited
// starvationBound, which may hold the project's budget.
func (s *Store) ExplainJob(ctx context.Context, id uuid.UUID, starvationBound time.Duration) (JobExplanation, error) {
	doing := "explain job " + id.String()
	var e JobExplanation
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := pgx.BeginTxFunc(ctx, s.pool, opts, func(tx pgx.Tx) error {
		var err error
		if e.Job, err = getJobIn(ctx, tx, id); err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `SELECT cpu_milli, memory_mib, now() FROM jobs WHERE id = $1 AND created_at = $2`,
			e.Job.ID, e.Job.CreatedAt).Scan(&e.CPUMilli, &e.MemoryMiB, &e.Now)
		if err != nil {
			return err
		}
		if e.Job.Status == JobQueued {
			if e.Position, err = queuePosition(ctx, tx, e.Job); err != nil {
				return err
			}
			if err = readStarvingAhead(ctx, tx, &e, starvationBound); err != nil {
				return err
			}
		}
		if e.LiveRun, err = latestRunOf(ctx, tx, e.Job, sqlLiveRunStatuses); err != nil {
			return err
		}
		if e.LastEndedRun, err = latestRunOf(ctx, tx, e.Job, sqlEndedRunStatuses); err != nil {
			return err
		}

		quota, err := getQuotaState(ctx, tx, e.Job.ProjectID, sqlGetQuotaState)
		switch {
		case err == nil:
			e.Quota = &quota
		case !errors.Is(err, ErrNotFound):
			return err
		}

		rows, err := tx.Query(ctx, `SELECT `+modelColumns+` FROM gpu_models ORDER BY model`)
		if err != nil {
			return err
		}
		e.Models, err = collectAll[ModelCapacity](rows)
		return err
	})
	return e, wrap(err, doing)
}

func getJobIn(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Job, error) {
	var rows pgx.Rows
	var err error
	if createdAt, ok := createdAtOf(id); ok {
		rows, err = tx.Query(ctx, sqlGetJobByRef, id, createdAt)
	} else {
		rows, err = tx.Query(ctx, sqlGetJobByID, id)
	}
	if err != nil {
		return Job{}, err
	}
	return collectOne[Job](rows)
}

// The run statuses that latestRunOf selects, as SQL conditions on r.status.
const (
	sqlLiveRunStatuses  = `r.status IN ('pending', 'running')`
	sqlEndedRunStatuses = `r.status NOT IN ('pending', 'running')`
)

// latestRunOf reads the job's run with the highest number among those whose status meets
// statusCondition, or nil when it has none.
func latestRunOf(ctx context.Context, tx pgx.Tx, job Job, statusCondition string) (*Run, error) {
	rows, err := tx.Query(ctx, `SELECT `+runColumns+`
		FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
		WHERE r.job_id = $1 AND r.job_created_at = $2 AND `+statusCondition+`
		ORDER BY r.run_number DESC LIMIT 1`, job.ID, job.CreatedAt)
	if err != nil {
		return nil, err
	}
	run, err := collectOne[Run](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return &run, err
}

func queuePosition(ctx context.Context, tx pgx.Tx, job Job) (*QueuePosition, error) {
	var p QueuePosition
	err := tx.QueryRow(ctx, sqlQueuePosition, job.Priority, job.CreatedAt, job.ID, job.ProjectID).
		Scan(&p.Ahead, &p.AheadInProject, &p.Queued)
	return &p, err
}

// readStarvingAhead sets e.QueuedAt and e.StarvingAhead for the queued job e.Job.
func readStarvingAhead(ctx context.Context, tx pgx.Tx, e *JobExplanation, starvationBound time.Duration) error {
	j := e.Job
	err := tx.QueryRow(ctx, `SELECT queued_at FROM job_queue WHERE job_id = $1`, j.ID).Scan(&e.QueuedAt)
	if err != nil {
		return fmt.Errorf("read the queue entry: %w", err)
	}
	rows, err := tx.Query(ctx, sqlStarvingAhead, j.ProjectID, j.Priority, j.CreatedAt, j.ID,
		starvationBound.Microseconds())
	if err != nil {
		return fmt.Errorf("read the starving jobs ahead: %w", err)
	}
	e.StarvingAhead, err = pgx.CollectRows(rows, pgx.RowTo[float64])
	if err != nil {
		return fmt.Errorf("read the starving jobs ahead: %w", err)
	}
	return nil
}
