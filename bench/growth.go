package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/migrations"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// Growth is one database that grows through the sizes of the growth measurement: a few
// thousand queued jobs and a history of finished ones over twelve monthly partitions.
type Growth struct {
	env     *Env
	name    string
	setup   *DequeueSetup
	history int // finished jobs seeded so far
	log     func(string, ...any)
}

// NewGrowth creates the growth database with queued jobs and no history yet.
func NewGrowth(ctx context.Context, env *Env, name string, queued int) (*Growth, error) {
	setup, err := NewDequeueSetup(ctx, env, name, queued)
	if err != nil {
		return nil, err
	}
	return &Growth{env: env, name: name, setup: setup, log: env.Log.Info}, nil
}

// Pool returns the growth database's pool.
func (g *Growth) Pool() *pgxpool.Pool { return g.setup.Pool }

// GrowTo adds finished jobs until jobs holds total rows, queued ones included, then
// vacuums and analyzes jobs.
func (g *Growth) GrowTo(ctx context.Context, total int) error {
	add := total - g.setup.Queued - g.history
	if add <= 0 {
		return nil
	}
	if err := seedHistory(ctx, g.setup.Pool, add, g.log); err != nil {
		return err
	}
	g.history += add
	started := time.Now()
	if err := vacuumAnalyze(ctx, g.setup.Pool, "jobs", "job_queue"); err != nil {
		return err
	}
	g.log("vacuumed jobs", "rows", total, "seconds", time.Since(started).Seconds())
	return nil
}

// Measure drains the queue once with workers loops and returns jobs per second.
func (g *Growth) Measure(ctx context.Context, workers int) (float64, error) {
	return g.setup.Measure(ctx, workers)
}

// DequeuePlans runs one dequeue on a connection that records plans, and returns the plans
// of the candidate query and of the statement that marks admitted jobs running, the one
// that touches the partitioned jobs table. The queue is put back afterwards.
func (g *Growth) DequeuePlans(ctx context.Context) (candidates, admitJobs string, err error) {
	rec, err := NewPlanRecorder(ctx, g.env, g.name)
	if err != nil {
		return "", "", err
	}
	defer rec.Close()
	loop := scheduler.New(store.New(rec.Pool), scheduler.Config{Batch: DequeueBatch,
		Policy: scheduler.Policy{StarvationBound: 10 * time.Minute}})
	if _, err := loop.RunOnce(ctx); err != nil {
		return "", "", fmt.Errorf("dequeue with plans recorded: %w", err)
	}
	if _, err := requeue(ctx, g.setup.Pool); err != nil {
		return "", "", err
	}
	return firstPlan(rec.Find("FROM job_queue q", "SKIP LOCKED"), "the candidate query"),
		firstPlan(rec.Find("UPDATE jobs j SET status = 'running'"), "the admission update"), nil
}

// AddRuns gives every finished job perJob runs, for the accounting measurement.
func (g *Growth) AddRuns(ctx context.Context, perJob int) error {
	if err := seedRuns(ctx, g.setup.Pool, perJob, g.log); err != nil {
		return err
	}
	started := time.Now()
	if err := vacuumAnalyze(ctx, g.setup.Pool, "runs", "gpu_hours_daily"); err != nil {
		return err
	}
	g.log("vacuumed runs", "seconds", time.Since(started).Seconds())
	return nil
}

// ReportPeriod is a period the accounting measurement reports on.
type ReportPeriod struct {
	Name     string
	From, To time.Time
}

// ReportPeriods returns the last full month and the whole year of history.
func ReportPeriods(now time.Time) []ReportPeriod {
	month := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return []ReportPeriod{
		{Name: "last full month", From: month.AddDate(0, -1, 0), To: month},
		{Name: "12 months", From: month.AddDate(0, -(historyMonths - 1), 0), To: month.AddDate(0, 1, 0)},
	}
}

// MeasureReport times accounting.Report over period once and returns seconds and the
// number of lines.
func (g *Growth) MeasureReport(ctx context.Context, period ReportPeriod) (float64, int, error) {
	var lines []accounting.Line
	elapsed, err := timed(func() error {
		var err error
		lines, err = accounting.Report(ctx, store.New(g.setup.Pool), period.From, period.To)
		return err
	})
	if err != nil {
		return 0, 0, err
	}
	return elapsed.Seconds(), len(lines), nil
}

// ReportPlan runs accounting.Report over period on a plan-recording connection and returns
// its plan.
func (g *Growth) ReportPlan(ctx context.Context, period ReportPeriod) (string, error) {
	rec, err := NewPlanRecorder(ctx, g.env, g.name)
	if err != nil {
		return "", err
	}
	defer rec.Close()
	if _, err := accounting.Report(ctx, store.New(rec.Pool), period.From, period.To); err != nil {
		return "", err
	}
	return firstPlan(rec.Find("GROUP BY ROLLUP"), "the report"), nil
}

// Counts returns the rows in jobs and runs.
func (g *Growth) Counts(ctx context.Context) (jobs, runs int64, err error) {
	err = g.setup.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM runs)`).
		Scan(&jobs, &runs)
	return jobs, runs, err
}

// rollupMigration is the migration that creates gpu_hours_daily and fills it from the runs
// already stored.
const rollupMigration = 8

// sqlRollupTotals sums the rollup per project, to compare the backfill with the rows the
// seeding of the runs wrote.
const sqlRollupTotals = `SELECT coalesce(string_agg(format('%s:%s:%s:%s', project_id, runs, jobs, gpu_hours), ','
    ORDER BY project_id), '')
FROM (SELECT project_id, sum(runs) AS runs, sum(jobs) AS jobs, sum(gpu_hours) AS gpu_hours
      FROM gpu_hours_daily GROUP BY project_id) t`

// MeasureBackfill migrates the database down to just before the GPU-hour rollup and up
// again, and returns the seconds the way up took: the time an upgrade to that migration
// takes over this history. The rebuilt rollup must equal the one the seeding wrote.
func (g *Growth) MeasureBackfill(ctx context.Context) (float64, error) {
	conn, err := g.setup.Pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()

	var seeded string
	if err := conn.QueryRow(ctx, sqlRollupTotals).Scan(&seeded); err != nil {
		return 0, fmt.Errorf("sum the rollup written by the seeding: %w", err)
	}
	if seeded == "" {
		return 0, errors.New("the rollup is empty before the backfill, so the comparison would check nothing")
	}
	latest, err := migrations.Latest()
	if err != nil {
		return 0, err
	}
	if err := migrations.To(ctx, conn.Conn(), rollupMigration-1); err != nil {
		return 0, fmt.Errorf("migrate down to %d: %w", rollupMigration-1, err)
	}

	started := time.Now()
	if err := migrations.To(ctx, conn.Conn(), latest); err != nil {
		return 0, fmt.Errorf("migrate up to %d: %w", latest, err)
	}
	elapsed := time.Since(started)

	var rebuilt string
	if err := conn.QueryRow(ctx, sqlRollupTotals).Scan(&rebuilt); err != nil {
		return 0, fmt.Errorf("sum the rebuilt rollup: %w", err)
	}
	if rebuilt != seeded {
		return 0, fmt.Errorf("the backfilled rollup differs from the one the seeding wrote: %q against %q", rebuilt, seeded)
	}
	return elapsed.Seconds(), nil
}
