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

// The statements the job workflows write through (package workflow). Each is guarded by
// the status the workflow expects, so a retried activity changes nothing the second time.

// SetJobResult stores what the job's workflow decided (metrics, registered version, best
// trial). It may be written more than once as the workflow goes on; the last one stays.
func (s *Store) SetJobResult(ctx context.Context, job JobRef, result any) error {
	doing := "record the result of job " + job.ID.String()
	encoded, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE jobs SET result_json = $3 WHERE id = $1 AND created_at = $2`,
		job.ID, job.CreatedAt, encoded)
	if err == nil && tag.RowsAffected() == 0 {
		err = pgx.ErrNoRows
	}
	return wrap(err, doing)
}

// SetLiveJobResult stores a result of a job that has not ended yet, such as an hpo parent
// whose trials run. A job that has ended meanwhile, for example cancelled, keeps its result.
func (s *Store) SetLiveJobResult(ctx context.Context, job JobRef, result any) error {
	doing := "record the result of live job " + job.ID.String()
	encoded, err := json.Marshal(result)
	if err != nil {
		return fmt.Errorf("%s: %w", doing, err)
	}
	_, err = s.pool.Exec(ctx, `UPDATE jobs SET result_json = $3
		WHERE id = $1 AND created_at = $2 AND status NOT IN ('completed', 'failed', 'cancelled', 'eval_failed')`,
		job.ID, job.CreatedAt, encoded)
	return wrap(err, doing)
}

// FailEvaluation moves a completed job (or a running or paused hpo parent) to eval_failed
// with the reason as its error message and the result, and returns the job's status after
// the step.
// A job already eval_failed, failed or cancelled is left as it is and its status returned,
// so the step can be retried and a cancellation is kept. A completed job keeps the
// completed_at of its training; a running hpo parent gets one now.
func (s *Store) FailEvaluation(ctx context.Context, job JobRef, reason string, result any) (JobStatus, error) {
	doing := "fail the evaluation of job " + job.ID.String()
	encoded, err := json.Marshal(result)
	if err != nil {
		return "", fmt.Errorf("%s: %w", doing, err)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE jobs SET status = 'eval_failed', error_message = $3, result_json = $4,
		    completed_at = COALESCE(completed_at, now())
		WHERE id = $1 AND created_at = $2
		  AND (status IN ('completed', 'running') OR (status = 'paused' AND job_type = 'hpo'))`,
		job.ID, job.CreatedAt, reason, encoded)
	if err != nil {
		return "", wrap(err, doing)
	}
	if tag.RowsAffected() == 1 {
		return JobEvalFailed, nil
	}
	current, err := s.GetJob(ctx, job.ID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", doing, err)
	}
	if current.Status == JobEvalFailed || current.Status == JobCancelled || current.Status == JobFailed {
		// Already failed, or an hpo parent a user cancelled meanwhile: leave it.
		return current.Status, nil
	}
	return "", fmt.Errorf("%s: %w (it is %s)", doing, ErrStaleStatus, current.Status)
}

// SetParentStatus moves an hpo parent (which holds no run) between statuses: submitted to
// running once its trials exist, running to completed or failed when they have ended. A
// parent already in status to is left as it is, so the step can be retried.
func (s *Store) SetParentStatus(ctx context.Context, job JobRef, from, to JobStatus, message string) error {
	_, err := s.TransitionJob(ctx, job, from, to, message)
	if errors.Is(err, ErrStaleStatus) {
		current, getErr := s.GetJob(ctx, job.ID)
		if getErr == nil && current.Status == to {
			return nil
		}
	}
	return err
}

// EndParent moves an hpo parent that has not ended (submitted, running or paused) to status
// to, with its result and, when not empty, reason as its error message, in one statement.
// A paused parent ends too: its trials have all ended, so a resume would start nothing. It
// returns the parent's status afterwards, which is to also when an earlier try of the step
// ended it. A parent that had ended otherwise, for example cancelled by a user, keeps its
// status and result, and its status is returned.
func (s *Store) EndParent(ctx context.Context, job JobRef, to JobStatus, reason string, result any) (JobStatus, error) {
	doing := fmt.Sprintf("end hpo job %s as %s", job.ID, to)
	encoded, err := json.Marshal(result)
	if err != nil {
		return "", fmt.Errorf("%s: %w", doing, err)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE jobs SET status = $3, error_message = COALESCE(NULLIF($4, ''), error_message),
		    result_json = $5, wait_reason = NULL, completed_at = now()
		WHERE id = $1 AND created_at = $2 AND status IN ('submitted', 'running', 'paused')`,
		job.ID, job.CreatedAt, to, reason, encoded)
	if err != nil {
		return "", wrap(err, doing)
	}
	if tag.RowsAffected() == 1 {
		return to, nil
	}
	current, err := s.GetJob(ctx, job.ID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", doing, err)
	}
	if !current.Status.Terminal() {
		return "", fmt.Errorf("%s: %w (it is %s)", doing, ErrStaleStatus, current.Status)
	}
	return current.Status, nil
}

// RemainingBudget returns the GPU-hours the project may still reserve: budget minus used
// and reserved. A period that has ended counts as renewed, with nothing used yet, because
// the scheduler renews it before it admits any of the project's jobs.
func (s *Store) RemainingBudget(ctx context.Context, projectID string) (float64, error) {
	var remaining float64
	err := s.pool.QueryRow(ctx, `
		SELECT (gpu_hours_budget - gpu_hours_reserved
		        - CASE WHEN period_end <= (now() AT TIME ZONE 'UTC')::date THEN 0 ELSE gpu_hours_used END)::float8
		FROM quotas WHERE project_id = $1`,
		projectID).Scan(&remaining)
	return remaining, wrap(err, "read the remaining budget of project "+projectID)
}

// ChildJobs lists the jobs whose parent is job (an hpo parent's trials), oldest first.
func (s *Store) ChildJobs(ctx context.Context, parent JobRef) ([]Job, error) {
	doing := "list the trials of job " + parent.ID.String()
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE parent_job_id = $1 AND parent_created_at = $2 ORDER BY created_at, id`, parent.ID, parent.CreatedAt)
	if err != nil {
		return nil, wrap(err, doing)
	}
	jobs, err := collectAll[Job](rows)
	return jobs, wrap(err, doing)
}

// WorkflowEvent is one row of the workflow outbox: a fact the database recorded that a
// job's workflow must hear about.
type WorkflowEvent struct {
	ID         int64           `db:"id"`
	WorkflowID string          `db:"workflow_id"`
	Kind       string          `db:"kind"`
	Payload    json.RawMessage `db:"payload"`
	Attempts   int             `db:"attempts"`
}

// WorkflowEventsChannel is the NOTIFY channel the outbox trigger signals.
const WorkflowEventsChannel = "schedulerd_workflow_events"

const sqlDueEvents = `
SELECT id, workflow_id, kind, payload, attempts FROM workflow_events
WHERE next_attempt_at <= now()
ORDER BY id
LIMIT $1
FOR UPDATE SKIP LOCKED`

// DeliverWorkflowEvents hands up to limit due events, oldest first, to deliver, inside one
// transaction that locks them, so replicas share the outbox without sending an event
// twice at once. An event deliver accepts is deleted; the first one it fails is tried again
// after retryAfter(attempts) and ends the round. It returns how many were delivered.
func (s *Store) DeliverWorkflowEvents(ctx context.Context, limit int, deliver func(WorkflowEvent) error,
	retryAfter func(attempts int) time.Duration) (int, error) {
	delivered := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlDueEvents, limit)
		if err != nil {
			return err
		}
		events, err := collectAll[WorkflowEvent](rows)
		if err != nil {
			return err
		}
		for _, e := range events {
			deliverErr := deliver(e)
			if err := settleEvent(ctx, tx, e, deliverErr, retryAfter); err != nil {
				return err
			}
			if deliverErr != nil {
				// Temporal is likely down: leave the rest for the next round rather than
				// wait for each of them to time out.
				break
			}
			delivered++
		}
		return nil
	})
	return delivered, wrap(err, "deliver workflow events")
}

func settleEvent(ctx context.Context, tx pgx.Tx, e WorkflowEvent, deliverErr error,
	retryAfter func(int) time.Duration) error {
	if deliverErr == nil {
		_, err := tx.Exec(ctx, `DELETE FROM workflow_events WHERE id = $1`, e.ID)
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE workflow_events SET attempts = attempts + 1, last_error = $2,
		next_attempt_at = now() + $3 * interval '1 millisecond' WHERE id = $1`,
		e.ID, deliverErr.Error(), retryAfter(e.Attempts+1).Milliseconds())
	return err
}

// PendingWorkflowEvents counts the outbox rows not yet delivered, for a gauge.
func (s *Store) PendingWorkflowEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM workflow_events`).Scan(&n)
	return n, wrap(err, "count workflow events")
}

// JobRefOfWorkflow returns the job of a workflow id made by WorkflowID.
func JobRefOfWorkflow(workflowID string) (JobRef, error) {
	const prefix = "job-"
	if len(workflowID) <= len(prefix) || workflowID[:len(prefix)] != prefix {
		return JobRef{}, fmt.Errorf("workflow id %q: %w: not job-<uuid>", workflowID, ErrInvalid)
	}
	id, err := uuid.Parse(workflowID[len(prefix):])
	if err != nil {
		return JobRef{}, fmt.Errorf("workflow id %q: %w: %v", workflowID, ErrInvalid, err)
	}
	createdAt, ok := createdAtOf(id)
	if !ok {
		return JobRef{}, fmt.Errorf("workflow id %q: %w: the job id is not a UUIDv7", workflowID, ErrInvalid)
	}
	return JobRef{ID: id, CreatedAt: createdAt}, nil
}
