package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/scheduler"
)

// sqlJobStates counts the jobs by status. Queued jobs whose wait reason is one of the
// budget's, $1 or $2, count under the state $3.
const sqlJobStates = `
SELECT CASE WHEN status = 'queued' AND wait_reason IN ($1, $2) THEN $3 ELSE status::text END, count(*)::int
FROM jobs GROUP BY 1 ORDER BY 2 DESC, 1`

func (r *Replayer) jobStates(ctx context.Context) ([]report.StateCount, error) {
	rows, err := r.store.Pool().Query(ctx, sqlJobStates, scheduler.ReasonBudget, scheduler.ReasonBudgetTooSmall,
		StateWaitingForBudget)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (report.StateCount, error) {
		var s report.StateCount
		return s, row.Scan(&s.State, &s.Jobs)
	})
}

// sqlTierWaits measures each job's wait from submission to the first container start of
// any of its runs, because a job whose first pod was preempted before its container
// started has its start in a later run. A job without a start has a NULL wait, which
// count(wait) and the percentiles skip.
//
// A wait is clamped at 0 because container start times in the pod status (metav1.Time)
// have whole seconds while created_at has microseconds, so a job started within a second
// can seem to start before its submission. The CASE keeps a NULL wait NULL, because
// GREATEST ignores NULL arguments and would return 0.
const sqlTierWaits = `
WITH waits AS (
    SELECT j.tags->>'tier' AS tier,
           CASE WHEN min(r.started_at) < j.created_at THEN 0::float8
                ELSE extract(epoch FROM min(r.started_at) - j.created_at)::float8 END AS wait
    FROM jobs j LEFT JOIN runs r ON r.job_id = j.id AND r.job_created_at = j.created_at
    GROUP BY j.id, j.created_at, 1
)
SELECT tier, count(*)::int, count(wait)::int,
       COALESCE(percentile_cont(0.5) WITHIN GROUP (ORDER BY wait), 0),
       COALESCE(percentile_cont(0.99) WITHIN GROUP (ORDER BY wait), 0),
       COALESCE(max(wait), 0)
FROM waits GROUP BY 1 ORDER BY 1`

func (r *Replayer) tierWaits(ctx context.Context) ([]report.TierWait, error) {
	rows, err := r.store.Pool().Query(ctx, sqlTierWaits)
	if err != nil {
		return nil, fmt.Errorf("query queue waits: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (report.TierWait, error) {
		var w report.TierWait
		var tier *string
		var p50, p99, most float64
		err := row.Scan(&tier, &w.Jobs, &w.Started, &p50, &p99, &most)
		if tier != nil {
			w.Tier = *tier
		}
		w.P50, w.P99, w.Max = seconds(p50), seconds(p99), seconds(most)
		return w, err
	})
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// sqlProjectUsage reads each project's jobs and GPU-hours, and its runs that ended
// preempted with the GPU-hours charged to them, which Used contains and the trace figures
// do not.
const sqlProjectUsage = `
SELECT p.id, (SELECT count(*) FROM jobs j WHERE j.project_id = p.id)::int,
       q.gpu_hours_used::float8, q.gpu_hours_budget::float8, pre.runs::int, pre.gpu_hours::float8
FROM projects p
JOIN quotas q ON q.project_id = p.id
CROSS JOIN LATERAL (
    SELECT count(*) AS runs, COALESCE(sum(r.gpu_hours_used), 0) AS gpu_hours
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE j.project_id = p.id AND r.status = 'preempted'
) pre
ORDER BY p.id`

// projectUsage returns each project's GPU-hours against its budget, its preempted runs,
// and what the trace gives its ended jobs.
func (r *Replayer) projectUsage(ctx context.Context) ([]report.ProjectUsage, error) {
	rows, err := r.store.Pool().Query(ctx, sqlProjectUsage)
	if err != nil {
		return nil, fmt.Errorf("query GPU-hours by project: %w", err)
	}
	usage, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (report.ProjectUsage, error) {
		var u report.ProjectUsage
		return u, row.Scan(&u.Project, &u.Jobs, &u.GPUHours, &u.BudgetGPUHours, &u.PreemptedRuns,
			&u.PreemptedGPUHours)
	})
	if err != nil {
		return nil, fmt.Errorf("query GPU-hours by project: %w", err)
	}

	expected, err := r.expectedByProject(ctx)
	if err != nil {
		return nil, err
	}
	for i := range usage {
		e := expected[usage[i].Project]
		usage[i].SimulatedGPUHours, usage[i].TraceGPUHours = e.simulated, e.trace
	}
	return usage, nil
}

// expectedHours is the wall-clock GPU-hours expected of a project's jobs that ran and ended.
type expectedHours struct {
	// simulated is the GPU-hours of their pods, each trace run divided by the speedup and
	// rounded to whole seconds. Accounting should charge that, up to whole-second pod
	// timestamps.
	simulated float64
	// trace is their trace GPU-hours divided by the speedup, before that rounding.
	trace float64
}

// expectedByProject sums, by project, the GPU-hours that the trace gives the jobs that
// ended after running.
func (r *Replayer) expectedByProject(ctx context.Context) (map[string]expectedHours, error) {
	ended := map[string]bool{}
	rows, err := r.store.Pool().Query(ctx, `SELECT idempotency_key FROM jobs
		WHERE status IN ('completed', 'failed') AND started_at IS NOT NULL AND idempotency_key IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("query ended jobs: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("query ended jobs: %w", err)
	}
	for _, k := range keys {
		ended[k] = true
	}

	expected := map[string]expectedHours{}
	for _, e := range r.plan.schedule.Entries {
		if !ended[e.Task.IdempotencyKey()] || e.RunForever {
			continue
		}
		project := string(trace.Project(e.Task))
		sum := expected[project]
		sum.simulated += SimulatedGPUHours(e)
		sum.trace += trace.GPUHours(e.Task) / r.cfg.Speedup
		expected[project] = sum
	}
	return expected, nil
}

// runLengths counts the schedule's runs that the speedup shortens to pods of 0 s and 1 s.
func runLengths(entries []trace.Entry) report.RunLengths {
	var counts report.RunLengths
	for _, e := range entries {
		if e.RunForever {
			continue
		}
		counts.Runs++
		traceSeconds, simulated := e.Task.RunSeconds(), SimulatedSeconds(e)
		switch {
		case traceSeconds == 0:
			counts.ZeroInTrace++
		case simulated == 0:
			counts.ShortenedToZero++
		case simulated == 1 && traceSeconds > 1:
			counts.ShortenedToOne++
		}
	}
	return counts
}

const sqlDispatch = `
SELECT count(*)::int, COALESCE(extract(epoch FROM max(pod_created_at) - min(pod_created_at)), 0)::float8,
       COALESCE((SELECT max(n) FROM (SELECT count(*) AS n FROM runs WHERE pod_created_at IS NOT NULL
                 GROUP BY date_trunc('second', pod_created_at)) b), 0)::float8
FROM runs WHERE pod_created_at IS NOT NULL`

func (r *Replayer) dispatchRate(ctx context.Context) (report.DispatchRate, error) {
	var d report.DispatchRate
	var span float64
	err := r.store.Pool().QueryRow(ctx, sqlDispatch).Scan(&d.Pods, &span, &d.PeakPerSecond)
	if span > 0 {
		d.MeanPerSecond = float64(d.Pods) / span
	}
	return d, err
}

// capacity returns the GPU capacity by model and, for fill mode, each model's GPUs in
// running runs against its capacity. Admission's allocation would also count the job
// where a fill stops when it was admitted but its pod found no node, and so hide the
// fragmentation that the fill measures.
func (r *Replayer) capacity(ctx context.Context) (map[string]int64, []report.ModelShare, error) {
	models, err := r.store.ListGPUModels(ctx)
	if err != nil {
		return nil, nil, err
	}
	running, err := runningAllocation(ctx, r.store)
	if err != nil {
		return nil, nil, err
	}
	capacity := map[string]int64{}
	var shares []report.ModelShare
	for _, m := range models {
		capacity[m.Model] = m.CapacityMilli
		shares = append(shares, report.ModelShare{Model: m.Model, AllocatedMilli: running[m.Model],
			CapacityMilli: m.CapacityMilli})
	}
	return capacity, shares, nil
}
