package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrRunLive: the job cannot go back to the queue yet because a run of it is still
// pending or running. The dispatcher ends that run soon after a pause or cancel.
var ErrRunLive = errors.New("a run of the job is still live")

// JobFilter selects jobs for ListJobs. Empty lists and nil times select everything.
type JobFilter struct {
	Projects []string
	Statuses []JobStatus
	JobTypes []string
	// CreatedAfter and CreatedBefore bound created_at to [CreatedAfter, CreatedBefore).
	CreatedAfter  *time.Time
	CreatedBefore *time.Time
	// After is the last job of the previous page: only jobs after it in the list order
	// (created_at, then id, both descending) are returned.
	After *JobRef
	Limit int
}

// where returns the filter's WHERE clause and its numbered parameters. Only the filters
// that are set appear, so that PostgreSQL plans each combination with the indexes it can
// use and prunes partitions by the created_at bounds.
func (f JobFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, values ...any) {
		numbers := make([]any, len(values))
		for i, v := range values {
			args = append(args, v)
			numbers[i] = len(args)
		}
		conds = append(conds, fmt.Sprintf(cond, numbers...))
	}

	if len(f.Projects) > 0 {
		add("project_id = ANY($%d)", f.Projects)
	}
	if len(f.Statuses) > 0 {
		statuses := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			statuses[i] = string(s)
		}
		add("status = ANY($%d::job_status[])", statuses)
	}
	if len(f.JobTypes) > 0 {
		add("job_type = ANY($%d::job_type[])", f.JobTypes)
	}
	if f.CreatedAfter != nil {
		add("created_at >= $%d", *f.CreatedAfter)
	}
	if f.CreatedBefore != nil {
		add("created_at < $%d", *f.CreatedBefore)
	}
	if f.After != nil {
		add("(created_at, id) < ($%d, $%d)", f.After.CreatedAt, f.After.ID)
	}
	if len(conds) == 0 {
		return "", args
	}
	return "WHERE " + strings.Join(conds, " AND "), args
}

// ListJobs reads the jobs that match f, newest first, at most f.Limit of them.
func (s *Store) ListJobs(ctx context.Context, f JobFilter) ([]Job, error) {
	where, args := f.where()
	args = append(args, f.Limit)
	sql := fmt.Sprintf(`SELECT %s FROM jobs %s ORDER BY created_at DESC, id DESC LIMIT $%d`,
		jobColumns, where, len(args))

	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, wrap(err, "list jobs")
	}
	jobs, err := collectAll[Job](rows)
	return jobs, wrap(err, "list jobs")
}

// The status change of SetJobStatus. A job goes back to the queue only when none of its
// runs is live, so that a paused job resumed at once cannot run twice. A pause records the
// role and token name of the pauser ($6, $7), and a resume by a caller that may not lift a
// pause hold ($8 false) changes no row of a job that an operator or admin paused.
const sqlSetJobStatus = `
UPDATE jobs j SET status = $4,
    completed_at = CASE WHEN $4::job_status IN ('completed', 'failed', 'cancelled', 'eval_failed')
                        THEN $5 ELSE j.completed_at END,
    -- A cancelled job did not fail, so it keeps no error of an earlier run. The runs keep
    -- their end reasons.
    error_message = CASE WHEN $4::job_status = 'cancelled' THEN NULL ELSE j.error_message END,
    -- A reason is the scheduler's, from its last look at a queued job: a job that leaves the
    -- queue has none, and one that comes back gets a fresh one at the next dequeue.
    wait_reason = NULL,
    -- Any other move leaves paused, so the pauser is cleared (as the trigger of migration
    -- 26 does for other writers).
    paused_by_role = CASE WHEN $4::job_status = 'paused' THEN $6::api_role END,
    paused_by_token = CASE WHEN $4::job_status = 'paused' THEN $7::text END
WHERE j.id = $1 AND j.created_at = $2 AND j.status = $3
  AND ($4::job_status <> 'queued' OR NOT EXISTS (
      SELECT 1 FROM runs r
      WHERE r.job_id = j.id AND r.job_created_at = j.created_at AND r.status IN ('pending', 'running')))
  AND ($8::boolean OR j.status <> 'paused' OR $4::job_status NOT IN ('queued', 'running')
       OR coalesce(j.paused_by_role, 'submitter') = 'submitter')
RETURNING ` + jobColumns

// setJobStatusArgs returns the arguments of sqlSetJobStatus for a move by the actor of audit.
func setJobStatusArgs(ref JobRef, from, to JobStatus, at time.Time, audit *Audit) []any {
	role, token := pauserOf(audit)
	return []any{ref.ID, ref.CreatedAt, from, to, at, role, token, liftsHolds(audit)}
}

// SetJobStatus moves a job from the status the caller saw to another, at time at, and
// records the move when audit is not nil. A pause records the actor of audit as the
// pauser, and an operator's or admin's pause holds the job (see PauseHeldError). A
// submitter's resume of a held job returns a *PauseHeldError. It returns ErrStaleStatus
// when the job is no longer in status from, ErrIllegalTransition when the move is not
// allowed, and ErrRunLive when a move to queued finds a run of the job still live. A
// running job's pod is not touched here: the dispatcher stops the run when it finds the job
// cancelled or paused.
func (s *Store) SetJobStatus(ctx context.Context, ref JobRef, from, to JobStatus, at time.Time, audit *Audit) (Job, error) {
	doing := fmt.Sprintf("move job %s from %s to %s", ref.ID, from, to)
	var job Job
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		if err := lockQueueRow(ctx, tx, ref, from); err != nil {
			return err
		}
		before, err := lockPausedJob(ctx, tx, ref)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sqlSetJobStatus, setJobStatusArgs(ref, from, to, at, audit)...)
		if err != nil {
			return err
		}
		job, err = collectOne[Job](rows)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit, job.ProjectID, &job.ID, before.image(), jobImage(job))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, s.whyStatusUnchanged(ctx, ref, from, to, audit, doing)
	}
	return job, wrap(err, doing)
}

// whyStatusUnchanged explains why the guarded statement of SetJobStatus changed no row.
func (s *Store) whyStatusUnchanged(ctx context.Context, ref JobRef, from, to JobStatus, audit *Audit,
	doing string) error {
	if err := s.heldPauseError(ctx, ref, from, to, audit); err != nil {
		return wrap(err, doing)
	}
	var status JobStatus
	var live bool
	err := s.pool.QueryRow(ctx, `
		SELECT j.status::text, EXISTS (SELECT 1 FROM runs r WHERE r.job_id = j.id
		    AND r.job_created_at = j.created_at AND r.status IN ('pending', 'running'))
		FROM jobs j WHERE j.id = $1 AND j.created_at = $2`, ref.ID, ref.CreatedAt).Scan(&status, &live)
	if err != nil {
		return wrap(err, doing)
	}
	if status == from && live {
		return fmt.Errorf("%s: %w", doing, ErrRunLive)
	}
	return fmt.Errorf("%s: %w (it is %s)", doing, ErrStaleStatus, status)
}

const sqlSetJobPriority = `
UPDATE jobs SET priority = $4
WHERE id = $1 AND created_at = $2 AND status = $3
RETURNING ` + jobColumns

// SetJobPriority changes the priority of a job still in the status the caller saw, and
// records the change when audit is not nil. A queued job moves in the queue at once. A
// running job keeps its pod and uses the new priority when it is queued again.
func (s *Store) SetJobPriority(ctx context.Context, ref JobRef, seen JobStatus, priority int, audit *Audit) (Job, error) {
	doing := fmt.Sprintf("set priority of job %s to %d", ref.ID, priority)
	var job Job
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		if err := lockQueueRow(ctx, tx, ref, seen); err != nil {
			return err
		}
		before, err := lockPausedJob(ctx, tx, ref)
		if err != nil {
			return err
		}

		rows, err := tx.Query(ctx, sqlSetJobPriority, ref.ID, ref.CreatedAt, seen, priority)
		if err != nil {
			return err
		}
		job, err = collectOne[Job](rows)
		if err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit, job.ProjectID, &job.ID, before.image(), jobImage(job))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, s.staleOrMissing(ctx, ref, doing)
	}
	return job, wrap(err, doing)
}

// lockQueueRow takes a queued job's job_queue row before its jobs row, in the order a
// dequeue takes them, because the jobs triggers write job_queue: the other order could
// deadlock with a dequeue admitting the job. A dequeue that holds the row first commits,
// and the guarded statement that follows then finds the job running.
func lockQueueRow(ctx context.Context, tx pgx.Tx, ref JobRef, seen JobStatus) error {
	if seen != JobQueued {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT 1 FROM job_queue WHERE job_id = $1 FOR UPDATE`, ref.ID)
	return err
}
