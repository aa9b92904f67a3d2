package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// age moves the job's time in the queue back by d, so that it has waited d longer.
func (f *fixture) age(job store.Job, d time.Duration) {
	f.t.Helper()
	_, err := f.store.Pool().Exec(context.Background(),
		`UPDATE job_queue SET queued_at = queued_at - $2::bigint * interval '1 microsecond' WHERE job_id = $1`,
		job.ID, d.Microseconds())
	if err != nil {
		f.t.Fatal(err)
	}
}

// endRun starts and at once ends the admitted run, which is charged next to no GPU-hours
// and releases its reservation.
func (f *fixture) endRun(a store.Admission) {
	f.t.Helper()
	ctx := context.Background()
	if err := f.store.StartRun(ctx, a.RunID, time.Now(), "node-1"); err != nil {
		f.t.Fatal(err)
	}
	_, err := f.store.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: time.Now()})
	if err != nil {
		f.t.Fatal(err)
	}
}

// collecting returns a scheduler of batch 8 and starvation bound one hour whose admissions
// collect in the returned slice.
func (f *fixture) collecting() (*scheduler.Scheduler, *[]store.Admission) {
	admitted := &[]store.Admission{}
	s := scheduler.New(f.store, scheduler.Config{Batch: 8, Policy: scheduler.Policy{StarvationBound: time.Hour},
		OnAdmitted: func(a []store.Admission) { *admitted = append(*admitted, a...) }})
	return s, admitted
}

// smallJobsRun submits three one-GPU-hour jobs of speech, runs one round of s and checks
// that it admitted all three: nothing held the budget back from them.
func (f *fixture) smallJobsRun(s *scheduler.Scheduler) {
	f.t.Helper()
	var small []store.Job
	for range 3 {
		small = append(small, f.submit("speech", 5, 1000))
	}

	if n := f.runOnce(s); n != 3 {
		f.t.Errorf("RunOnce admitted %d jobs, want the 3 small ones", n)
	}
	for i, j := range small {
		if got := f.job(j); got.Status != store.JobRunning {
			f.t.Errorf("small job %d: %s (%q), want running", i, got.Status, waitReason(got))
		}
	}
}

// An 8 GPU-hour job that does not fit the 4 GPU-hours left of its project's budget, but
// fits the budget minus the used hours, waits past the starvation bound. From then on the
// 1 GPU-hour jobs queued after it wait too, and once the running job ends, it runs.
// Before the bound, a small job after it is admitted as before.
func TestStarvingJobHoldsBudget(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	s, admitted := f.collecting()
	f.submit("speech", 5, 6000)
	if n := f.runOnce(s); n != 1 {
		t.Fatalf("running job: %d admitted, want 1", n)
	}
	running := (*admitted)[0]
	big := f.submit("speech", 5, 8000)
	early := f.submit("speech", 5, 1000)
	f.runOnce(s)
	if got := f.job(early); got.Status != store.JobRunning {
		t.Fatalf("small job before the bound: %s (%q), want running", got.Status, waitReason(got))
	}

	f.age(big, 2*time.Hour)
	var small []store.Job
	for i := range 3 {
		small = append(small, f.submit("speech", 5, 1000))
		f.runOnce(s)
		got := f.job(small[i])
		if got.Status != store.JobQueued {
			t.Errorf("small job %d after the bound: %s, want queued", i, got.Status)
		}
		if waitReason(got) != scheduler.ReasonBudgetHeld {
			t.Errorf("small job %d waits for %q, want %q", i, waitReason(got), scheduler.ReasonBudgetHeld)
		}
	}
	got := f.job(big)
	if got.Status != store.JobQueued {
		t.Errorf("big job %s while the running job reserves the budget, want queued", got.Status)
	}
	if reason := waitReason(got); !strings.HasPrefix(reason, scheduler.ReasonBudget+"; waiting since ") {
		t.Errorf("big job waits for %q, want %q with the time it has waited since", reason, scheduler.ReasonBudget)
	}
	if q := f.quota("speech"); q.GPUHoursReserved != 7 {
		t.Errorf("speech reserved %v GPU-hours, want the 7 of the two running jobs", q.GPUHoursReserved)
	}

	f.endRun(running)
	before := len(*admitted)
	f.runOnce(s)
	if got := f.job(big); got.Status != store.JobRunning {
		t.Fatalf("big job %s (%q) after the running job ended, want running", got.Status, waitReason(got))
	}
	if len(*admitted) == before || (*admitted)[before].Job.ID != big.ID {
		t.Errorf("first admission after the end is not the big job")
	}
	if got := f.job(small[0]); got.Status != store.JobRunning {
		t.Errorf("first small job %s after the big one ran, want running in the hour left", got.Status)
	}
	if got := f.job(small[1]); got.Status != store.JobQueued || waitReason(got) != scheduler.ReasonBudget {
		t.Errorf("second small job %s (%q), want queued with %q", got.Status, waitReason(got), scheduler.ReasonBudget)
	}
}

// A job that reserves more than the budget minus the used hours can never run in this
// period. It holds nothing back, however long it waits, and its reason states why it waits.
func TestTooLargeForPeriodHoldsNothing(t *testing.T) {
	f := setup(t)
	f.project("speech", 10, 10)
	if _, err := f.store.Pool().Exec(context.Background(),
		`UPDATE quotas SET gpu_hours_used = 5 WHERE project_id = 'speech'`); err != nil {
		t.Fatal(err)
	}
	s, _ := f.collecting()
	big := f.submit("speech", 5, 6000)
	f.age(big, 2*time.Hour)
	f.smallJobsRun(s)
	got := f.job(big)
	if got.Status != store.JobQueued {
		t.Errorf("6 GPU-hour job with 5 of 10 used: %s, want queued", got.Status)
	}
	if waitReason(got) != scheduler.ReasonBudgetTooSmall {
		t.Errorf("6 GPU-hour job with 5 of 10 used waits for %q, want %q", waitReason(got),
			scheduler.ReasonBudgetTooSmall)
	}
}

// A job that holds its project's budget keeps the later jobs of the project out of the
// round's later pages. Seventy of them, more than the 58 candidates that a round reads at a
// batch of 2, do not keep a job of another project behind them waiting.
func TestLaterPagesSkipBudgetHeldJobs(t *testing.T) {
	f := setup(t)
	f.project("speech", 20, 100)
	s := scheduler.New(f.store, scheduler.Config{Batch: 2, Policy: scheduler.Policy{StarvationBound: time.Hour}})
	f.submitFor("speech", 8000, 2*3600) // 16 of the 20 GPU-hours
	if n := f.runOnce(s); n != 1 {
		t.Fatalf("running job: %d admitted, want 1", n)
	}
	big := f.submit("speech", 9, 8000)
	f.age(big, 2*time.Hour)
	var small []store.Job
	for range 70 {
		small = append(small, f.submit("speech", 9, 1000))
	}
	other := f.submit("vision", 1, 1000)

	if n := f.runOnce(s); n != 1 {
		t.Errorf("RunOnce admitted %d jobs, want the other project's one", n)
	}
	if got := f.job(other); got.Status != store.JobRunning {
		t.Errorf("job of another project behind the held ones: %s, want running", got.Status)
	}
	for i, j := range small {
		if got := f.job(j); got.Status != store.JobQueued {
			t.Errorf("small job %d: %s, want queued behind the big one", i, got.Status)
		}
	}
	if got := f.job(big); got.Status != store.JobQueued {
		t.Errorf("big job %s, want queued", got.Status)
	}
	if q := f.quota("speech"); q.GPUHoursReserved != 16 {
		t.Errorf("speech reserved %v GPU-hours, want the 16 of the running job", q.GPUHoursReserved)
	}
}

// A starving job that no node of its allowed models could run holds nothing from its
// project's budget, as it holds no capacity. The later jobs of its project use what is left.
func TestUnrunnableStarvingJobHoldsNoBudget(t *testing.T) {
	cases := []struct {
		name     string
		gpuMilli int
		models   []string
	}{
		{"larger than any node", 9000, nil},
		{"model without nodes", 5000, []string{"H100"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			f.project("speech", 10, 10)
			s, _ := f.collecting()
			f.submit("speech", 5, 6000)
			if n := f.runOnce(s); n != 1 {
				t.Fatalf("running job: %d admitted, want 1", n)
			}
			big := f.submit("speech", 5, c.gpuMilli, c.models...)
			f.age(big, 2*time.Hour)
			f.smallJobsRun(s)
			got := f.job(big)
			if got.Status != store.JobQueued {
				t.Errorf("job no node could run: %s, want queued", got.Status)
			}
			if waitReason(got) != scheduler.ReasonBudget {
				t.Errorf("job no node could run waits for %q, want %q without a hold", waitReason(got),
					scheduler.ReasonBudget)
			}
		})
	}
}
