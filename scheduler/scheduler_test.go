package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a database with projects and GPU capacity, and a scheduler on it.
type fixture struct {
	t     *testing.T
	store *store.Store
}

func setup(t *testing.T) *fixture {
	t.Helper()
	return withProjects(t, store.New(pgtest.NewPool(t)))
}

// setupAt is setup on a database whose clock reads at (pgtest.NewPoolAt).
func setupAt(t *testing.T, at time.Time) *fixture {
	t.Helper()
	return withProjects(t, store.New(pgtest.NewPoolAt(t, at)))
}

func withProjects(t *testing.T, s *store.Store) *fixture {
	t.Helper()
	f := &fixture{t: t, store: s}
	f.project("vision", 1000, 100)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000})
	return f
}

func (f *fixture) project(id string, budget float64, maxConcurrent int) {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.store.UpsertProject(ctx, store.Project{ID: id, OrgID: "acme", K8sNamespace: "team-" + id}); err != nil {
		f.t.Fatal(err)
	}
	_, err := f.store.UpsertQuota(ctx, store.Quota{ProjectID: id, GPUHoursBudget: budget,
		MaxConcurrentJobs: maxConcurrent, PriorityTier: 5,
		PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) capacity(models ...store.ModelCapacity) {
	f.t.Helper()
	if err := f.store.SyncGPUCapacity(context.Background(), models); err != nil {
		f.t.Fatal(err)
	}
}

// submit queues a job asking gpuMilli thousandths of a GPU for one hour.
func (f *fixture) submit(project string, priority, gpuMilli int, models ...string) store.Job {
	f.t.Helper()
	job, err := f.store.SubmitJob(context.Background(), store.Submission{
		ProjectID: project, JobType: "fine_tune", Priority: priority, Config: json.RawMessage(`{}`),
		GPUMilli: gpuMilli, GPUModels: models, MaxRuntimeSeconds: 3600, MaxAttempts: 3, MaxPreemptions: 20,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return job
}

func (f *fixture) job(j store.Job) store.Job {
	f.t.Helper()
	got, err := f.store.GetJob(context.Background(), j.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return got
}

func (f *fixture) scheduler(batch int, bound time.Duration) *scheduler.Scheduler {
	return scheduler.New(f.store, scheduler.Config{Batch: batch, Policy: scheduler.Policy{StarvationBound: bound}})
}

func (f *fixture) runOnce(s *scheduler.Scheduler) int {
	f.t.Helper()
	n, err := s.RunOnce(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// quota reads the project's quota.
func (f *fixture) quota(project string) store.Quota {
	f.t.Helper()
	q, err := f.store.GetQuota(context.Background(), project)
	if err != nil {
		f.t.Fatal(err)
	}
	return q
}

func waitReason(j store.Job) string {
	if j.WaitReason == nil {
		return ""
	}
	return *j.WaitReason
}

func TestPriorityThenAgeOrder(t *testing.T) {
	f := setup(t)
	low := f.submit("vision", 1, 1000)
	highOld := f.submit("vision", 9, 1000)
	highNew := f.submit("vision", 9, 1000)

	var admitted []store.Admission
	s := scheduler.New(f.store, scheduler.Config{Batch: 1, OnAdmitted: func(a []store.Admission) { admitted = append(admitted, a...) }})
	for range 3 {
		f.runOnce(s)
	}

	want := []string{highOld.ID.String(), highNew.ID.String(), low.ID.String()}
	if len(admitted) != 3 {
		t.Fatalf("admitted %d jobs, want 3", len(admitted))
	}
	for i, a := range admitted {
		if a.Job.ID.String() != want[i] {
			t.Errorf("admission %d: job %s, want %s", i, a.Job.ID, want[i])
		}
		if a.RunNumber != 1 || a.GPUModel != "A10" || a.Namespace != "team-vision" {
			t.Errorf("admission %d: %+v, want run 1 on A10 in team-vision", i, a)
		}
		if a.PodName != store.PodName(a.Job.ID, 1) {
			t.Errorf("pod name %s", a.PodName)
		}
	}
}

func TestAdmissionTakesQuotaAndCapacity(t *testing.T) {
	f := setup(t)
	job := f.submit("vision", 5, 2500)
	f.runOnce(f.scheduler(8, time.Hour))

	if got := f.job(job); got.Status != store.JobRunning || got.RunCount != 1 {
		t.Errorf("job %s run_count %d, want running with 1 run", got.Status, got.RunCount)
	}
	quota, _ := f.store.GetQuota(context.Background(), "vision")
	if quota.CurrentConcurrent != 1 || quota.GPUHoursReserved != 2.5 {
		t.Errorf("quota concurrent %d reserved %v, want 1 and 2.5", quota.CurrentConcurrent, quota.GPUHoursReserved)
	}
	models, _ := f.store.ListGPUModels(context.Background())
	if models[0].AllocatedMilli != 2500 {
		t.Errorf("A10 allocated %d milli, want 2500", models[0].AllocatedMilli)
	}
}

func TestBudgetRefusalStaysQueuedWithReason(t *testing.T) {
	f := setup(t)
	f.project("speech", 1.5, 10)
	first := f.submit("speech", 5, 1000)
	second := f.submit("speech", 5, 1000)
	f.runOnce(f.scheduler(8, time.Hour))

	if got := f.job(first); got.Status != store.JobRunning {
		t.Errorf("first job %s, want running", got.Status)
	}
	got := f.job(second)
	if got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonBudget {
		t.Errorf("second job %s with reason %q, want queued with %q", got.Status, waitReason(got), scheduler.ReasonBudget)
	}
}

// endPeriod moves the project's budget period to the 30 days that ended three days ago, with
// used GPU-hours already charged to it.
func (f *fixture) endPeriod(project string, used float64) (time.Time, time.Time) {
	f.t.Helper()
	end := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	start := end.AddDate(0, 0, -30)
	_, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = $2, period_end = $3,
		gpu_hours_used = $4 WHERE project_id = $1`, project, start, end, used)
	if err != nil {
		f.t.Fatal(err)
	}
	return start, end
}

// A project that spent its budget before its period ended gets a new period, and its job
// is admitted against the new budget, in the same RunOnce: the renewal comes first.
func TestEndedPeriodRenewedBeforeAdmission(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	_, oldEnd := f.endPeriod("speech", 9.5)
	job := f.submit("speech", 5, 1000)

	if n := f.runOnce(f.scheduler(8, time.Hour)); n != 1 {
		t.Fatalf("RunOnce admitted %d jobs, want 1", n)
	}

	if got := f.job(job); got.Status != store.JobRunning {
		t.Errorf("job %s, want running", got.Status)
	}
	quota := f.quota("speech")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if !quota.PeriodStart.Equal(oldEnd) {
		t.Errorf("new period starts %s, want %s, where the old one ended", quota.PeriodStart.Format(time.DateOnly), oldEnd.Format(time.DateOnly))
	}
	if !quota.PeriodEnd.After(today) {
		t.Errorf("new period ends %s, want after today, %s", quota.PeriodEnd.Format(time.DateOnly), today.Format(time.DateOnly))
	}
	if quota.GPUHoursUsed != 0 {
		t.Errorf("quota used %v GPU-hours, want 0 in the new period", quota.GPUHoursUsed)
	}
	if quota.GPUHoursReserved != 1 {
		t.Errorf("quota reserved %v GPU-hours, want the job's 1", quota.GPUHoursReserved)
	}
}

// Until its period is renewed, a project admits nothing, even with budget left in the
// ended period, and the scheduler requests the renewal once per RenewInterval. The wait
// reason comes from ExplainWaits, since the dequeue leaves the job out.
func TestEndedPeriodAdmitsNothingUntilRenewed(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	f.endPeriod("speech", 0)
	job := f.submit("speech", 5, 1000)

	calls := 0
	s := scheduler.New(f.store, scheduler.Config{Batch: 8, RenewInterval: time.Hour,
		RenewBudgets: func(context.Context) error {
			calls++
			return nil
		}})
	for range 2 {
		if n := f.runOnce(s); n != 0 {
			t.Errorf("RunOnce admitted %d jobs, want 0", n)
		}
	}

	got := f.job(job)
	if got.Status != store.JobQueued {
		t.Errorf("job %s, want queued", got.Status)
	}
	if waitReason(got) != scheduler.ReasonPeriodEnded {
		t.Errorf("wait reason %q, want %q", waitReason(got), scheduler.ReasonPeriodEnded)
	}
	if calls != 1 {
		t.Errorf("RenewBudgets called %d times, want once within RenewInterval", calls)
	}
	quota := f.quota("speech")
	if quota.CurrentConcurrent != 0 {
		t.Errorf("quota counts %d running jobs, want 0", quota.CurrentConcurrent)
	}
	if quota.GPUHoursReserved != 0 {
		t.Errorf("quota reserved %v GPU-hours, want 0", quota.GPUHoursReserved)
	}
}

// A period that starts in two days admits nothing today, and the renewal leaves it alone.
func TestFuturePeriodAdmitsNothing(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 2)
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = $1, period_end = $2
		WHERE project_id = 'speech'`, start, start.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	job := f.submit("speech", 5, 1000)

	if n := f.runOnce(f.scheduler(8, time.Hour)); n != 0 {
		t.Errorf("RunOnce admitted %d jobs, want 0", n)
	}

	if got := f.job(job); waitReason(got) != scheduler.ReasonPeriodNotStarted {
		t.Errorf("job waits with %q, want %q", waitReason(got), scheduler.ReasonPeriodNotStarted)
	}
	quota := f.quota("speech")
	if !quota.PeriodStart.Equal(start) {
		t.Errorf("period starts %s, want %s as set", quota.PeriodStart.Format(time.DateOnly), start.Format(time.DateOnly))
	}
}

// Renewal and admission read the same clock, the database's. Here the database's clock
// is 30 s past midnight UTC while the host's is still on the day before: the period that
// ended at that midnight is renewed, and its job admitted, in one RunOnce.
func TestRenewalGoesByDatabaseDate(t *testing.T) {
	midnight := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	f := setupAt(t, midnight.Add(30*time.Second))
	f.project("speech", 10, 10)
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = $1,
		period_end = $2, gpu_hours_used = 9.5 WHERE project_id = 'speech'`,
		midnight.AddDate(0, 0, -7), midnight); err != nil {
		t.Fatal(err)
	}
	job := f.submit("speech", 5, 1000)

	if n := f.runOnce(f.scheduler(8, time.Hour)); n != 1 {
		t.Fatalf("RunOnce admitted %d jobs, want 1", n)
	}

	if got := f.job(job); got.Status != store.JobRunning {
		t.Errorf("job %s, want running", got.Status)
	}
	quota := f.quota("speech")
	if !quota.PeriodStart.Equal(midnight) || !quota.PeriodEnd.Equal(midnight.AddDate(0, 0, 7)) {
		t.Errorf("period %s to %s, want %s to %s", quota.PeriodStart.Format(time.DateOnly),
			quota.PeriodEnd.Format(time.DateOnly), midnight.Format(time.DateOnly),
			midnight.AddDate(0, 0, 7).Format(time.DateOnly))
	}
	if quota.GPUHoursUsed != 0 {
		t.Errorf("quota used %v GPU-hours, want 0 in the new period", quota.GPUHoursUsed)
	}
}

// The scheduler renews an ended period even when the project has nothing queued.
func TestIdleEndedPeriodRenewed(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	_, oldEnd := f.endPeriod("speech", 4)

	if n := f.runOnce(f.scheduler(8, time.Hour)); n != 0 {
		t.Errorf("RunOnce admitted %d jobs, want 0", n)
	}

	quota := f.quota("speech")
	if !quota.PeriodStart.Equal(oldEnd) {
		t.Errorf("period starts %s, want %s, where the old one ended", quota.PeriodStart.Format(time.DateOnly), oldEnd.Format(time.DateOnly))
	}
	if quota.GPUHoursUsed != 0 {
		t.Errorf("quota used %v GPU-hours, want 0 in the new period", quota.GPUHoursUsed)
	}
}

// A failed renewal leaves the job waiting and does not fail the dequeue.
func TestRenewalFailureKeepsDequeueing(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	f.endPeriod("speech", 0)
	waiting := f.submit("speech", 9, 1000)
	other := f.submit("vision", 5, 1000)

	s := scheduler.New(f.store, scheduler.Config{Batch: 8,
		RenewBudgets: func(context.Context) error { return errors.New("lock timeout") }})
	n, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v, want no error when only the renewal failed", err)
	}

	if n != 1 {
		t.Errorf("RunOnce admitted %d jobs, want vision's 1", n)
	}
	if got := f.job(other); got.Status != store.JobRunning {
		t.Errorf("vision's job %s, want running", got.Status)
	}
	if got := f.job(waiting); waitReason(got) != scheduler.ReasonPeriodEnded {
		t.Errorf("speech's job waits with %q, want %q", waitReason(got), scheduler.ReasonPeriodEnded)
	}
}

// The renewal runs with a deadline, so a database that stops responding cannot hold the
// dequeue loop for longer than that.
func TestRenewalHasDeadline(t *testing.T) {
	f := setup(t)
	var deadline time.Time
	var hasDeadline bool
	s := scheduler.New(f.store, scheduler.Config{Batch: 8,
		RenewBudgets: func(ctx context.Context) error {
			deadline, hasDeadline = ctx.Deadline()
			return nil
		}})
	start := time.Now()
	f.runOnce(s)

	if !hasDeadline {
		t.Fatal("RenewBudgets got a context without a deadline")
	}
	// RunOnce renews first, so the 5 s deadline is set within a second of its start.
	if d := deadline.Sub(start); d < 5*time.Second || d > 6*time.Second {
		t.Errorf("renewal deadline %s after RunOnce started, want 5s to 6s", d)
	}
}

func TestConcurrentAdmissionsNeverOverspend(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 1_000_000, Nodes: 125, LargestNodeMilli: 8000})
	f.project("speech", 40, 1000) // 64 one-GPU-hour jobs, 40 fit
	for range 64 {
		f.submit("speech", 5, 1000)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := f.scheduler(1, time.Hour)
			if _, err := s.RunOnce(context.Background()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("dequeue: %v", err)
	}
	// Some dequeues found the head locked by others and admitted nothing; finish the queue.
	s := f.scheduler(64, time.Hour)
	for f.runOnce(s) > 0 {
	}

	quota, _ := f.store.GetQuota(context.Background(), "speech")
	if quota.CurrentConcurrent != 40 || quota.GPUHoursReserved != 40 {
		t.Errorf("concurrent %d reserved %v, want 40 and 40", quota.CurrentConcurrent, quota.GPUHoursReserved)
	}
	var running, queuedForBudget int
	err := f.store.Pool().QueryRow(context.Background(), `SELECT
		count(*) FILTER (WHERE status = 'running'),
		count(*) FILTER (WHERE status = 'queued' AND wait_reason = $1)
		FROM jobs WHERE project_id = 'speech'`, scheduler.ReasonBudget).Scan(&running, &queuedForBudget)
	if err != nil {
		t.Fatal(err)
	}
	if running != 40 || queuedForBudget != 24 {
		t.Errorf("running %d, queued for budget %d; want 40 and 24", running, queuedForBudget)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	f := setup(t)
	f.project("nlp", 1000, 2)
	jobs := []store.Job{f.submit("nlp", 5, 1000), f.submit("nlp", 5, 1000), f.submit("nlp", 5, 1000)}
	f.runOnce(f.scheduler(8, time.Hour))

	got := f.job(jobs[2])
	if got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonConcurrency {
		t.Errorf("third job %s reason %q, want queued with %q", got.Status, waitReason(got), scheduler.ReasonConcurrency)
	}
}

func TestDrainedQueueAdmitsNothing(t *testing.T) {
	f := setup(t)
	job := f.submit("vision", 5, 1000)
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET drained_at = now() WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}
	if n := f.runOnce(f.scheduler(8, time.Hour)); n != 0 {
		t.Errorf("admitted %d, want 0", n)
	}
	if got := f.job(job); waitReason(got) != scheduler.ReasonDrained {
		t.Errorf("reason %q, want %q", waitReason(got), scheduler.ReasonDrained)
	}
}

func TestModelCapacity(t *testing.T) {
	f := setup(t)
	f.capacity(
		store.ModelCapacity{Model: "A10", CapacityMilli: 2000, Nodes: 1, LargestNodeMilli: 2000},
		store.ModelCapacity{Model: "T4", CapacityMilli: 0, Nodes: 0},
	)
	cases := []struct {
		name   string
		milli  int
		models []string
		want   string
	}{
		{"unknown model", 1000, []string{"H100"}, scheduler.ReasonNoModel},
		{"model without nodes", 1000, []string{"T4"}, scheduler.ReasonNoModel},
		{"larger than a node", 4000, []string{"A10"}, scheduler.ReasonTooLarge},
	}
	s := f.scheduler(8, time.Hour)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			job := f.submit("vision", 5, c.milli, c.models...)
			f.runOnce(s)
			got := f.job(job)
			if got.Status != store.JobQueued || waitReason(got) != c.want {
				t.Errorf("%s reason %q, want queued with %q", got.Status, waitReason(got), c.want)
			}
		})
	}
}

// TestPodMustFitOneNode: A10 has a node with many GPUs and few cores and one the other way
// round. A job that needs many of both fits each resource's maximum but no node, so it
// waits as too large instead of being admitted to a pod that no node can take.
func TestPodMustFitOneNode(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 24000, Nodes: 2, LargestNodeMilli: 16000,
		LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 262144, NodeShapes: []store.NodeShape{
			{GPUMilli: 16000, CPUMilli: 16000, MemoryMiB: 262144},
			{GPUMilli: 8000, CPUMilli: 64000, MemoryMiB: 262144}}})
	submit := func(gpuMilli int, cpuMilli int64) store.Job {
		job, err := f.store.SubmitJob(context.Background(), store.Submission{
			ProjectID: "vision", JobType: "fine_tune", Priority: 5, Config: json.RawMessage(`{}`),
			GPUMilli: gpuMilli, GPUModels: []string{"A10"}, CPUMilli: cpuMilli, MaxRuntimeSeconds: 3600, MaxAttempts: 3,
			MaxPreemptions: 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	tooLarge := submit(16000, 64000)
	fits := submit(8000, 64000)

	f.runOnce(f.scheduler(8, time.Hour))
	if got := f.job(tooLarge); got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonTooLarge {
		t.Errorf("16 GPUs and 64 cores: %s with reason %q, want queued with %q", got.Status, waitReason(got),
			scheduler.ReasonTooLarge)
	}
	if got := f.job(fits); got.Status != store.JobRunning {
		t.Errorf("8 GPUs and 64 cores: %s, want running", got.Status)
	}
}

func TestCordonedModelRunsAfterUncordon(t *testing.T) {
	f := setup(t)
	f.capacity() // every A10 node cordoned: no capacity
	job := f.submit("vision", 5, 1000, "A10")
	s := f.scheduler(8, time.Hour)

	f.runOnce(s)
	if got := f.job(job); got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonNoModel {
		t.Errorf("while cordoned: %s reason %q, want queued", got.Status, waitReason(got))
	}
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	f.runOnce(s)
	if got := f.job(job); got.Status != store.JobRunning {
		t.Errorf("after uncordon: %s, want running", got.Status)
	}
}

func TestStarvingJobStopsBackfill(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	// Six GPUs busy: the 8-GPU job cannot fit, the small ones could.
	f.submit("vision", 9, 6000)
	f.runOnce(f.scheduler(8, time.Hour))
	big := f.submit("vision", 5, 8000)
	small := f.submit("vision", 5, 1000)

	f.runOnce(f.scheduler(8, time.Hour))
	if got := f.job(small); got.Status != store.JobRunning {
		t.Fatalf("before the bound: small job %s, want running (backfill allowed)", got.Status)
	}

	later := f.submit("vision", 5, 1000)
	f.runOnce(f.scheduler(8, time.Nanosecond)) // the big job has waited past the bound
	if got := f.job(big); got.Status != store.JobQueued {
		t.Errorf("big job %s, want queued", got.Status)
	}
	got := f.job(later)
	if got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonReserved {
		t.Errorf("later small job %s reason %q, want queued with %q", got.Status, waitReason(got), scheduler.ReasonReserved)
	}
}

func TestOtherProjectNotBlockedByFullOne(t *testing.T) {
	f := setup(t)
	f.project("full", 1000, 1)
	for range 200 {
		f.submit("full", 9, 1000)
	}
	other := f.submit("vision", 1, 1000)
	s := f.scheduler(4, time.Hour) // reads 16 candidates a dequeue, all of "full" when unfiltered

	// The first dequeue fills "full"; from then on its jobs are filtered out of the
	// candidates and the other project's job is reached.
	f.runOnce(s)
	f.runOnce(s)
	if got := f.job(other); got.Status != store.JobRunning {
		t.Errorf("job of another project %s, want running", got.Status)
	}
	quota, _ := f.store.GetQuota(context.Background(), "full")
	if quota.CurrentConcurrent != 1 {
		t.Errorf("full project runs %d jobs, want 1", quota.CurrentConcurrent)
	}
}

func ExamplePolicy() {
	fmt.Println(jobspec.ReservedGPUHours(500, 3600), jobspec.ReservedGPUHours(2000, 5400))
	// Output: 0.5 3
}

func TestModelWithoutLargeEnoughNodeSkipped(t *testing.T) {
	f := setup(t)
	f.capacity(
		store.ModelCapacity{Model: "G2", CapacityMilli: 800000, Nodes: 100, LargestNodeMilli: 8000,
			LargestNodeCPUMilli: 96000, LargestNodeMemoryMiB: 400000},
		store.ModelCapacity{Model: "V100M32", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000,
			LargestNodeCPUMilli: 128000, LargestNodeMemoryMiB: 800000},
	)
	job, err := f.store.SubmitJob(context.Background(), store.Submission{
		ProjectID: "vision", JobType: "fine_tune", Priority: 5, Config: json.RawMessage(`{}`),
		GPUMilli: 8000, MaxRuntimeSeconds: 3600, MaxAttempts: 1,
		MaxPreemptions: 20, CPUMilli: 120000, MemoryMiB: 500000,
	})
	if err != nil {
		t.Fatal(err)
	}

	var admitted []store.Admission
	s := scheduler.New(f.store, scheduler.Config{Batch: 8, OnAdmitted: func(a []store.Admission) { admitted = a }})
	f.runOnce(s)
	// G2 has the most free GPUs, but no G2 node has 120 CPUs.
	if len(admitted) != 1 || admitted[0].GPUModel != "V100M32" {
		t.Fatalf("admissions %+v, want job %s on V100M32", admitted, job.ID)
	}
}

func TestRefusedHeadDoesNotLeaveBatchShort(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000},
		store.ModelCapacity{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	// Two H100 jobs at the head of the queue cannot fit one node; the batch of two reads
	// only them at first, and must look past them to admit the A10 jobs behind.
	tooLarge := []store.Job{f.submit("vision", 9, 16000, "H100"), f.submit("vision", 9, 16000, "H100")}
	fits := []store.Job{f.submit("vision", 5, 1000, "A10"), f.submit("vision", 5, 1000, "A10")}
	s := f.scheduler(2, time.Hour)

	if n := f.runOnce(s); n != 2 {
		t.Fatalf("RunOnce admitted %d jobs, want the 2 A10 jobs behind the refused head", n)
	}
	// The next round comes up short and explains why the H100 jobs wait.
	if n := f.runOnce(s); n != 0 {
		t.Fatalf("second RunOnce admitted %d jobs, want 0", n)
	}
	for _, j := range fits {
		if got := f.job(j).Status; got != store.JobRunning {
			t.Errorf("A10 job %s is %s, want running", j.ID, got)
		}
	}
	for _, j := range tooLarge {
		if got := waitReason(f.job(j)); got != scheduler.ReasonTooLarge {
			t.Errorf("H100 job %s waits for %q, want %q", j.ID, got, scheduler.ReasonTooLarge)
		}
	}
	if n := f.runOnce(s); n != 0 {
		t.Errorf("second RunOnce admitted %d jobs, want 0", n)
	}
}

// TestBudgetComparesRoundedReservation: a job whose exact reservation is a little above the
// budget but rounds to it, as the quota stores it, is admitted. One that rounds above the
// budget waits with the reason of a job that no part of the period's budget can take.
func TestBudgetComparesRoundedReservation(t *testing.T) {
	f := setup(t)
	f.project("fits", 1, 10)
	f.project("over", 1, 10)
	fits := f.submitFor("fits", 7, 514286) // 1.00000056 GPU-hours, stored as 1.0000
	over := f.submitFor("over", 7, 514312) // 1.00005111 GPU-hours, stored as 1.0001

	f.runOnce(f.scheduler(10, time.Hour))

	if got := f.job(fits); got.Status != store.JobRunning {
		t.Errorf("job reserving 1.0000 of 1 GPU-hour: %s (%q), want running", got.Status, waitReason(got))
	}
	if got := f.quota("fits").GPUHoursReserved; got != 1 {
		t.Errorf("project fits reserved %v GPU-hours, want 1", got)
	}
	got := f.job(over)
	if got.Status != store.JobQueued {
		t.Errorf("job reserving 1.0001 of 1 GPU-hour: %s, want queued", got.Status)
	}
	if waitReason(got) != scheduler.ReasonBudgetTooSmall {
		t.Errorf("wait reason %q, want %q", waitReason(got), scheduler.ReasonBudgetTooSmall)
	}
}

// submitFor queues a job asking gpuMilli thousandths of a GPU for seconds.
func (f *fixture) submitFor(project string, gpuMilli, seconds int) store.Job {
	f.t.Helper()
	job, err := f.store.SubmitJob(context.Background(), store.Submission{
		ProjectID: project, JobType: "fine_tune", Priority: 5, Config: json.RawMessage(`{}`),
		GPUMilli: gpuMilli, MaxRuntimeSeconds: seconds, MaxAttempts: 3, MaxPreemptions: 20,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return job
}

// blockedHead fills the one H100 node, queues n more 8-GPU H100 jobs at priority 9 and
// then a 1-GPU A10 job of another project at priority 5, which A10's free GPUs could run.
func blockedHead(t *testing.T, f *fixture, n int) store.Job {
	t.Helper()
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000},
		store.ModelCapacity{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	f.submit("vision", 9, 8000, "H100")
	if n := f.runOnce(f.scheduler(2, time.Hour)); n != 1 {
		t.Fatalf("first H100 job: %d admitted, want 1", n)
	}
	for range n {
		f.submit("vision", 9, 8000, "H100")
	}
	f.project("other", 1000, 10)
	return f.submit("other", 5, 1000, "A10")
}

// Jobs waiting for a full model at the head of the queue, more than a round of dequeues
// reads (2 + 7*8 = 58 at a batch of 2), do not keep a job of another model waiting: the
// dequeue leaves them out.
func TestFullModelDoesNotBlockOthers(t *testing.T) {
	f := setup(t)
	a10 := blockedHead(t, f, 60)

	if n := f.runOnce(f.scheduler(2, time.Hour)); n != 1 {
		t.Errorf("RunOnce admitted %d jobs, want the A10 job", n)
	}
	if got := f.job(a10); got.Status != store.JobRunning {
		t.Errorf("A10 job %s, want running", got.Status)
	}
	waiting, err := f.store.ListJobs(context.Background(), store.JobFilter{Projects: []string{"vision"},
		Statuses: []store.JobStatus{store.JobQueued}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 60 {
		t.Errorf("%d H100 jobs queued, want 60", len(waiting))
	}
	for _, j := range waiting {
		if waitReason(j) != scheduler.ReasonNoCapacity {
			t.Errorf("H100 job %s waits for %q, want %q", j.ID, waitReason(j), scheduler.ReasonNoCapacity)
		}
	}
}

// Starving jobs stay candidates so that they hold their model back. A round reads page
// after page past them, so twenty of them at the head do not keep a job of another model
// waiting either.
func TestStarvingHeadDoesNotBlockOthers(t *testing.T) {
	f := setup(t)
	a10 := blockedHead(t, f, 20)

	if n := f.runOnce(f.scheduler(2, time.Nanosecond)); n != 1 {
		t.Errorf("RunOnce admitted %d jobs, want the A10 job", n)
	}
	if got := f.job(a10); got.Status != store.JobRunning {
		t.Errorf("A10 job %s, want running", got.Status)
	}
}

// A starving job keeps its project's slot: a later job of its project on another model
// does not take the last free slot. Otherwise the starving job would drop out of the next
// rounds' candidates and other projects would backfill its model. Once its model frees,
// the starving job runs, not a newer job of another project.
func TestStarvingJobHoldsProjectSlot(t *testing.T) {
	f := setup(t)
	f.capacity(store.ModelCapacity{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000},
		store.ModelCapacity{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000})
	f.project("solo", 1000, 1)
	var admitted []store.Admission
	s := scheduler.New(f.store, scheduler.Config{Batch: 8, Policy: scheduler.Policy{StarvationBound: time.Nanosecond},
		OnAdmitted: func(a []store.Admission) { admitted = append(admitted, a...) }})
	f.submit("vision", 9, 8000, "A10")
	if n := f.runOnce(s); n != 1 {
		t.Fatalf("first A10 job: %d admitted, want 1", n)
	}
	big := f.submit("solo", 5, 8000, "A10")
	small := f.submit("solo", 5, 1000, "H100")

	f.runOnce(s)
	got := f.job(small)
	if got.Status != store.JobQueued {
		t.Errorf("later job of the starving job's project %s, want queued", got.Status)
	}
	if waitReason(got) != scheduler.ReasonConcurrency {
		t.Errorf("later job of the starving job's project waits for %q, want %q", waitReason(got),
			scheduler.ReasonConcurrency)
	}

	ctx := context.Background()
	if err := f.store.StartRun(ctx, admitted[0].RunID, time.Now(), "node-1"); err != nil {
		t.Fatal(err)
	}
	_, err := f.store.EndRun(ctx, store.RunEnd{RunID: admitted[0].RunID, Status: store.RunCompleted,
		EndedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	newer := f.submit("vision", 5, 8000, "A10")
	f.runOnce(s)
	if got := f.job(big); got.Status != store.JobRunning {
		t.Errorf("starving job %s (%q) after its model freed, want running", got.Status, waitReason(got))
	}
	if got := f.job(newer); got.Status != store.JobQueued {
		t.Errorf("newer A10 job of another project %s, want queued", got.Status)
	}
}
