package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Querier is the query method the collector needs, as *pgxpool.Pool has it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Job statuses that count toward queue depth: every status a job has before it ends.
var liveJobStatuses = []string{"submitted", "queued", "running", "paused"}

// databaseCollector reads the gauges of database state on every scrape, each query bounded
// by the scrape's timeout. A query that fails leaves its series out of that scrape and sets
// schedulerd_database_up to 0.
type databaseCollector struct {
	m   *Metrics
	db  Querier
	log *slog.Logger

	jobs, budget, used, reserved, concurrent, maxConcurrent *prometheus.Desc
	runningGPUs, heldJobs                                   *prometheus.Desc
	modelCapacity, modelAllocated, runway, cronSuccess, up  *prometheus.Desc
	outbox, outboxAge                                       *prometheus.Desc
}

// holdReasons are the reason label values of schedulerd_queued_jobs_held: what keeps a
// queued job's project from taking it now. The candidate query of a dequeue leaves these
// jobs out, so schedulerd_admission_decisions_total does not count them.
var holdReasons = []string{"no_quota", "drained", "period", "concurrency", "budget"}

// CollectDatabase registers the collector of database gauges: queue depth, project quotas,
// GPU capacity by model, the jobs partition runway and cron task successes. Failed queries
// are logged at Warn on log.
func (m *Metrics) CollectDatabase(db Querier, log *slog.Logger) {
	if m == nil {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	projectHelp := func(what string) string { return what + " project is the project id." }
	c := &databaseCollector{m: m, db: db, log: log,
		jobs: prometheus.NewDesc("schedulerd_jobs",
			"Jobs that have not ended (queue depth), from the database at scrape time. project is the "+
				"project id; status is "+labelList(liveJobStatuses)+"; tier is the priority tier: "+
				labelList(tierNames(m.opts.Tiers))+".",
			[]string{"project", "status", "tier"}, nil),
		budget: prometheus.NewDesc("schedulerd_project_gpu_budget_seconds",
			projectHelp("GPU-time budget of the project's quota period, in GPU-seconds (3600 make a GPU-hour)."),
			[]string{"project"}, nil),
		used: prometheus.NewDesc("schedulerd_project_gpu_used_seconds",
			projectHelp("GPU time debited from the project's budget by ended runs, in GPU-seconds."),
			[]string{"project"}, nil),
		reserved: prometheus.NewDesc("schedulerd_project_gpu_reserved_seconds",
			projectHelp("GPU time that the project's admitted jobs may still use, in GPU-seconds."),
			[]string{"project"}, nil),
		concurrent: prometheus.NewDesc("schedulerd_project_admitted_jobs",
			projectHelp("Jobs of the project admitted and not yet ended."),
			[]string{"project"}, nil),
		maxConcurrent: prometheus.NewDesc("schedulerd_project_max_concurrent_jobs",
			projectHelp("Concurrency limit of the project's quota."),
			[]string{"project"}, nil),
		runningGPUs: prometheus.NewDesc("schedulerd_project_running_gpus",
			projectHelp("GPUs held by the project's running runs at scrape time; its average over an "+
				"hour is the GPU-hours used in that hour."),
			[]string{"project"}, nil),
		heldJobs: prometheus.NewDesc("schedulerd_queued_jobs_held",
			"Queued jobs that their project's quota holds back, by reason, at scrape time: "+
				"no_quota, drained, period (not started), concurrency (limit reached) or budget "+
				"(too little left for the job's reservation), the first that applies. Queued "+
				"jobs not counted here wait for GPU capacity or their turn. project is the project id.",
			[]string{"project", "reason"}, nil),
		modelCapacity: prometheus.NewDesc("schedulerd_gpu_model_capacity_gpus",
			"GPUs of schedulable nodes by GPU model, as admission counts them. model is the "+
				"nvidia.com/gpu.product node label.",
			[]string{"model"}, nil),
		modelAllocated: prometheus.NewDesc("schedulerd_gpu_model_allocated_gpus",
			"GPUs held by admitted runs by GPU model. model is the nvidia.com/gpu.product node label.",
			[]string{"model"}, nil),
		runway: prometheus.NewDesc("schedulerd_jobs_partition_runway_months",
			"Months from the current UTC month to the end of the jobs partitions that cover now "+
				"without a gap: 1 means only the current month has one. Submissions fail in a month "+
				"without a partition.",
			nil, nil),
		cronSuccess: prometheus.NewDesc("schedulerd_cron_task_last_success_timestamp_seconds",
			"Unix time of the last successful run of a cron task on any replica, from "+
				"cron_task_status. task is "+labelList(m.opts.CronTasks)+"; a task that never "+
				"succeeded has no series.",
			[]string{"task"}, nil),
		outbox: prometheus.NewDesc("schedulerd_workflow_events_pending",
			"Job and approval events in the workflow outbox not yet delivered to Temporal.",
			nil, nil),
		outboxAge: prometheus.NewDesc("schedulerd_workflow_events_oldest_age_seconds",
			"Age of the oldest undelivered workflow event, in seconds; 0 when none waits. "+
				"It grows while Temporal is unreachable.",
			nil, nil),
		up: prometheus.NewDesc("schedulerd_database_up",
			"1 if every database query of this scrape succeeded within its timeout, else 0.",
			nil, nil),
	}
	// The GPU time counter is collected by c from now on, after each scrape's pruning, so
	// that a deleted project's series is gone from the same scrape that finds it deleted.
	m.reg.Unregister(m.gpuSeconds)
	m.reg.MustRegister(c)
}

func (c *databaseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.budget, c.used, c.reserved, c.concurrent,
		c.maxConcurrent, c.runningGPUs, c.heldJobs, c.modelCapacity, c.modelAllocated, c.runway, c.cronSuccess, c.outbox, c.outboxAge, c.up} {
		ch <- d
	}
	c.m.gpuSeconds.Describe(ch)
}

func (c *databaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.m.opts.DatabaseTimeout)
	defer cancel()

	up := 1.0
	steps := []struct {
		name    string
		collect func(context.Context, chan<- prometheus.Metric) error
	}{
		{"projects and queue depth", c.collectProjects},
		{"GPU capacity", c.collectModels},
		{"jobs partition runway", c.collectRunway},
		{"cron task status", c.collectCron},
		{"workflow outbox", c.collectOutbox},
	}
	for _, step := range steps {
		if err := step.collect(ctx, ch); err != nil {
			up = 0
			c.log.Warn("database query of a metrics scrape failed, so its series are left out of the scrape",
				"query", step.name, "err", err)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	c.m.gpuSeconds.Collect(ch)
}

const sqlProjectQuotas = `
SELECT p.id, q.gpu_hours_budget::float8, q.gpu_hours_used::float8, q.gpu_hours_reserved::float8,
       q.current_concurrent, q.max_concurrent_jobs
FROM projects p LEFT JOIN quotas q ON q.project_id = p.id`

// The jobs index on (status, priority, created_at) serves this in every partition.
const sqlLiveJobs = `
SELECT project_id, status::text, priority, count(*)
FROM jobs WHERE status IN ('submitted', 'queued', 'running', 'paused')
GROUP BY 1, 2, 3`

// The GPUs of running runs by project.
const sqlRunningGPUs = `
SELECT j.project_id, sum(r.gpu_milli)::float8 / 1000
FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
WHERE r.status = 'running'
GROUP BY 1`

// The queued jobs that their quota holds back, by the first reason that applies, in the
// terms of the candidate query (store/candidates.go), with its reservation rounded to 4
// decimals as store.sqlReservation has it. An ended period is no reason: the scheduler
// renews it before it admits the project's jobs.
const sqlHeldJobs = `
SELECT q.project_id,
       CASE WHEN u.project_id IS NULL THEN 'no_quota'
            WHEN u.drained_at IS NOT NULL THEN 'drained'
            WHEN u.period_start > (now() AT TIME ZONE 'UTC')::date THEN 'period'
            WHEN u.current_concurrent >= u.max_concurrent_jobs THEN 'concurrency'
            WHEN u.gpu_hours_used + u.gpu_hours_reserved
                 + round(q.gpu_milli::numeric * q.max_runtime_seconds / 3600000, 4) > u.gpu_hours_budget THEN 'budget'
       END AS reason,
       count(*)
FROM job_queue q LEFT JOIN quotas u ON u.project_id = q.project_id
GROUP BY 1, 2`

type projectQuota struct {
	id                        string
	budget, used, reserved    *float64
	concurrent, maxConcurrent *int64
	depth                     map[[2]string]float64 // status, tier
	runningGPUs               float64
	heldJobs                  map[string]float64 // by reason
}

// collectProjects emits the quota gauges and queue depth of every project, zeros included,
// creates the GPU time series of new projects at 0 and deletes those of projects that no
// longer exist.
func (c *databaseCollector) collectProjects(ctx context.Context, ch chan<- prometheus.Metric) error {
	projects, err := c.readProjects(ctx)
	if err != nil {
		return err
	}
	if err := c.readDepth(ctx, projects); err != nil {
		return err
	}
	if err := c.readRunningGPUs(ctx, projects); err != nil {
		return err
	}
	if err := c.readHeld(ctx, projects); err != nil {
		return err
	}

	live := make(map[string]bool, len(projects))
	for _, p := range projects {
		live[p.id] = true
		gauge := func(desc *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, p.id)
		}
		if p.budget != nil {
			gauge(c.budget, *p.budget*3600)
			gauge(c.used, *p.used*3600)
			gauge(c.reserved, *p.reserved*3600)
			gauge(c.concurrent, float64(*p.concurrent))
			gauge(c.maxConcurrent, float64(*p.maxConcurrent))
		}
		gauge(c.runningGPUs, p.runningGPUs)
		for _, reason := range holdReasons {
			ch <- prometheus.MustNewConstMetric(c.heldJobs, prometheus.GaugeValue, p.heldJobs[reason], p.id, reason)
		}
		for _, status := range liveJobStatuses {
			for _, tier := range c.m.opts.Tiers {
				ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue,
					p.depth[[2]string{status, tier.Name}], p.id, status, tier.Name)
			}
		}
	}
	c.m.syncProjects(live)
	return nil
}

func (c *databaseCollector) readProjects(ctx context.Context) (map[string]*projectQuota, error) {
	rows, err := c.db.Query(ctx, sqlProjectQuotas)
	if err != nil {
		return nil, err
	}
	projects := map[string]*projectQuota{}
	var p projectQuota
	_, err = pgx.ForEachRow(rows, []any{&p.id, &p.budget, &p.used, &p.reserved, &p.concurrent,
		&p.maxConcurrent}, func() error {
		row := p
		row.depth = map[[2]string]float64{}
		row.heldJobs = map[string]float64{}
		projects[p.id] = &row
		return nil
	})
	return projects, err
}

func (c *databaseCollector) readDepth(ctx context.Context, projects map[string]*projectQuota) error {
	rows, err := c.db.Query(ctx, sqlLiveJobs)
	if err != nil {
		return err
	}
	var project, status string
	var priority int
	var count int64
	_, err = pgx.ForEachRow(rows, []any{&project, &status, &priority, &count}, func() error {
		// A job's project always exists: jobs reference projects.
		if p := projects[project]; p != nil {
			p.depth[[2]string{status, c.m.TierOf(priority)}] += float64(count)
		}
		return nil
	})
	return err
}

func (c *databaseCollector) readRunningGPUs(ctx context.Context, projects map[string]*projectQuota) error {
	rows, err := c.db.Query(ctx, sqlRunningGPUs)
	if err != nil {
		return err
	}
	var project string
	var gpus float64
	_, err = pgx.ForEachRow(rows, []any{&project, &gpus}, func() error {
		if p := projects[project]; p != nil {
			p.runningGPUs = gpus
		}
		return nil
	})
	return err
}

func (c *databaseCollector) readHeld(ctx context.Context, projects map[string]*projectQuota) error {
	rows, err := c.db.Query(ctx, sqlHeldJobs)
	if err != nil {
		return err
	}
	var project string
	var reason *string
	var count int64
	_, err = pgx.ForEachRow(rows, []any{&project, &reason, &count}, func() error {
		if p := projects[project]; p != nil && reason != nil {
			p.heldJobs[*reason] = float64(count)
		}
		return nil
	})
	return err
}

const sqlGPUModels = `SELECT model, capacity_milli, allocated_milli FROM gpu_models`

func (c *databaseCollector) collectModels(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, sqlGPUModels)
	if err != nil {
		return err
	}
	var model string
	var capacity, allocated int64
	_, err = pgx.ForEachRow(rows, []any{&model, &capacity, &allocated}, func() error {
		ch <- prometheus.MustNewConstMetric(c.modelCapacity, prometheus.GaugeValue, float64(capacity)/1000, model)
		ch <- prometheus.MustNewConstMetric(c.modelAllocated, prometheus.GaugeValue, float64(allocated)/1000, model)
		return nil
	})
	return err
}

// sqlCoveredUntil reads where the jobs partitions that cover $1 without a gap end, or NULL.
// A partition beyond an uncovered month does not count, since submissions in that month
// fail.
const sqlCoveredUntil = `SELECT job_partitions_covered_until($1)`

func (c *databaseCollector) collectRunway(ctx context.Context, ch chan<- prometheus.Metric) error {
	now := c.m.opts.Now()
	rows, err := c.db.Query(ctx, sqlCoveredUntil, now)
	if err != nil {
		return err
	}
	bound, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[*time.Time])
	if err != nil {
		return err
	}
	months := 0
	if bound != nil {
		months = monthIndex(*bound) - monthIndex(now)
	}
	ch <- prometheus.MustNewConstMetric(c.runway, prometheus.GaugeValue, float64(months))
	return nil
}

const sqlOutbox = `
SELECT count(*)::float8, COALESCE(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM workflow_events`

func (c *databaseCollector) collectOutbox(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, sqlOutbox)
	if err != nil {
		return err
	}
	var pending, age float64
	if _, err := pgx.ForEachRow(rows, []any{&pending, &age}, func() error { return nil }); err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, pending)
	ch <- prometheus.MustNewConstMetric(c.outboxAge, prometheus.GaugeValue, age)
	return nil
}

// monthIndex numbers UTC months consecutively, so that differences count months.
func monthIndex(t time.Time) int {
	u := t.UTC()
	return u.Year()*12 + int(u.Month()) - 1
}

const sqlCronSuccess = `
SELECT task, extract(epoch FROM last_success_at)::float8
FROM cron_task_status WHERE last_success_at IS NOT NULL`

func (c *databaseCollector) collectCron(ctx context.Context, ch chan<- prometheus.Metric) error {
	rows, err := c.db.Query(ctx, sqlCronSuccess)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, t := range c.m.opts.CronTasks {
		known[t] = true
	}
	var task string
	var at float64
	_, err = pgx.ForEachRow(rows, []any{&task, &at}, func() error {
		if !known[task] {
			// The Help text lists the task names; a task it does not name would break it.
			return fmt.Errorf("cron task %q missing from metrics.Options.CronTasks: add it there so that the Help text lists it", task)
		}
		ch <- prometheus.MustNewConstMetric(c.cronSuccess, prometheus.GaugeValue, at, task)
		return nil
	})
	return err
}
