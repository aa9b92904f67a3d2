package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// BudgetRenewal is one quota moved on to a new budget period, with its used GPU-hours set
// back to zero.
type BudgetRenewal struct {
	ProjectID string
	// OldStart and OldEnd are the period that ended, NewStart and NewEnd the one that
	// contains the day of the renewal. Each end is the first day after its period.
	OldStart, OldEnd time.Time
	NewStart, NewEnd time.Time
	// UsedBefore is the GPU-hours the old period used: its ended runs, and the hours of its
	// running runs up to the new period's start (ChargedLiveRuns).
	UsedBefore      float64
	ChargedLiveRuns float64
}

// NextPeriod steps the ended period [start, end) forward by its own length until it
// contains day. Values are UTC dates. A period of whole months that starts on day 1 to 28
// steps by months, so that a monthly budget keeps its day of the month. Any other period
// steps by days.
func NextPeriod(start, end, day time.Time) (time.Time, time.Time) {
	months := monthNumber(end) - monthNumber(start)
	if months > 0 && start.Day() <= 28 && start.AddDate(0, months, 0).Equal(end) {
		steps := (monthNumber(day) - monthNumber(end)) / months
		for !end.AddDate(0, steps*months, 0).After(day) {
			steps++
		}
		return start.AddDate(0, steps*months, 0), end.AddDate(0, steps*months, 0)
	}

	days := daysBetween(start, end)
	steps := daysBetween(end, day)/days + 1
	return start.AddDate(0, 0, steps*days), end.AddDate(0, 0, steps*days)
}

// monthNumber numbers months consecutively, so that differences count months.
func monthNumber(t time.Time) int { return t.Year()*12 + int(t.Month()) - 1 }

// daysBetween counts the days from one UTC date to a later one. It counts in Unix seconds
// because a time.Duration holds at most about 292 years, and the API accepts dates further
// apart than that.
func daysBetween(from, to time.Time) int { return int((to.Unix() - from.Unix()) / 86400) }

// The quotas whose period has ended by the database's date, the clock that admission
// reads too, and that date. Their bounds are finite (migration 11), so each has a length to
// step by. A quota locked by another transaction is skipped, not waited for: the scheduler
// tries again within seconds, and a held row must not stall its loop.
const sqlExpiredQuotas = `
SELECT project_id, period_start, period_end, gpu_hours_used::float8,
       (now() AT TIME ZONE 'UTC')::date AS today
FROM quotas WHERE period_end <= (now() AT TIME ZONE 'UTC')::date
ORDER BY project_id FOR UPDATE SKIP LOCKED`

// The statement that starts a new period of a project. A running run that started before
// the new period's start ($4: $2 as midnight UTC) is charged its hours up to that start, less
// what earlier renewals charged it. That start is the old period's end, or a later one when
// the renewal comes more than a period late, whose skipped periods then count as the old
// one. The renewal moves that part from the quota's reservation to the old period, so the
// run's end debits only the rest to the new one. The runs are locked after the quota row,
// the reverse of a run's end, so waiting for them could deadlock. Instead, when another
// transaction holds one of them (an end, a start or an accrual being recorded), the
// statement changes nothing and returns no row, and the renewal of this quota waits for
// the next try. Otherwise it returns the hours charged.
const sqlRenewQuota = `
WITH live AS (
    SELECT r.id, r.gpu_hours_charged AS before,
           round(LEAST(r.gpu_hours_reserved, r.gpu_milli / 1000.0
                 * greatest(0, extract(epoch FROM $4::timestamptz - r.started_at)) / 3600.0), 4) AS upto
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE r.status = 'running' AND r.started_at < $4 AND j.project_id = $1
    FOR UPDATE OF r SKIP LOCKED
), all_live AS (
    SELECT count(*) AS n
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE r.status = 'running' AND r.started_at < $4 AND j.project_id = $1
), locked AS (
    SELECT (SELECT n FROM all_live) = (SELECT count(*) FROM live) AS all_runs
), charged AS (
    UPDATE runs r SET gpu_hours_charged = live.upto
    FROM live, locked WHERE locked.all_runs AND r.id = live.id AND live.upto > live.before
    RETURNING live.upto - live.before AS hours
), total AS (
    SELECT coalesce(sum(hours), 0) AS hours FROM charged
)
UPDATE quotas SET period_start = $2, period_end = $3, gpu_hours_used = 0,
    gpu_hours_reserved = gpu_hours_reserved - total.hours
FROM total, locked WHERE locked.all_runs AND project_id = $1
RETURNING total.hours::float8`

// renewQuota moves r's quota on to the period that contains today and adds the hours it
// charged to running runs to the old period's use. It reports false when another
// transaction held one of those runs, and the quota was left as it was.
func renewQuota(ctx context.Context, tx pgx.Tx, r *BudgetRenewal, today time.Time) (bool, error) {
	r.NewStart, r.NewEnd = NextPeriod(r.OldStart, r.OldEnd, today)
	var charged float64
	err := tx.QueryRow(ctx, sqlRenewQuota, r.ProjectID, r.NewStart, r.NewEnd, r.NewStart).Scan(&charged)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("renew the budget of %s: %w", r.ProjectID, err)
	}
	r.UsedBefore += charged
	r.ChargedLiveRuns = charged
	return true, nil
}

// RenewBudgets starts a new budget period for every quota whose period ended on or before
// today's UTC date, except quotas that another transaction holds locked or whose running
// runs it holds, and returns what it changed, in project order. Today is the database's date, not this host's: admission
// checks periods against the database's clock, so a host clock that runs behind or ahead
// would leave a project without a current period for as long as the difference. It wakes
// the schedulers, since jobs held back by the budget may now fit.
func (s *Store) RenewBudgets(ctx context.Context) ([]BudgetRenewal, error) {
	var renewals []BudgetRenewal
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlExpiredQuotas)
		if err != nil {
			return err
		}
		var today time.Time
		renewals, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (BudgetRenewal, error) {
			var r BudgetRenewal
			err := row.Scan(&r.ProjectID, &r.OldStart, &r.OldEnd, &r.UsedBefore, &today)
			return r, err
		})
		if err != nil {
			return err
		}

		renewed := renewals[:0]
		for _, r := range renewals {
			ok, err := renewQuota(ctx, tx, &r, today)
			if err != nil {
				return err
			}
			if ok {
				renewed = append(renewed, r)
			}
		}
		renewals = renewed
		if len(renewals) == 0 {
			return nil
		}
		return wakeScheduler(ctx, tx)
	})
	return renewals, wrap(err, "renew budgets")
}
