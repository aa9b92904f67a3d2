package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RunEnd is how a run ended, as the dispatcher judged it from its pod.
type RunEnd struct {
	RunID  uuid.UUID
	Status RunStatus // completed, failed, preempted or cancelled
	// EndedAt is when the container stopped (from the pod's status, so that a restart
	// replaying old pods accounts the same hours); for a run that never started it is the
	// time the end was seen.
	EndedAt  time.Time
	ExitCode *int
	Reason   string
	// Retryable is false for failures no retry can fix (a missing image, a bad container
	// config): the job fails at once.
	Retryable bool
	// NotCounted marks a preemption that the job did not cause, such as a queue drain or a
	// lost node: the job goes back to the queue and its preemption count stays as it is.
	NotCounted bool
}

// RunEndResult is what EndRun changed.
type RunEndResult struct {
	ProjectID    string
	GPUHoursUsed float64
	JobStatus    JobStatus // the job's status afterwards
	// PreemptionLimitReached is true when the run was preempted and the preemption brought
	// its job to max_preemptions, so the job failed instead of going back to the queue.
	PreemptionLimitReached bool
}

const sqlEndRun = `
UPDATE runs r SET status = $2, completed_at = $3, exit_code = $4, end_reason = $5,
    gpu_hours_used = CASE WHEN r.started_at IS NULL THEN 0 ELSE LEAST(r.gpu_hours_reserved,
        r.gpu_milli / 1000.0 * greatest(0, extract(epoch FROM $3::timestamptz - r.started_at)) / 3600.0) END
WHERE r.id = $1 AND r.status IN ('pending', 'running')
RETURNING r.job_id, r.job_created_at, r.gpu_hours_used::float8,
    (r.gpu_hours_reserved - r.gpu_hours_charged)::float8,
    greatest(0, r.gpu_hours_used - r.gpu_hours_charged)::float8,
    COALESCE(r.gpu_model, ''), r.gpu_milli`

// The end of a run releases what admission took: one concurrency slot, the reservation,
// and the model's capacity; the hours the run used are debited with the budget statement.
// Both leave out the hours that renewals of earlier budget periods charged the run
// (runs.gpu_hours_charged), which those periods took from the reservation already.
// used stays within the budget because a run's hours are capped at its reservation, which
// admission counted against the budget. The statement does not check the budget itself,
// because a run must be able to end also after someone cut the budget below what is used
// and reserved (for example in SQL). Otherwise the run would keep its pod and reservation.
const sqlReleaseQuota = `
UPDATE quotas u SET current_concurrent = u.current_concurrent - 1,
    gpu_hours_reserved = u.gpu_hours_reserved - $2, gpu_hours_used = u.gpu_hours_used + $3
FROM jobs j
WHERE j.id = $1 AND j.created_at = $4 AND u.project_id = j.project_id
  AND u.current_concurrent >= 1 AND u.gpu_hours_reserved >= $2
RETURNING u.project_id`

const sqlReleaseModel = `
UPDATE gpu_models SET allocated_milli = allocated_milli - $2
WHERE model = $1 AND allocated_milli >= $2`

// The job's next status follows the run's end: completed; requeued after a preemption
// (no attempt used) or a retryable failure with attempts left; failed otherwise. $7 is
// true for a preemption that counts toward max_preemptions (RunEnd.NotCounted is false),
// and the one that brings preemptions to max_preemptions fails the job, so that a job
// preempted on every run is not requeued forever. A checkpoint that shows progress sets
// preemptions back to 0 (sqlSetCheckpoint), so only preemptions without progress in
// between add up to the limit. A paused job follows a completed or failed run too,
// because its pod finished before the pause stopped it: it completes, or fails with no
// attempt left, or stays paused with the attempt counted. Resuming it must not train
// again what completed or outlive its attempts. Other jobs that are no longer running (a
// cancelled one, or a paused one whose run was preempted or cancelled) keep their status,
// and such a preemption is not counted. The statement reads only the row it updates, so
// the rules repeat in each column's CASE.
const sqlJobAfterRun = `
UPDATE jobs SET
    updated_at = now(),
    attempts = attempts + CASE WHEN $3 = 'failed' THEN 1 ELSE 0 END,
    preemptions = preemptions + CASE WHEN $7 THEN 1 ELSE 0 END,
    status = CASE
        WHEN $3 = 'completed' THEN 'completed'
        WHEN $3 = 'failed' AND NOT ($4 AND attempts + 1 < max_attempts) THEN 'failed'
        WHEN $7 AND preemptions + 1 >= max_preemptions THEN 'failed'
        WHEN status = 'paused' THEN 'paused'
        ELSE 'queued' END::job_status,
    -- A completed job keeps no error from an earlier, preempted or failed run.
    error_message = CASE
        WHEN $7 AND preemptions + 1 >= max_preemptions
        THEN format('preempted %s times (max_preemptions %s): %s', preemptions + 1, max_preemptions, $5::text)
        WHEN $3 IN ('failed', 'preempted') THEN $5
        WHEN $3 = 'completed' THEN NULL ELSE error_message END,
    -- Only a job that goes back to the queue gets a wait reason.
    wait_reason = CASE WHEN status = 'paused' THEN NULL
                       WHEN $3 = 'preempted' AND NOT ($7 AND preemptions + 1 >= max_preemptions)
                       THEN 'requeued after preemption: ' || $5
                       WHEN $3 = 'failed' AND $4 AND attempts + 1 < max_attempts
                       THEN 'retrying after failure: ' || $5 END,
    completed_at = CASE WHEN $3 = 'completed' OR ($3 = 'failed' AND NOT ($4 AND attempts + 1 < max_attempts))
                            OR ($7 AND preemptions + 1 >= max_preemptions)
                        THEN $6 ELSE completed_at END,
    -- A job that its workflow evaluates or registers is evaluating from its completion, so
    -- a pipeline keeps waiting while the workflow has not started on it (Temporal down).
    -- A job without a workflow (stored by hand or by the replay) has no one to evaluate it.
    result_json = CASE WHEN $3 = 'completed' AND result_json IS NULL AND temporal_workflow_id IS NOT NULL
                            AND (jsonb_typeof(config_json -> 'evaluation') = 'object'
                                 OR jsonb_typeof(config_json -> 'model') = 'object')
                       THEN '{"status": "evaluating"}'::jsonb ELSE result_json END
WHERE id = $1 AND created_at = $2 AND $3 <> 'cancelled'
  AND (status = 'running' OR (status = 'paused' AND $3 IN ('completed', 'failed')))
RETURNING status::text, $7 AND status = 'failed'`

// EndRun records the end of a pending or running run, releases its admission and moves its
// job on, in one transaction. It returns ErrStaleStatus when the run had already ended, so
// that seeing a pod's end twice (after a restart, say) counts it once.
func (s *Store) EndRun(ctx context.Context, end RunEnd) (RunEndResult, error) {
	doing := fmt.Sprintf("end run %s as %s", end.RunID, end.Status)
	var result RunEndResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		_, result, err = endRunInTx(ctx, tx, end)
		return err
	})
	return result, wrap(err, doing)
}

// endRunInTx is EndRun inside the caller's transaction: it records the end, releases
// the quota and the GPU model and moves the job on. It returns the run's job.
func endRunInTx(ctx context.Context, tx pgx.Tx, end RunEnd) (JobRef, RunEndResult, error) {
	var result RunEndResult
	var job JobRef
	var reserved, debit float64
	var model string
	var milli int
	err := tx.QueryRow(ctx, sqlEndRun, end.RunID, end.Status, end.EndedAt, end.ExitCode, end.Reason).
		Scan(&job.ID, &job.CreatedAt, &result.GPUHoursUsed, &reserved, &debit, &model, &milli)
	if errors.Is(err, pgx.ErrNoRows) {
		return job, result, ErrStaleStatus
	}
	if err != nil {
		return job, result, err
	}

	if result.ProjectID, err = releaseQuota(ctx, tx, job, reserved, debit); err != nil {
		return job, result, err
	}
	if model != "" {
		if err := releaseModel(ctx, tx, model, milli); err != nil {
			return job, result, err
		}
	}
	return job, result, moveJobAfterRun(ctx, tx, job, end, &result)
}

// releaseQuota gives back the concurrency slot and the reservation left to an ended run of
// job and debits used, the hours it used in the current budget period. It returns the job's
// project.
func releaseQuota(ctx context.Context, tx pgx.Tx, job JobRef, reserved, used float64) (string, error) {
	var project string
	err := tx.QueryRow(ctx, sqlReleaseQuota, job.ID, reserved, used, job.CreatedAt).Scan(&project)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("release quota: the quota of job %s's project has no admitted job or less "+
			"than %.4f GPU-hours reserved to give back (was it changed outside schedulerd?)", job.ID, reserved)
	}
	if err != nil {
		return "", fmt.Errorf("release quota: %w", err)
	}
	return project, nil
}

func releaseModel(ctx context.Context, tx pgx.Tx, model string, milli int) error {
	tag, err := tx.Exec(ctx, sqlReleaseModel, model, milli)
	if err != nil {
		return fmt.Errorf("release %s capacity: %w", model, err)
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("release %d milli of %s: less than that was allocated", milli, model)
	}
	return nil
}

func moveJobAfterRun(ctx context.Context, tx pgx.Tx, job JobRef, end RunEnd, result *RunEndResult) error {
	counted := end.Status == RunPreempted && !end.NotCounted
	err := tx.QueryRow(ctx, sqlJobAfterRun, job.ID, job.CreatedAt, string(end.Status), end.Retryable,
		end.Reason, end.EndedAt, counted).Scan(&result.JobStatus, &result.PreemptionLimitReached)
	if errors.Is(err, pgx.ErrNoRows) {
		return tx.QueryRow(ctx, `SELECT status::text FROM jobs WHERE id = $1 AND created_at = $2`,
			job.ID, job.CreatedAt).Scan(&result.JobStatus)
	}
	return err
}
