// Package dashboards defines schedulerd's Grafana dashboards in Go and renders them to the
// JSON files in this folder, which operators import into Grafana. queues.json shows queue
// depth, waits and admissions; gpus.json GPU allocation, GPU-hours and budgets; health.json
// loop latency, errors, leadership, cron tasks and the partition runway.
//
// Run `go generate ./dashboards` after changing a definition; a test fails while the files
// differ from the definitions.
//
// Every replica exports the database gauges, so queries take max over the replicas before
// summing; event counters are per replica and are summed.
//
// Queries use Grafana's $__rate_interval, which Grafana sets to at least four scrape
// intervals.
package dashboards

//go:generate go run ./gen -out .

import "fmt"

// All returns every dashboard.
func All() []Dashboard {
	return []Dashboard{queues(), gpus(), health()}
}

// Common sub-expressions: the database gauges deduplicated across replicas.
const (
	jobsByLabels = `max by (project, status, tier) (schedulerd_jobs)`
	queuedJobs   = `max by (project, status, tier) (schedulerd_jobs{status="queued"})`
)

func queues() Dashboard {
	b := newBuilder("schedulerd-queues", "queues.json", "schedulerd / queues",
		"Queue depth, waiting time and admission decisions.")
	b.timeseries("Queued jobs by project", "Jobs waiting for admission, by project.", "short",
		target(`sum by (project) (`+queuedJobs+`)`, "{{project}}"))
	b.timeseries("Jobs by status", "Jobs that have not ended, by status, all projects.", "short",
		target(`sum by (status) (`+jobsByLabels+`)`, "{{status}}"))
	b.timeseries("Queued jobs by priority tier", "Jobs waiting for admission, by priority tier.", "short",
		target(`sum by (tier) (`+queuedJobs+`)`, "{{tier}}"))
	b.timeseries("Admission decisions by result",
		"Admission policy decisions per second on the jobs that dequeues read. A waiting job is "+
			"counted at every dequeue that reads it, so refusals repeat while it waits. Jobs that "+
			"their quota holds back are not read: see Queued jobs held by quota.", "ops",
		target(`sum by (result) (rate(schedulerd_admission_decisions_total[$__rate_interval]))`, "{{result}}"))
	b.timeseries("Queued jobs held by quota",
		"Queued jobs that their project's quota holds back (drained, no quota, period not "+
			"started, concurrency limit, budget), by reason, all projects; the metric has a "+
			"project label too. The other queued jobs wait for GPU capacity or their turn.", "short",
		target(`sum by (reason) (max by (project, reason) (schedulerd_queued_jobs_held))`, "{{reason}}"))
	b.timeseries("Wait from submission to running",
		"Time from a job's submission to its first run's container start, over all tiers.", "s",
		target(quantile(0.5, "schedulerd_job_submit_to_running_seconds", ""), "p50"),
		target(quantile(0.95, "schedulerd_job_submit_to_running_seconds", ""), "p95"))
	b.timeseries("Wait p95 by priority tier",
		"95th percentile of the time from submission to running, by priority tier.", "s",
		target(quantile(0.95, "schedulerd_job_submit_to_running_seconds", "tier"), "{{tier}}"))
	b.timeseries("Runs ended by cause", "Run ends per second, by cause.", "ops",
		target(`sum by (cause) (rate(schedulerd_runs_ended_total[$__rate_interval]))`, "{{cause}}"))
	b.timeseries("Admitted jobs by project", "Jobs admitted and not yet ended, against each project's limit.", "short",
		target(`max by (project) (schedulerd_project_admitted_jobs)`, "{{project}}"),
		target(`max by (project) (schedulerd_project_max_concurrent_jobs)`, "{{project}} limit"))
	return b.dashboard
}

func gpus() Dashboard {
	b := newBuilder("schedulerd-gpus", "gpus.json", "schedulerd / GPUs",
		"GPU allocation by model, GPU-hours by project and budget burn.")
	b.timeseries("GPUs allocated by model", "GPUs held by admitted runs, by GPU model.", "short",
		target(`max by (model) (schedulerd_gpu_model_allocated_gpus)`, "{{model}}"))
	b.timeseries("GPU capacity by model", "GPUs of schedulable nodes, by GPU model.", "short",
		target(`max by (model) (schedulerd_gpu_model_capacity_gpus)`, "{{model}}"))
	b.timeseries("GPU allocation by model", "Share of each model's schedulable GPUs held by admitted runs.",
		"percentunit",
		target(`max by (model) (schedulerd_gpu_model_allocated_gpus) / (max by (model) (schedulerd_gpu_model_capacity_gpus) > 0)`,
			"{{model}}"))
	b.timeseries("Pods by phase", "Pods of schedulerd's runs, by Kubernetes phase.", "short",
		target(`sum by (phase) (schedulerd_pods)`, "{{phase}}"))
	b.timeseries("GPUs in use by project", "GPUs held by the project's running runs.", "short",
		target(`max by (project) (schedulerd_project_running_gpus)`, "{{project}}"))
	b.timeseries("GPU-hours by project, last hour", "Average GPUs of the project's running runs "+
		"over the hour before each point, which is the GPU-hours they used in that hour, "+
		"sampled at each scrape.", "short",
		target(`max by (project) (avg_over_time(schedulerd_project_running_gpus[1h]))`, "{{project}}"))
	b.timeseries("GPU-hours of runs ended, last hour", "Whole GPU-hours of the runs that ended "+
		"in the hour before each point, as debited from budgets: a long run counts all at once "+
		"at its end.", "short",
		target(`sum by (project) (increase(schedulerd_project_gpu_seconds_total[1h])) / 3600`, "{{project}}"))
	b.timeseries("Budget used by project", "Share of the quota period's GPU-hour budget that ended "+
		"runs used, and that admitted runs hold in reserve besides. A project with a budget of 0 has no line.", "percentunit",
		target(`max by (project) (schedulerd_project_gpu_used_seconds) / (max by (project) (schedulerd_project_gpu_budget_seconds) > 0)`,
			"{{project}} used"),
		target(`(max by (project) (schedulerd_project_gpu_used_seconds) + max by (project) (schedulerd_project_gpu_reserved_seconds)) / (max by (project) (schedulerd_project_gpu_budget_seconds) > 0)`,
			"{{project}} used and reserved"))
	b.timeseries("Budget remaining by project", "GPU-hours left in the quota period's budget, "+
		"reservations of admitted runs deducted.", "short",
		target(`(max by (project) (schedulerd_project_gpu_budget_seconds) - max by (project) (schedulerd_project_gpu_used_seconds) - max by (project) (schedulerd_project_gpu_reserved_seconds)) / 3600`,
			"{{project}}"))
	return b.dashboard
}

func health() Dashboard {
	b := newBuilder("schedulerd-health", "health.json", "schedulerd / health",
		"Loop latency and errors, leadership, the database, cron tasks and the jobs partition runway.")
	b.stat("Leaders", "Replicas that hold the leader Lease; anything but 1 for long is wrong.", "short",
		target(`sum(schedulerd_leader)`, "leaders"))
	b.stat("Dispatcher synced", "1 once the leader's dispatcher has read the cluster's pods and "+
		"nodes. 0 for long means the leader cannot reach the Kubernetes API, so no pod is created "+
		"or followed; /readyz does not show it.", "short",
		target(`max(schedulerd_dispatcher_synced)`, "synced"))
	b.stat("Database up", "Lowest over the replicas: 0 while a replica's database queries fail.", "short",
		target(`min(schedulerd_database_up)`, "up"))
	b.stat("Partition runway", "Months that jobs partitions cover from the current one. A month "+
		"without a partition rejects every submission.", "short",
		target(`min(schedulerd_jobs_partition_runway_months)`, "months"))
	b.stat("Since last cron success", "Time since each cron task last succeeded.", "s",
		target(`time() - max by (task) (schedulerd_cron_task_last_success_timestamp_seconds)`, "{{task}}"))
	b.timeseries("Dequeue latency", "Duration of one dequeue transaction.", "s",
		target(quantile(0.5, "schedulerd_dequeue_duration_seconds", ""), "p50"),
		target(quantile(0.95, "schedulerd_dequeue_duration_seconds", ""), "p95"))
	b.timeseries("Dispatch latency", "Time from a job's admission to its pod's creation.", "s",
		target(quantile(0.5, "schedulerd_dispatch_duration_seconds", ""), "p50"),
		target(quantile(0.95, "schedulerd_dispatch_duration_seconds", ""), "p95"))
	b.timeseries("Reconcile latency", "Duration of one reconcile of a run with its pod.", "s",
		target(quantile(0.5, "schedulerd_reconcile_duration_seconds", ""), "p50"),
		target(quantile(0.95, "schedulerd_reconcile_duration_seconds", ""), "p95"))
	b.timeseries("Loop errors", "Failed loop iterations per second, by loop; each is retried.", "ops",
		target(`sum by (loop) (rate(schedulerd_loop_errors_total[$__rate_interval]))`, "{{loop}}"))
	b.timeseries("HTTP requests by route and code", "Requests per second to the admin API and the "+
		"daemon's endpoints.", "reqps",
		target(`sum by (route, code) (rate(schedulerd_http_requests_total[$__rate_interval]))`, "{{route}} {{code}}"))
	b.timeseries("Cron task runs, last hour", "Finished cron task runs by task and result.", "short",
		target(`sum by (task, result) (increase(schedulerd_cron_task_runs_total[1h]))`, "{{task}} {{result}}"))
	b.timeseries("Checkpoints deleted, last hour", "Checkpoints (artifact rows: one object, or "+
		"every object under a prefix) that retention deleted.", "short",
		target(`sum(increase(schedulerd_retention_deleted_objects_total[1h]))`, "checkpoints"))
	b.timeseries("Checkpoint bytes deleted, last hour", "Bytes of the checkpoint objects that "+
		"retention deleted.", "bytes",
		target(`sum(increase(schedulerd_retention_deleted_bytes_total[1h]))`, "bytes"))
	return b.dashboard
}

// quantile returns the PromQL of a histogram quantile over all replicas, grouped by the
// label by when it is not empty.
func quantile(q float64, histogram, by string) string {
	labels := "le"
	if by != "" {
		labels = by + ", le"
	}
	return fmt.Sprintf(`histogram_quantile(%g, sum by (%s) (rate(%s_bucket[$__rate_interval])))`, q, labels, histogram)
}

func target(expr, legend string) Target {
	return Target{Datasource: datasource, Expr: expr, LegendFormat: legend}
}

var datasource = Datasource{Type: "prometheus", UID: "${datasource}"}

// builder lays panels out in reading order: stat panels six columns wide, time series
// twelve, each row filled before the next starts.
type builder struct {
	dashboard  Dashboard
	x, y, rowH int
}

func newBuilder(uid, file, title, description string) *builder {
	return &builder{dashboard: Dashboard{
		File: file, UID: uid, Title: title, Description: description, Tags: []string{"schedulerd"},
		SchemaVersion: 39, Version: 1, Editable: true, Refresh: "30s",
		Time: TimeRange{From: "now-6h", To: "now"},
		Templating: Templating{List: []Variable{{Name: "datasource", Label: "Prometheus",
			Type: "datasource", Query: "prometheus"}}},
	}}
}

func (b *builder) timeseries(title, description, unit string, targets ...Target) {
	b.add("timeseries", title, description, unit, 12, 8, targets)
}

func (b *builder) stat(title, description, unit string, targets ...Target) {
	b.add("stat", title, description, unit, 6, 4, targets)
}

func (b *builder) add(typ, title, description, unit string, w, h int, targets []Target) {
	if b.x+w > 24 {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
	for i := range targets {
		targets[i].RefID = string(rune('A' + i))
	}
	b.dashboard.Panels = append(b.dashboard.Panels, Panel{
		ID: len(b.dashboard.Panels) + 1, Type: typ, Title: title, Description: description,
		GridPos:     GridPos{H: h, W: w, X: b.x, Y: b.y},
		Datasource:  datasource,
		FieldConfig: FieldConfig{Defaults: FieldDefaults{Unit: unit}, Overrides: []any{}},
		Targets:     targets,
	})
	b.x += w
	b.rowH = max(b.rowH, h)
}
