package metrics_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var tiers = []metrics.Tier{{Name: "high", MinPriority: 70}, {Name: "low", MinPriority: 0}}

func newMetrics(t *testing.T) (*metrics.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return metrics.New(reg, metrics.Options{Tiers: tiers}), reg
}

func expectSeries(t *testing.T, reg *prometheus.Registry, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestRunEndedPausedCause(t *testing.T) {
	m, reg := newMetrics(t)
	m.RunEnded(metrics.CausePaused, "vision", 0.5)
	expectSeries(t, reg, `
# HELP schedulerd_runs_ended_total Runs whose end this replica recorded, by cause: completed, failed, oom_killed, image_pull, deadline_exceeded, evicted, preempted, unschedulable, preemption_limit, cancelled or paused. preemption_limit counts preempted runs whose job failed because it reached max_preemptions, which evicted, preempted and unschedulable then leave out. cancelled counts runs stopped because their job was cancelled, and paused those stopped because their job was paused, which a resume queues again.
# TYPE schedulerd_runs_ended_total counter
schedulerd_runs_ended_total{cause="cancelled"} 0
schedulerd_runs_ended_total{cause="completed"} 0
schedulerd_runs_ended_total{cause="deadline_exceeded"} 0
schedulerd_runs_ended_total{cause="evicted"} 0
schedulerd_runs_ended_total{cause="failed"} 0
schedulerd_runs_ended_total{cause="image_pull"} 0
schedulerd_runs_ended_total{cause="oom_killed"} 0
schedulerd_runs_ended_total{cause="paused"} 1
schedulerd_runs_ended_total{cause="preempted"} 0
schedulerd_runs_ended_total{cause="preemption_limit"} 0
schedulerd_runs_ended_total{cause="unschedulable"} 0
`, "schedulerd_runs_ended_total")
}

func TestRunEndedCountsCauseAndGPUSeconds(t *testing.T) {
	m, reg := newMetrics(t)
	m.RunEnded(metrics.CauseOOMKilled, "vision", 0.5)
	m.RunEnded(metrics.CauseCompleted, "vision", 0.25)
	m.RunEnded(metrics.CauseCompleted, "nlp", 2)

	ended := gatherGauge(t, reg, "schedulerd_runs_ended_total")
	if got := ended[metrics.CauseCompleted]; got != 2 {
		t.Errorf("completed runs %v, want 2", got)
	}
	if got := ended[metrics.CauseOOMKilled]; got != 1 {
		t.Errorf("OOM-killed runs %v, want 1", got)
	}
	if got := ended[metrics.CauseEvicted]; got != 0 {
		t.Errorf("evicted runs %v, want 0", got)
	}
	expectSeries(t, reg, `
# HELP schedulerd_project_gpu_seconds_total GPU time of ended runs, in GPU-seconds (3600 make a GPU-hour), added when this replica records each run's end. project is the project id.
# TYPE schedulerd_project_gpu_seconds_total counter
schedulerd_project_gpu_seconds_total{project="nlp"} 7200
schedulerd_project_gpu_seconds_total{project="vision"} 2700
`, "schedulerd_project_gpu_seconds_total")
}

func TestAdmissionsByResult(t *testing.T) {
	m, reg := newMetrics(t)
	m.Admissions(3, []string{metrics.AdmissionBudget, metrics.AdmissionNoCapacity, metrics.AdmissionBudget,
		metrics.AdmissionPeriod})
	m.Admissions(0, nil)

	expectSeries(t, reg, `
# HELP schedulerd_admission_decisions_total Decisions of the admission policy, one per candidate job per dequeue; a job that waits is counted again at every dequeue that considers it. Jobs that their quota holds back are not candidates (see schedulerd_queued_jobs_held), so budget and concurrency count only jobs refused beside others admitted in the same dequeue. Budget also counts the jobs that have waited the starvation bound for the budget and the later jobs of their projects. result is admitted, budget, concurrency, drained, no_capacity, no_quota or period.
# TYPE schedulerd_admission_decisions_total counter
schedulerd_admission_decisions_total{result="admitted"} 3
schedulerd_admission_decisions_total{result="budget"} 2
schedulerd_admission_decisions_total{result="concurrency"} 0
schedulerd_admission_decisions_total{result="drained"} 0
schedulerd_admission_decisions_total{result="no_capacity"} 1
schedulerd_admission_decisions_total{result="no_quota"} 0
schedulerd_admission_decisions_total{result="period"} 1
`, "schedulerd_admission_decisions_total")
}

func TestCronAndRetentionCounters(t *testing.T) {
	m, reg := newMetrics(t)
	m.CronTaskFinished("partitions", nil)
	m.CronTaskFinished("retention", errors.New("S3 unreachable"))
	m.RetentionDeleted(3, 3<<20)

	expectSeries(t, reg, `
# HELP schedulerd_cron_task_runs_total Cron task runs this replica finished. task is partitions, retention or budgets; result is success or failure.
# TYPE schedulerd_cron_task_runs_total counter
schedulerd_cron_task_runs_total{result="failure",task="budgets"} 0
schedulerd_cron_task_runs_total{result="failure",task="partitions"} 0
schedulerd_cron_task_runs_total{result="failure",task="retention"} 1
schedulerd_cron_task_runs_total{result="success",task="budgets"} 0
schedulerd_cron_task_runs_total{result="success",task="partitions"} 1
schedulerd_cron_task_runs_total{result="success",task="retention"} 0
# HELP schedulerd_retention_deleted_bytes_total Bytes of the checkpoint objects that checkpoint retention on this replica deleted.
# TYPE schedulerd_retention_deleted_bytes_total counter
schedulerd_retention_deleted_bytes_total 3.145728e+06
# HELP schedulerd_retention_deleted_objects_total Checkpoints that checkpoint retention on this replica deleted, each an artifact row: one object, or every object under a prefix.
# TYPE schedulerd_retention_deleted_objects_total counter
schedulerd_retention_deleted_objects_total 3
`, "schedulerd_cron_task_runs_total", "schedulerd_retention_deleted_bytes_total",
		"schedulerd_retention_deleted_objects_total")
}

func TestTierOf(t *testing.T) {
	m, _ := newMetrics(t)
	for priority, want := range map[int]string{100: "high", 70: "high", 69: "low", 0: "low"} {
		if got := m.TierOf(priority); got != want {
			t.Errorf("TierOf(%d) = %q, want %q", priority, got, want)
		}
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.RunEnded(metrics.CauseFailed, "vision", 1)
	m.Admissions(1, []string{metrics.AdmissionBudget})
	m.CronTaskFinished("partitions", nil)
	m.SetLeader(true)
	handler := http.NotFoundHandler()
	if got := m.InstrumentHTTP(handler); got == nil {
		t.Error("InstrumentHTTP on nil Metrics returned nil, want the handler itself")
	}
}

func TestHTTPRequestsByRoutePattern(t *testing.T) {
	m, reg := newMetrics(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusConflict)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	// A catch-all, as the API has for its 404 documents: its requests are unmatched too.
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	server := httptest.NewServer(m.InstrumentHTTP(mux))
	defer server.Close()

	for _, path := range []string{"/v1/jobs/a", "/v1/jobs/b", "/healthz", "/nothing-here", "/v2/other"} {
		resp, err := http.Get(server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}

	// Job ids in the path never become label values: the pattern does.
	expectSeries(t, reg, `
# HELP schedulerd_http_requests_total HTTP requests served. route is the ServeMux pattern that matched, such as 'GET /readyz', or 'unmatched'; code is the HTTP status code.
# TYPE schedulerd_http_requests_total counter
schedulerd_http_requests_total{code="200",route="GET /healthz"} 1
schedulerd_http_requests_total{code="404",route="unmatched"} 2
schedulerd_http_requests_total{code="409",route="GET /v1/jobs/{id}"} 2
`, "schedulerd_http_requests_total")
	if n := testutil.CollectAndCount(reg, "schedulerd_http_request_duration_seconds"); n != 3 {
		t.Errorf("%d request duration series, want 3 (one per route)", n)
	}
}

// databaseFixture is a migrated database with two projects, queued jobs in both priority
// tiers, one GPU model and a cron task success.
func databaseFixture(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	s := store.New(pgtest.NewPool(t))
	for _, q := range []store.Quota{
		{ProjectID: "vision", GPUHoursBudget: 100, MaxConcurrentJobs: 4},
		{ProjectID: "nlp", GPUHoursBudget: 10, MaxConcurrentJobs: 2},
	} {
		if _, err := s.UpsertProject(ctx, store.Project{ID: q.ProjectID, OrgID: "acme", K8sNamespace: q.ProjectID}); err != nil {
			t.Fatal(err)
		}
		q.PriorityTier = 5
		q.PeriodStart, q.PeriodEnd = time.Now().AddDate(0, -1, 0), time.Now().AddDate(1, 0, 0)
		if _, err := s.UpsertQuota(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, job := range []struct {
		project  string
		priority int
	}{{"vision", 90}, {"vision", 10}, {"vision", 10}, {"nlp", 50}} {
		_, err := s.SubmitJob(ctx, store.Submission{ProjectID: job.project, JobType: "fine_tune",
			Priority: job.priority, Config: json.RawMessage(`{}`), GPUMilli: 1000,
			MaxRuntimeSeconds: 3600, MaxAttempts: 1, MaxPreemptions: 20})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A100", CapacityMilli: 16000, Nodes: 2,
		LargestNodeMilli: 8000}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Pool().Exec(ctx, `INSERT INTO cron_task_status (task, last_scheduled_at,
		last_started_at, last_finished_at, last_success_at, last_duration_seconds)
		VALUES ('partitions', to_timestamp(1800000000), to_timestamp(1800000000),
		        to_timestamp(1800000001), to_timestamp(1800000001), 1)`)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDatabaseGauges(t *testing.T) {
	s := databaseFixture(t)
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)

	expectSeries(t, reg, `
# HELP schedulerd_database_up 1 if every database query of this scrape succeeded within its timeout, else 0.
# TYPE schedulerd_database_up gauge
schedulerd_database_up 1
# HELP schedulerd_gpu_model_capacity_gpus GPUs of schedulable nodes by GPU model, as admission counts them. model is the nvidia.com/gpu.product node label.
# TYPE schedulerd_gpu_model_capacity_gpus gauge
schedulerd_gpu_model_capacity_gpus{model="A100"} 16
# HELP schedulerd_project_gpu_budget_seconds GPU-time budget of the project's quota period, in GPU-seconds (3600 make a GPU-hour). project is the project id.
# TYPE schedulerd_project_gpu_budget_seconds gauge
schedulerd_project_gpu_budget_seconds{project="nlp"} 36000
schedulerd_project_gpu_budget_seconds{project="vision"} 360000
# HELP schedulerd_project_max_concurrent_jobs Concurrency limit of the project's quota. project is the project id.
# TYPE schedulerd_project_max_concurrent_jobs gauge
schedulerd_project_max_concurrent_jobs{project="nlp"} 2
schedulerd_project_max_concurrent_jobs{project="vision"} 4
# HELP schedulerd_cron_task_last_success_timestamp_seconds Unix time of the last successful run of a cron task on any replica, from cron_task_status. task is partitions, retention or budgets; a task that never succeeded has no series.
# TYPE schedulerd_cron_task_last_success_timestamp_seconds gauge
schedulerd_cron_task_last_success_timestamp_seconds{task="partitions"} 1.800000001e+09
`, "schedulerd_database_up", "schedulerd_gpu_model_capacity_gpus", "schedulerd_project_gpu_budget_seconds",
		"schedulerd_project_max_concurrent_jobs", "schedulerd_cron_task_last_success_timestamp_seconds")

	// Queue depth: every project, status and tier has a series, zeros included.
	if n := testutil.CollectAndCount(reg, "schedulerd_jobs"); n != 2*4*2 {
		t.Errorf("%d queue depth series, want 16 (2 projects, 4 statuses, 2 tiers)", n)
	}
	depth := gatherGauge(t, reg, "schedulerd_jobs")
	for labels, want := range map[string]float64{
		"vision/queued/high": 1, "vision/queued/low": 2, "nlp/queued/low": 1, "nlp/queued/high": 0,
		"vision/running/high": 0,
	} {
		if got := depth[labels]; got != want {
			t.Errorf("schedulerd_jobs{%s} = %v, want %v", labels, got, want)
		}
	}

	// The migration creates partitions for the current month and the three after it.
	if got := gatherGauge(t, reg, "schedulerd_jobs_partition_runway_months")[""]; got != 4 {
		t.Errorf("partition runway %v months, want 4", got)
	}
}

// TestPausedSearchGauges: a paused hpo search shows in schedulerd_jobs as paused, the parent
// and the trial its pause paused alike.
func TestPausedSearchGauges(t *testing.T) {
	s := databaseFixture(t)
	ctx := context.Background()
	parent, err := s.SubmitJob(ctx, store.Submission{ProjectID: "nlp", JobType: "hpo", Priority: 50,
		Config: json.RawMessage(`{}`), MaxRuntimeSeconds: 3600, MaxAttempts: 1, MaxPreemptions: 20})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SubmitJob(ctx, store.Submission{ProjectID: "nlp", JobType: "fine_tune", Priority: 50,
		Config: json.RawMessage(`{}`), GPUMilli: 1000, MaxRuntimeSeconds: 3600, MaxAttempts: 1,
		MaxPreemptions: 20, Parent: &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetParentStatus(ctx, parent.Ref(), store.JobSubmitted, store.JobRunning, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MoveHPOParent(ctx, parent.Ref(), store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}

	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)
	depth := gatherGauge(t, reg, "schedulerd_jobs")
	for labels, want := range map[string]float64{
		"nlp/paused/low": 2, "nlp/running/low": 0, "nlp/queued/low": 1,
	} {
		if got := depth[labels]; got != want {
			t.Errorf("schedulerd_jobs{%s} = %v, want %v", labels, got, want)
		}
	}
}

// TestWorkflowOutboxGauges: undelivered workflow events are counted, with the age of the
// oldest, so a Temporal outage shows as a growing age.
func TestPartitionRunwayStopsAtGap(t *testing.T) {
	s := databaseFixture(t)
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)
	// A partition five years ahead leaves the months between it and the migration's last
	// partition without one.
	_, err := s.Pool().Exec(context.Background(), `SELECT ensure_job_partitions(now() + interval '5 years', 0)`)
	if err != nil {
		t.Fatal(err)
	}

	if got := gatherGauge(t, reg, "schedulerd_jobs_partition_runway_months")[""]; got != 4 {
		t.Errorf("partition runway %v months, want 4: the month after the migration's last has no partition", got)
	}
}

func TestWorkflowOutboxGauges(t *testing.T) {
	s := databaseFixture(t)
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)
	if got := gatherGauge(t, reg, "schedulerd_workflow_events_pending")[""]; got != 0 {
		t.Errorf("%v pending events in an empty outbox, want 0", got)
	}

	_, err := s.Pool().Exec(context.Background(), `INSERT INTO workflow_events (workflow_id, kind, created_at)
		VALUES ('job-a', 'start', now() - interval '90 seconds'), ('job-b', 'start', now())`)
	if err != nil {
		t.Fatal(err)
	}
	if got := gatherGauge(t, reg, "schedulerd_workflow_events_pending")[""]; got != 2 {
		t.Errorf("%v pending events, want 2", got)
	}
	if age := gatherGauge(t, reg, "schedulerd_workflow_events_oldest_age_seconds")[""]; age < 90 || age > 150 {
		t.Errorf("oldest event %v s old, want 90 s", age)
	}
}

func TestDeletedProjectLosesItsSeries(t *testing.T) {
	s := databaseFixture(t)
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)
	m.RunEnded(metrics.CauseCompleted, "vision", 1)
	m.RunEnded(metrics.CauseCompleted, "nlp", 1)

	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, `DELETE FROM jobs WHERE project_id = 'nlp'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `DELETE FROM projects WHERE id = 'nlp'`); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"schedulerd_project_gpu_seconds_total", "schedulerd_project_gpu_budget_seconds", "schedulerd_jobs"} {
		for labels := range gatherGauge(t, reg, name) {
			if strings.HasPrefix(labels, "nlp") {
				t.Errorf("%s{%s} still exported after project nlp was deleted", name, labels)
			}
		}
	}
	if got := gatherGauge(t, reg, "schedulerd_project_gpu_seconds_total")["vision"]; got != 3600 {
		t.Errorf("GPU-seconds of vision %v, want 3600", got)
	}
}

func TestDatabaseDownSetsUpToZero(t *testing.T) {
	s := databaseFixture(t)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.Options{Tiers: tiers, DatabaseTimeout: time.Second})
	m.CollectDatabase(s.Pool(), nil)
	s.Pool().Close()

	if got := gatherGauge(t, reg, "schedulerd_database_up")[""]; got != 0 {
		t.Errorf("schedulerd_database_up %v with the pool closed, want 0", got)
	}
	if n := testutil.CollectAndCount(reg, "schedulerd_jobs"); n != 0 {
		t.Errorf("%d queue depth series without a database, want 0", n)
	}
}

// gatherGauge returns the values of one metric family by its label values joined with "/".
func gatherGauge(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, metric := range f.GetMetric() {
			var labels []string
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			value := metric.GetGauge().GetValue()
			if metric.GetCounter() != nil {
				value = metric.GetCounter().GetValue()
			}
			values[strings.Join(labels, "/")] = value
		}
	}
	return values
}

// TestHeldJobsAndRunningGPUs: queued jobs that their quota holds back are counted by the
// first reason that applies, and a project's running runs by their GPUs. The fixture's
// vision jobs fit its quota; the nlp one needs 1 GPU-hour of the 10, and audio has none.
func TestHeldJobsAndRunningGPUs(t *testing.T) {
	s := databaseFixture(t)
	ctx := context.Background()
	admission := admitFirst(t, s)
	if err := s.StartRun(ctx, admission.RunID, time.Now(), "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpsertProject(ctx, store.Project{ID: "audio", OrgID: "acme", K8sNamespace: "audio"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.SubmitJob(ctx, store.Submission{ProjectID: "audio", JobType: "fine_tune", Priority: 10,
		Config: json.RawMessage(`{}`), GPUMilli: 1000, MaxRuntimeSeconds: 3600, MaxAttempts: 1,
		MaxPreemptions: 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = 9.5 WHERE project_id = 'nlp'`); err != nil {
		t.Fatal(err)
	}
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)

	heldJobs := gatherGauge(t, reg, "schedulerd_queued_jobs_held")
	if n := len(heldJobs); n != 3*5 {
		t.Errorf("%d held series, want 15 (3 projects, 5 reasons)", n)
	}
	for labels, want := range map[string]float64{
		"nlp/budget": 1, "audio/no_quota": 1, "vision/budget": 0, "vision/concurrency": 0, "nlp/drained": 0,
	} {
		if got := heldJobs[labels]; got != want {
			t.Errorf("schedulerd_queued_jobs_held{%s} = %v, want %v", labels, got, want)
		}
	}

	running := gatherGauge(t, reg, "schedulerd_project_running_gpus")
	if running["vision"] != 1 || running["nlp"] != 0 {
		t.Errorf("running GPUs %v, want 1 of vision and 0 of nlp", running)
	}

	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET drained_at = now() WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}
	if got := gatherGauge(t, reg, "schedulerd_queued_jobs_held")["vision/drained"]; got != 2 {
		t.Errorf("%v vision jobs held as drained, want the 2 still queued", got)
	}
}

// admitFirst admits the highest-priority queued job of the fixture on A100.
func admitFirst(t *testing.T, s *store.Store) store.Admission {
	t.Helper()
	admissions, err := s.Dequeue(context.Background(), store.CandidateWindow{Limit: 1},
		func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
			c := snap.Candidates[0]
			return []store.Decision{{Candidate: c, GPUModel: "A100", GPUHoursReserved: 1}}, nil
		})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("dequeue: %d admissions, err %v", len(admissions), err)
	}
	return admissions[0]
}

// A job whose reservation fits the budget once rounded to 4 decimals, as admission rounds
// it, is not held for budget: 1 thousandth of a GPU for 432 s reserves 0.00012 GPU-hours,
// rounded to the 0.0001 left.
func TestHeldJobsRoundReservation(t *testing.T) {
	s := databaseFixture(t)
	ctx := context.Background()
	if _, err := s.UpsertProject(ctx, store.Project{ID: "edge", OrgID: "acme", K8sNamespace: "edge"}); err != nil {
		t.Fatal(err)
	}
	q := store.Quota{ProjectID: "edge", GPUHoursBudget: 1, MaxConcurrentJobs: 2, PriorityTier: 5,
		PeriodStart: time.Now().AddDate(0, -1, 0), PeriodEnd: time.Now().AddDate(1, 0, 0)}
	if _, err := s.UpsertQuota(ctx, q); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = 0.9999 WHERE project_id = 'edge'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.SubmitJob(ctx, store.Submission{ProjectID: "edge", JobType: "fine_tune", Priority: 10,
		Config: json.RawMessage(`{}`), GPUMilli: 1, MaxRuntimeSeconds: 432, MaxAttempts: 1,
		MaxPreemptions: 20})
	if err != nil {
		t.Fatal(err)
	}
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)

	if got := gatherGauge(t, reg, "schedulerd_queued_jobs_held")["edge/budget"]; got != 0 {
		t.Errorf("%v edge jobs held for budget, want 0: the rounded reservation fits", got)
	}
}

// TestGPUSecondsStartAtZero: every project has a GPU time series from the first scrape, so
// that increase() over a window counts the first run that ends after it, as the GPU-hours
// panel of the dashboards needs.
func TestGPUSecondsStartAtZero(t *testing.T) {
	s := databaseFixture(t)
	m, reg := newMetrics(t)
	m.CollectDatabase(s.Pool(), nil)

	seconds := gatherGauge(t, reg, "schedulerd_project_gpu_seconds_total")
	if len(seconds) != 2 {
		t.Errorf("GPU time series %v, want one for each of the 2 projects", seconds)
	}
	for _, project := range []string{"vision", "nlp"} {
		if got, ok := seconds[project]; !ok || got != 0 {
			t.Errorf("GPU-seconds of %s = %v (present %v) before any run ended, want a series at 0", project, got, ok)
		}
	}

	m.RunEnded(metrics.CauseCompleted, "nlp", 0.5)
	if got := gatherGauge(t, reg, "schedulerd_project_gpu_seconds_total")["nlp"]; got != 1800 {
		t.Errorf("GPU-seconds of nlp %v after a run of 0.5 GPU-hours, want 1800", got)
	}
}
