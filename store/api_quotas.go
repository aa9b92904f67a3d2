package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// QuotaState is a quota with the drain deadline that migration 6 added.
type QuotaState struct {
	Quota
	DrainDeadline *time.Time `db:"drain_deadline"`
}

// GPUHoursLeft returns the GPU-hours the project may still reserve: budget minus used and
// reserved, to the 4 decimals of the quota columns. A float64 difference would show
// 246.23169999999996 for 246.2317.
func (q QuotaState) GPUHoursLeft() float64 {
	left := q.GPUHoursBudget - q.GPUHoursUsed - q.GPUHoursReserved
	return math.Round(left*10_000) / 10_000
}

const quotaStateColumns = quotaColumns + `, drain_deadline`

const sqlGetQuotaState = `SELECT ` + quotaStateColumns + ` FROM quotas WHERE project_id = $1`

// GetQuotaState reads a project's quota with its drain deadline.
func (s *Store) GetQuotaState(ctx context.Context, projectID string) (QuotaState, error) {
	return getQuotaState(ctx, s.pool, projectID, sqlGetQuotaState)
}

// querier is the query method that pgxpool.Pool and pgx.Tx share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getQuotaState(ctx context.Context, db querier, projectID, sql string) (QuotaState, error) {
	doing := "get quota of " + projectID
	rows, err := db.Query(ctx, sql, projectID)
	if err != nil {
		return QuotaState{}, wrap(err, doing)
	}
	q, err := collectOne[QuotaState](rows)
	return q, wrap(err, doing)
}

const sqlLockQuotaState = sqlGetQuotaState + ` FOR UPDATE`

// The quota statement of SetQuota. Beyond the schema's checks it keeps the budget at or
// above what is used and reserved, because the end of a run releases its reservation with a
// statement that requires used + reserved <= budget: a lower budget would leave runs that
// can never end. The limit stays at or above the jobs admitted, as the schema requires.
const sqlSetQuota = `
INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, priority_tier, period_start, period_end)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (project_id) DO UPDATE
SET gpu_hours_budget = EXCLUDED.gpu_hours_budget, max_concurrent_jobs = EXCLUDED.max_concurrent_jobs,
    priority_tier = EXCLUDED.priority_tier, period_start = EXCLUDED.period_start,
    period_end = EXCLUDED.period_end
WHERE quotas.gpu_hours_used + quotas.gpu_hours_reserved <= EXCLUDED.gpu_hours_budget
  AND quotas.current_concurrent <= EXCLUDED.max_concurrent_jobs
RETURNING ` + quotaStateColumns

// QuotaConflictError is returned by SetQuota when the new limits are below what the
// project's admitted jobs hold now.
type QuotaConflictError struct {
	Field string  // gpu_hours_budget or max_concurrent_jobs
	InUse float64 // GPU-hours used and reserved, or jobs admitted
	// Budget, Used and Reserved are the rejected budget and the GPU-hours that InUse adds
	// up, set only for gpu_hours_budget. Used falls back to 0 only when the period renews
	// on PeriodEnd, while Reserved shrinks as admitted jobs end.
	Budget, Used, Reserved float64
	PeriodEnd              time.Time
}

func (e *QuotaConflictError) Error() string {
	return fmt.Sprintf("%s is below the %v the project's jobs hold now", e.Field, e.InUse)
}

// SetQuota creates or replaces a project's budget, concurrency limit, tier and period,
// keeping what is used, reserved and drained. A budget below used plus reserved, or a
// limit below the jobs admitted now, is a *QuotaConflictError and changes nothing.
func (s *Store) SetQuota(ctx context.Context, q Quota, audit *Audit) (QuotaState, error) {
	doing := "set quota of " + q.ProjectID
	var after QuotaState
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// A quota that does not exist yet has no row to lock, so two first SetQuota calls
		// would both audit a creation. The project's row serializes them instead. NO KEY
		// UPDATE leaves the project's jobs free to be inserted meanwhile.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM projects WHERE id = $1 FOR NO KEY UPDATE`, q.ProjectID); err != nil {
			return err
		}
		before, err := getQuotaState(ctx, tx, q.ProjectID, sqlLockQuotaState)
		exists := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		var beforeImage any
		if exists {
			beforeImage = quotaImage(before)
		}
		after, err = writeQuota(ctx, tx, q, before, beforeImage, audit)
		return err
	})
	return after, wrap(err, doing)
}

// QuotaChange is a change of some fields of a quota. A nil field keeps its value.
type QuotaChange struct {
	GPUHoursBudget         *float64
	MaxConcurrentJobs      *int
	PriorityTier           *int
	PeriodStart, PeriodEnd *time.Time
}

// ErrPeriodOrder is returned by ChangeQuota when the period would end on or before its start.
var ErrPeriodOrder = errors.New("period_end must be after period_start")

// PeriodOrderError is ChangeQuota's ErrPeriodOrder with the period that the change would
// leave: the given dates, and the quota's current ones for the dates the change keeps.
type PeriodOrderError struct {
	Start, End time.Time
}

func (e *PeriodOrderError) Error() string {
	return fmt.Sprintf("period_end %s must be after period_start %s",
		e.End.Format(time.DateOnly), e.Start.Format(time.DateOnly))
}

// Is makes errors.Is(err, ErrPeriodOrder) true for a *PeriodOrderError.
func (e *PeriodOrderError) Is(target error) bool { return target == ErrPeriodOrder }

// ChangeQuota applies change to a project's quota under the quota's row lock. Two changes
// of different fields, or a change made while the scheduler renews the period, therefore
// keep each other's values, which reading the quota and calling SetQuota would not. It
// returns ErrNotFound when the project has no quota, a *PeriodOrderError when the period
// would end on or before its start, and a *QuotaConflictError as SetQuota does.
func (s *Store) ChangeQuota(ctx context.Context, projectID string, change QuotaChange, audit *Audit) (QuotaState, error) {
	doing := "change quota of " + projectID
	var after QuotaState
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		before, err := getQuotaState(ctx, tx, projectID, sqlLockQuotaState)
		if err != nil {
			return err
		}
		q := change.applyTo(before.Quota)
		if !q.PeriodEnd.After(q.PeriodStart) {
			return &PeriodOrderError{Start: q.PeriodStart, End: q.PeriodEnd}
		}
		after, err = writeQuota(ctx, tx, q, before, quotaImage(before), audit)
		return err
	})
	return after, wrap(err, doing)
}

// applyTo returns q with the change's fields set.
func (c QuotaChange) applyTo(q Quota) Quota {
	if c.GPUHoursBudget != nil {
		q.GPUHoursBudget = *c.GPUHoursBudget
	}
	if c.MaxConcurrentJobs != nil {
		q.MaxConcurrentJobs = *c.MaxConcurrentJobs
	}
	if c.PriorityTier != nil {
		q.PriorityTier = *c.PriorityTier
	}
	if c.PeriodStart != nil {
		q.PeriodStart = *c.PeriodStart
	}
	if c.PeriodEnd != nil {
		q.PeriodEnd = *c.PeriodEnd
	}
	return q
}

// writeQuota writes q over the locked quota before (or a new one) and audits the change.
func writeQuota(ctx context.Context, tx pgx.Tx, q Quota, before QuotaState, beforeImage any, audit *Audit) (QuotaState, error) {
	rows, err := tx.Query(ctx, sqlSetQuota, q.ProjectID, q.GPUHoursBudget, q.MaxConcurrentJobs,
		q.PriorityTier, q.PeriodStart, q.PeriodEnd)
	if err != nil {
		return QuotaState{}, err
	}
	after, err := collectOne[QuotaState](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return QuotaState{}, quotaConflict(before, q)
	}
	if err != nil {
		return QuotaState{}, err
	}
	// A higher budget or limit, or a new period, may let held jobs start.
	if err := wakeScheduler(ctx, tx); err != nil {
		return QuotaState{}, err
	}
	return after, writeAudit(ctx, tx, audit, q.ProjectID, nil, beforeImage, quotaImage(after))
}

// quotaConflict names the limit that the guard of sqlSetQuota found too low. The quota row
// is locked, so before is still what the guard compared with.
func quotaConflict(before QuotaState, q Quota) error {
	if q.MaxConcurrentJobs < before.CurrentConcurrent {
		return &QuotaConflictError{Field: "max_concurrent_jobs", InUse: float64(before.CurrentConcurrent)}
	}
	return &QuotaConflictError{Field: "gpu_hours_budget", InUse: before.GPUHoursUsed + before.GPUHoursReserved,
		Budget: q.GPUHoursBudget, Used: before.GPUHoursUsed, Reserved: before.GPUHoursReserved,
		PeriodEnd: before.PeriodEnd}
}
