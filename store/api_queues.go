package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// QueueDepth is how many of a project's jobs are in one status.
type QueueDepth struct {
	ProjectID string    `db:"project_id"`
	Status    JobStatus `db:"status"`
	Jobs      int64     `db:"jobs"`
}

// Only the statuses a job leaves again are counted: the final ones grow without bound and
// the status index makes these counts cheap.
const sqlQueueDepths = `
SELECT project_id, status::text AS status, count(*) AS jobs
FROM jobs
WHERE status IN ('submitted', 'queued', 'running', 'paused')
GROUP BY project_id, status
ORDER BY project_id, status`

// QueueDepths counts every project's submitted, queued, running and paused jobs. Projects
// and statuses without jobs have no row.
func (s *Store) QueueDepths(ctx context.Context) ([]QueueDepth, error) {
	rows, err := s.pool.Query(ctx, sqlQueueDepths)
	if err != nil {
		return nil, wrap(err, "count jobs by project and status")
	}
	depths, err := collectAll[QueueDepth](rows)
	return depths, wrap(err, "count jobs by project and status")
}

const sqlListQuotaStates = `SELECT ` + quotaStateColumns + ` FROM quotas ORDER BY project_id`

// ListQuotaStates reads every project's quota, ordered by project.
func (s *Store) ListQuotaStates(ctx context.Context) ([]QuotaState, error) {
	rows, err := s.pool.Query(ctx, sqlListQuotaStates)
	if err != nil {
		return nil, wrap(err, "list quotas")
	}
	quotas, err := collectAll[QuotaState](rows)
	return quotas, wrap(err, "list quotas")
}

// DrainReason is the end reason of the runs that a drain or its deadline preempts.
const DrainReason = "queue drained"

const sqlDrainQuota = `
UPDATE quotas SET drained_at = COALESCE(drained_at, $2), drain_deadline = $3
WHERE project_id = $1`

// The stop of the project's runs that were admitted but have not started: their pod may not
// exist yet, exist and wait for a node, or have a container that started unseen (while no
// dispatcher ran, say). Ending them at once would requeue a job whose pod may still run and
// leave that container's hours uncharged, so each gets a stop as preempted instead. The
// dispatcher deletes its pod, records a start it finds first, and ends the run once the pod
// is gone. A run that the dispatcher is already stopping keeps its own stop.
const sqlStopPendingRunsOfProject = `
UPDATE runs r SET stop_status = 'preempted', stop_reason = $2, stop_retryable = false,
    stop_requested_at = $3
FROM jobs j
WHERE j.id = r.job_id AND j.created_at = r.job_created_at
  AND j.project_id = $1 AND r.status = 'pending' AND r.stop_status IS NULL
RETURNING r.id, r.job_id, r.job_created_at`

// DrainResult is the outcome of a drain.
type DrainResult struct {
	Quota QuotaState
	// Requeued are the runs that were admitted but had not started. Each ends as preempted,
	// and its job goes back to the queue, once the dispatcher has stopped its pod.
	Requeued []RequeuedRun
}

// RequeuedRun is a run that a drain stops before it started.
type RequeuedRun struct {
	RunID uuid.UUID
	Job   JobRef
}

// DrainQueue stops the project's queued jobs from starting: it sets drained_at (kept when
// already drained) and deadline, and records a stop as preempted on the project's pending
// runs, all in one transaction.
//
// Admission locks the quota row and its statement requires drained_at IS NULL, so locking
// the row here waits for a dequeue in flight, and the pending runs that dequeue created
// are then stopped too. Each stopped run holds its slot and reservation until the
// dispatcher has deleted its pod and seen it gone. A container that started meanwhile is
// charged from its start, and the job is queued again only after its pod is gone, so it
// never has two pods. Running runs go on until deadline, when the dispatcher preempts
// them. A nil deadline lets them finish.
func (s *Store) DrainQueue(ctx context.Context, projectID string, at time.Time, deadline *time.Time, audit *Audit) (DrainResult, error) {
	doing := "drain queue of " + projectID
	var result DrainResult
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		before, err := getQuotaState(ctx, tx, projectID, sqlLockQuotaState)
		if err != nil {
			return err
		}

		if _, err := tx.Exec(ctx, sqlDrainQuota, projectID, at, deadline); err != nil {
			return err
		}
		result.Requeued, err = stopPendingRuns(ctx, tx, projectID, at)
		if err != nil {
			return err
		}

		result.Quota, err = getQuotaState(ctx, tx, projectID, sqlGetQuotaState)
		if err != nil {
			return err
		}
		after := quotaImage(result.Quota)
		after["requeued_runs"] = len(result.Requeued)
		return writeAudit(ctx, tx, audit, projectID, nil, quotaImage(before), after)
	})
	return result, wrap(err, doing)
}

// stopPendingRuns records the drain's stop on the project's pending runs and returns them.
func stopPendingRuns(ctx context.Context, tx pgx.Tx, projectID string, at time.Time) ([]RequeuedRun, error) {
	rows, err := tx.Query(ctx, sqlStopPendingRunsOfProject, projectID, DrainReason, at)
	if err != nil {
		return nil, fmt.Errorf("stop pending runs: %w", err)
	}
	var run RequeuedRun
	stopped := []RequeuedRun{}
	_, err = pgx.ForEachRow(rows, []any{&run.RunID, &run.Job.ID, &run.Job.CreatedAt}, func() error {
		stopped = append(stopped, run)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stop pending runs: %w", err)
	}
	return stopped, nil
}

const sqlUndrainQuota = `
UPDATE quotas SET drained_at = NULL, drain_deadline = NULL
WHERE project_id = $1 AND drained_at IS NOT NULL
RETURNING ` + quotaStateColumns

// UndrainQueue lets the project's queued jobs start again and wakes the scheduler. It
// returns changed false, and records nothing, when the queue was not drained.
func (s *Store) UndrainQueue(ctx context.Context, projectID string, audit *Audit) (q QuotaState, changed bool, err error) {
	doing := "undrain queue of " + projectID
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := getQuotaState(ctx, tx, projectID, sqlLockQuotaState)
		if err != nil {
			return err
		}
		if before.DrainedAt == nil {
			q = before
			return nil
		}

		rows, err := tx.Query(ctx, sqlUndrainQuota, projectID)
		if err != nil {
			return err
		}
		q, err = collectOne[QuotaState](rows)
		if err != nil {
			return err
		}
		changed = true
		if err := wakeScheduler(ctx, tx); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit, projectID, nil, quotaImage(before), quotaImage(q))
	})
	return q, changed, wrap(err, doing)
}

// sqlLockQueueOfProject locks the project's job_queue rows before their jobs, the order in
// which a dequeue locks them. The priority trigger writes job_queue, so locking the jobs
// first could deadlock with a dequeue that admits the same jobs.
const sqlLockQueueOfProject = `
SELECT job_id FROM job_queue WHERE project_id = $1 ORDER BY job_id FOR UPDATE`

// The priority bounds of a job, as the jobs table checks them.
const (
	MinPriority = 0
	MaxPriority = 100
)

// sqlLockQueuedJobs locks the project's queued jobs and reads their priorities: the jobs
// that a reprioritization checks and then changes. A job queued after this statement is
// neither checked nor changed.
const sqlLockQueuedJobs = `
SELECT id, created_at, priority FROM jobs
WHERE project_id = $1 AND status = 'queued'
ORDER BY id
FOR UPDATE`

// sqlShiftPriorities adds $1 to the priority of the jobs $2 (ids) created at $3, which
// sqlLockQueuedJobs locked, and returns each job's priority before and after.
const sqlShiftPriorities = `
UPDATE jobs j SET priority = j.priority + $1
FROM unnest($2::uuid[], $3::timestamptz[]) AS locked(id, created_at)
WHERE j.id = locked.id AND j.created_at = locked.created_at AND j.status = 'queued'
RETURNING j.id, j.priority - $1, j.priority`

// PriorityChange is one job's priority before and after a reprioritization.
type PriorityChange struct {
	JobID  uuid.UUID
	Before int
	After  int
}

// PriorityRangeError is returned when a reprioritization would move queued jobs outside
// MinPriority..MaxPriority. Nothing changes then, because capping those jobs at the bound
// would lose their order relative to each other.
type PriorityRangeError struct {
	Delta int
	// Jobs are the queued jobs out of range, with After outside the bounds, furthest first.
	Jobs []PriorityChange
	// MinDelta and MaxDelta bound the deltas that keep every queued job of the project in
	// range.
	MinDelta, MaxDelta int
}

func (e *PriorityRangeError) Error() string {
	return fmt.Sprintf("delta %d would move %d queued jobs outside priorities %d to %d; deltas from %d to %d fit",
		e.Delta, len(e.Jobs), MinPriority, MaxPriority, e.MinDelta, e.MaxDelta)
}

func (e *PriorityRangeError) Unwrap() error { return ErrInvalid }

// ReprioritizeQueue adds delta to the priority of each of the project's queued jobs and
// returns the jobs whose priority changed. When a result would leave
// MinPriority..MaxPriority it changes nothing and returns a *PriorityRangeError.
func (s *Store) ReprioritizeQueue(ctx context.Context, projectID string, delta int, audit *Audit) ([]PriorityChange, error) {
	doing := fmt.Sprintf("shift priorities of queue %s by %d", projectID, delta)
	var changes []PriorityChange
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		changes = nil
		if _, err := tx.Exec(ctx, sqlLockQueueOfProject, projectID); err != nil {
			return err
		}
		queued, err := lockQueuedJobs(ctx, tx, projectID)
		if err != nil {
			return err
		}
		if err := checkPriorityRange(queued, delta); err != nil {
			return err
		}
		if changes, err = shiftPriorities(ctx, tx, queued, delta); err != nil {
			return err
		}

		oldPriorities := make(map[string]int, len(changes))
		newPriorities := make(map[string]int, len(changes))
		for _, c := range changes {
			oldPriorities[c.JobID.String()] = c.Before
			newPriorities[c.JobID.String()] = c.After
		}
		before := map[string]any{"delta": delta, "priorities": oldPriorities}
		return writeAudit(ctx, tx, audit, projectID, nil, before, map[string]any{"priorities": newPriorities})
	})
	return changes, wrap(err, doing)
}

// queuedPriority is a queued job, locked, with its priority.
type queuedPriority struct {
	Job      JobRef
	Priority int
}

func lockQueuedJobs(ctx context.Context, tx pgx.Tx, projectID string) ([]queuedPriority, error) {
	rows, err := tx.Query(ctx, sqlLockQueuedJobs, projectID)
	if err != nil {
		return nil, err
	}
	var queued []queuedPriority
	var q queuedPriority
	_, err = pgx.ForEachRow(rows, []any{&q.Job.ID, &q.Job.CreatedAt, &q.Priority}, func() error {
		queued = append(queued, q)
		return nil
	})
	return queued, err
}

// checkPriorityRange returns a *PriorityRangeError when delta would move one of the queued
// jobs outside MinPriority..MaxPriority.
func checkPriorityRange(queued []queuedPriority, delta int) error {
	if len(queued) == 0 {
		return nil
	}
	rangeErr := &PriorityRangeError{Delta: delta, MinDelta: -MaxPriority, MaxDelta: MaxPriority}
	for _, q := range queued {
		rangeErr.MinDelta = max(rangeErr.MinDelta, MinPriority-q.Priority)
		rangeErr.MaxDelta = min(rangeErr.MaxDelta, MaxPriority-q.Priority)
		if after := q.Priority + delta; after < MinPriority || after > MaxPriority {
			rangeErr.Jobs = append(rangeErr.Jobs, PriorityChange{JobID: q.Job.ID, Before: q.Priority, After: after})
		}
	}
	if len(rangeErr.Jobs) == 0 {
		return nil
	}
	// Furthest past the bound first, then by id, so that the order does not depend on the
	// order of the rows.
	slices.SortFunc(rangeErr.Jobs, func(a, b PriorityChange) int {
		return cmp.Or(cmp.Compare(overshoot(b.After), overshoot(a.After)),
			strings.Compare(a.JobID.String(), b.JobID.String()))
	})
	return rangeErr
}

// overshoot is how far priority lies outside MinPriority..MaxPriority.
func overshoot(priority int) int {
	return max(priority-MaxPriority, MinPriority-priority)
}

// shiftPriorities adds delta to the priorities of the queued jobs, which the caller locked.
func shiftPriorities(ctx context.Context, tx pgx.Tx, queued []queuedPriority, delta int) ([]PriorityChange, error) {
	ids := make([]uuid.UUID, len(queued))
	createdAts := make([]time.Time, len(queued))
	for i, q := range queued {
		ids[i], createdAts[i] = q.Job.ID, q.Job.CreatedAt
	}
	rows, err := tx.Query(ctx, sqlShiftPriorities, delta, ids, createdAts)
	if err != nil {
		return nil, err
	}
	var changes []PriorityChange
	var c PriorityChange
	_, err = pgx.ForEachRow(rows, []any{&c.JobID, &c.Before, &c.After}, func() error {
		changes = append(changes, c)
		return nil
	})
	return changes, err
}

// DrainDeadline returns the drain deadline of the project's queue, or nil when the queue
// is not drained, has no deadline, or the project has no quota.
func (s *Store) DrainDeadline(ctx context.Context, projectID string) (*time.Time, error) {
	var deadline *time.Time
	err := s.pool.QueryRow(ctx, `SELECT drain_deadline FROM quotas WHERE project_id = $1`, projectID).
		Scan(&deadline)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return deadline, wrap(err, "read drain deadline of "+projectID)
}
