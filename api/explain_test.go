package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

func (f *fixture) explain(token string, job api.Job) api.Explanation {
	f.t.Helper()
	var e api.Explanation
	f.do(token, "GET", "/v1/jobs/"+job.ID.String()+"/explain", nil).want(200).decode(&e)
	return e
}

func TestExplainWaitingJob(t *testing.T) {
	f := setup(t)
	var running []api.Job
	for range 4 {
		running = append(running, f.submit(f.submitter, "vision", 5))
	}
	for _, a := range f.admit() {
		if err := f.store.StartRun(context.Background(), a.RunID, time.Now(), "node-1"); err != nil {
			t.Fatal(err)
		}
	}
	waiting := f.submit(f.submitter, "vision", 5)
	f.submit(f.audioSubmitter, "audio", 9)
	_, err := f.store.ExplainWaits(context.Background(), store.WaitReasons{Drained: scheduler.ReasonDrained,
		Concurrency: scheduler.ReasonConcurrency, Budget: scheduler.ReasonBudget,
		PeriodEnded: scheduler.ReasonPeriodEnded, PeriodNotStarted: scheduler.ReasonPeriodNotStarted})
	if err != nil {
		t.Fatal(err)
	}

	e := f.explain(f.submitter, waiting)
	if e.Status != "queued" || e.WaitReason == nil || *e.WaitReason != scheduler.ReasonConcurrency {
		t.Errorf("status %s, wait reason %v; want queued, %q", e.Status, e.WaitReason, scheduler.ReasonConcurrency)
	}
	if e.Position == nil || *e.Position != (api.Position{Ahead: 1, AheadInProject: 0, Queued: 2}) {
		t.Errorf("position %+v, want 1 ahead (the audio job), 0 of vision, 2 queued", e.Position)
	}
	wantBudget := api.BudgetState{GPUHoursBudget: 100, GPUHoursReserved: 4, GPUHoursLeft: 96, JobReservation: 1, Fits: true}
	if e.Budget == nil || *e.Budget != wantBudget {
		t.Errorf("budget %+v, want %+v", e.Budget, wantBudget)
	}
	if e.Concurrency == nil || *e.Concurrency != (api.ConcurrencyState{MaxConcurrentJobs: 4, CurrentConcurrent: 4}) {
		t.Errorf("concurrency %+v, want 4 of 4 taken", e.Concurrency)
	}
	wantModels := []api.ModelState{{Model: "A10", Nodes: 2, CapacityMilli: 16000, AllocatedMilli: 4000,
		FreeMilli: 12000, LargestNodeMilli: 8000, LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}}
	if fmt.Sprint(e.GPUModels) != fmt.Sprint(wantModels) {
		t.Errorf("models %+v, want %+v", e.GPUModels, wantModels)
	}
	if fmt.Sprint(e.Blockers) != fmt.Sprint([]string{scheduler.ReasonConcurrency}) {
		t.Errorf("blockers %q, want only the concurrency limit", e.Blockers)
	}

	// A period that ended at midnight UTC today holds the job back until it is renewed.
	// Its used hours do not, because the renewal resets them.
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = $1, period_end = $2,
		gpu_hours_used = 99 WHERE project_id = 'vision'`, today.AddDate(0, -1, 0), today); err != nil {
		t.Fatal(err)
	}
	e = f.explain(f.submitter, waiting)
	if fmt.Sprint(e.Blockers) != fmt.Sprint([]string{scheduler.ReasonPeriodEnded, scheduler.ReasonConcurrency}) {
		t.Errorf("blockers %q after the period ended, want the ended period and concurrency", e.Blockers)
	}
	if !e.Budget.Fits {
		t.Errorf("budget %+v after the period ended, want it to fit the renewed budget (100 - 4 reserved)", e.Budget)
	}
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = $1, period_end = $2,
		gpu_hours_used = 0 WHERE project_id = 'vision'`, today.AddDate(0, 0, 2), today.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	e = f.explain(f.submitter, waiting)
	if fmt.Sprint(e.Blockers) != fmt.Sprint([]string{scheduler.ReasonPeriodNotStarted, scheduler.ReasonConcurrency}) {
		t.Errorf("blockers %q before the period starts, want the period and concurrency", e.Blockers)
	}
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE quotas SET period_start = '2026-01-01',
		period_end = '2100-01-01' WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}

	f.do(f.operator, "POST", "/v1/queues/vision/drain", nil).want(200)
	e = f.explain(f.submitter, waiting)
	if !e.Drained || fmt.Sprint(e.Blockers) != fmt.Sprint([]string{scheduler.ReasonDrained, scheduler.ReasonConcurrency}) {
		t.Errorf("drained %t, blockers %q; want drained and concurrency", e.Drained, e.Blockers)
	}

	if e.Run != nil {
		t.Errorf("a queued job has run %+v, want none", e.Run)
	}

	e = f.explain(f.submitter, running[0])
	if e.Status != "running" || e.Position != nil || len(e.Blockers) != 0 {
		t.Errorf("a running job: status %s, position %+v, blockers %q; want running, none, none", e.Status, e.Position, e.Blockers)
	}
	if r := e.Run; r == nil || r.Number != 1 || r.Status != "running" || r.Node == nil || *r.Node != "node-1" ||
		!strings.HasSuffix(r.Pod, "/job-"+running[0].ID.String()+"-r1") {
		t.Errorf("a running job's run %+v, want run 1 running on node-1 in pod job-%s-r1", r, running[0].ID)
	}
	if e.Run != nil && e.Run.Stopping != nil {
		t.Errorf("a running job's run is stopping with %q, want no stop", *e.Run.Stopping)
	}

	// While the dispatcher stops the run's pod, explain shows how the run will end.
	var runID uuid.UUID
	if err := f.store.Pool().QueryRow(context.Background(), `SELECT id FROM runs WHERE job_id = $1`,
		running[0].ID).Scan(&runID); err != nil {
		t.Fatal(err)
	}
	stop := store.RunEnd{RunID: runID, Status: store.RunCancelled, Reason: "job paused"}
	if err := f.store.RequestStop(context.Background(), stop, time.Now()); err != nil {
		t.Fatal(err)
	}
	if e = f.explain(f.submitter, running[0]); e.Run == nil || e.Run.Stopping == nil || *e.Run.Stopping != "cancelled: job paused" {
		t.Errorf("a stopping run %+v, want stopping \"cancelled: job paused\"", e.Run)
	}

	// A row from before the store cleared reasons on leaving the queue: the API hides the
	// stale reason of a job that is no longer queued.
	if _, err := f.store.Pool().Exec(context.Background(), `UPDATE jobs SET wait_reason = $2 WHERE id = $1`,
		running[0].ID, scheduler.ReasonBudget); err != nil {
		t.Fatal(err)
	}
	var jobView api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+running[0].ID.String(), nil).want(200).decode(&jobView)
	if e = f.explain(f.submitter, running[0]); e.WaitReason != nil || jobView.WaitReason != nil {
		t.Errorf("a running job with a stale reason: explain shows %v, the job shows %v; want neither",
			e.WaitReason, jobView.WaitReason)
	}
}

// A running job whose pod waits for GPUs that other pods use shows the dispatcher's reason
// until the run starts. The store keeps the first reason of the run.
func TestExplainPodWaitingForGPUs(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	admissions := f.admit()
	if len(admissions) != 1 {
		t.Fatalf("%d admissions, want 1", len(admissions))
	}
	ctx := context.Background()
	runID := admissions[0].RunID
	reason := store.ReasonPodWaitsForGPUs + ": node gpu-1 could hold the pod once its GPUs are free"
	stored, err := f.store.SetPodWaitReason(ctx, runID, reason)
	if err != nil {
		t.Fatal(err)
	}
	if !stored {
		t.Error("the first reason of the run was not stored")
	}
	stored, err = f.store.SetPodWaitReason(ctx, runID, reason+" again")
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		t.Error("a second reason of the same run was stored, want the first kept")
	}

	var jobView api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&jobView)
	if jobView.WaitReason == nil || *jobView.WaitReason != reason {
		t.Errorf("job shows wait reason %v, want %q", jobView.WaitReason, reason)
	}
	if e := f.explain(f.submitter, job); e.WaitReason == nil || *e.WaitReason != reason {
		t.Errorf("explain shows wait reason %v, want %q", e.WaitReason, reason)
	}

	if err := f.store.StartRun(ctx, runID, time.Now(), "gpu-1"); err != nil {
		t.Fatal(err)
	}
	got, err := f.store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.WaitReason != nil {
		t.Errorf("started job keeps the wait reason %q", *got.WaitReason)
	}
	stored, err = f.store.SetPodWaitReason(ctx, runID, reason)
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		t.Error("a reason was stored for a run that has started")
	}
}

func TestExplainCapacityBlockers(t *testing.T) {
	cases := []struct {
		name     string
		gpus     int
		cpuMilli int
		seconds  int
		model    string
		want     string
	}{
		{"fits", 1, 4000, 3600, "A10", ""},
		{"more GPUs than any node", 16, 4000, 3600, "A10", scheduler.ReasonTooLarge},
		{"more CPU than any node", 1, 128000, 3600, "A10", scheduler.ReasonTooLarge},
		{"no free capacity", 4, 4000, 3600, "T4", scheduler.ReasonNoCapacity},
		{"budget", 8, 4000, 12 * 3600, "A10", scheduler.ReasonBudgetTooSmall},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t)
			f.submit(f.operator, "audio", 90)
			f.admitOnly("T4") // 1 of the 4 T4 GPUs taken
			config := map[string]any{"image": "x", "max_runtime_seconds": c.seconds,
				"resources": map[string]any{"gpus": c.gpus, "cpu_milli": c.cpuMilli, "gpu_models": []string{c.model}}}
			// Submission refuses a job that no node could hold, so in the too-large cases a
			// bigger A10 node is there at submission and gone before the explanation.
			a10 := store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000,
				LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
			t4 := store.ModelCapacity{Model: "T4", CapacityMilli: 4000, Nodes: 1, LargestNodeMilli: 4000,
				LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
			if c.want == scheduler.ReasonTooLarge {
				big := a10
				big.Nodes, big.CapacityMilli, big.LargestNodeMilli, big.LargestNodeCPUMilli = 3, 32000, 16000, 128000
				f.capacity(big, t4)
			}
			var job api.Job
			f.do(f.operator, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).want(201).decode(&job)
			f.capacity(a10, t4)
			if c.want == scheduler.ReasonBudgetTooSmall {
				// The job's 96 GPU-hours fit the budget of 100, but not the 90 left after this.
				if _, err := f.store.DebitBudget(context.Background(), "vision", 10); err != nil {
					t.Fatal(err)
				}
			}

			e := f.explain(f.operator, job)
			want := []string{}
			if c.want != "" {
				want = []string{c.want}
			}
			if fmt.Sprint(e.Blockers) != fmt.Sprint(want) {
				t.Errorf("blockers %q, want %q", e.Blockers, want)
			}
		})
	}
}

// A job that exceeds what is left of the budget waits for it. Once it has waited the
// starvation bound, it holds the budget, and a later job that would fit what is left waits
// for it. When the used hours grow so that it can no longer fit in this period, it holds
// nothing, and its blocker states that.
func TestExplainBudgetBlockers(t *testing.T) {
	f := setup(t)
	f.submitA10(5, 10)
	f.admitOnly("A10") // 50 of the 100 GPU-hours reserved
	big, small := f.submitA10(6, 10), f.submitA10(1, 1)
	expect := func(when string, job api.Job, want ...string) {
		t.Helper()
		if want == nil {
			want = []string{}
		}
		if e := f.explain(f.operator, job); fmt.Sprint(e.Blockers) != fmt.Sprint(want) {
			t.Errorf("%s: blockers %q, want %q", when, e.Blockers, want)
		}
	}

	expect("60 GPU-hour job before the bound", big, scheduler.ReasonBudget)
	expect("1 GPU-hour job before the bound", small)

	f.queuedHourAgo(big)
	expect("60 GPU-hour job past the bound", big, scheduler.ReasonBudget)
	expect("1 GPU-hour job behind it", small, scheduler.ReasonBudgetHeld)

	if _, err := f.store.DebitBudget(context.Background(), "vision", 45); err != nil {
		t.Fatal(err)
	}
	expect("60 GPU-hour job with 45 used", big, scheduler.ReasonBudgetTooSmall)
	expect("1 GPU-hour job behind it with 45 used", small)
}

// A starving job that no node could run holds nothing, so the job behind it that fits what
// is left of the budget has no budget blocker.
func TestExplainUnrunnableJobHoldsNoBudget(t *testing.T) {
	f := setup(t)
	f.submitA10(5, 10)
	f.admitOnly("A10") // 50 of the 100 GPU-hours reserved
	// Submission refuses a job that no node could hold, so a 16-GPU A10 node is there at
	// submission and gone before the explanation.
	a10 := store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000,
		LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
	big := a10
	big.Nodes, big.CapacityMilli, big.LargestNodeMilli = 3, 32000, 16000
	f.capacity(big)
	tooLarge, small := f.submitA10(16, 4), f.submitA10(1, 1)
	f.capacity(a10)
	f.queuedHourAgo(tooLarge)

	if e := f.explain(f.operator, tooLarge); fmt.Sprint(e.Blockers) !=
		fmt.Sprint([]string{scheduler.ReasonBudget, scheduler.ReasonTooLarge}) {
		t.Errorf("64 GPU-hour job on 16 GPUs: blockers %q, want %q and %q", e.Blockers,
			scheduler.ReasonBudget, scheduler.ReasonTooLarge)
	}
	if e := f.explain(f.operator, small); len(e.Blockers) != 0 {
		t.Errorf("1 GPU-hour job behind it: blockers %q, want none", e.Blockers)
	}
}

// submitA10 submits a job of vision at priority 5 for gpus A10 GPUs and hours hours.
func (f *fixture) submitA10(gpus, hours int) api.Job {
	f.t.Helper()
	config := map[string]any{"image": "x", "max_runtime_seconds": hours * 3600,
		"resources": map[string]any{"gpus": gpus, "gpu_models": []string{"A10"}}}
	var job api.Job
	f.do(f.operator, "POST", "/v1/projects/vision/jobs", submitBody(5, config)).want(201).decode(&job)
	return job
}

// queuedHourAgo makes job look queued for an hour, past the starvation bound.
func (f *fixture) queuedHourAgo(job api.Job) {
	f.t.Helper()
	_, err := f.store.Pool().Exec(context.Background(),
		`UPDATE job_queue SET queued_at = now() - interval '1 hour' WHERE job_id = $1`, job.ID)
	if err != nil {
		f.t.Fatal(err)
	}
}

// admitOnly admits every queued job on model.
func (f *fixture) admitOnly(model string) {
	f.t.Helper()
	_, err := f.store.Dequeue(context.Background(), store.CandidateWindow{Limit: 100}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		var decisions []store.Decision
		for _, c := range snap.Candidates {
			hours := jobspec.ReservedGPUHours(c.GPUMilli, c.MaxRuntimeSeconds)
			decisions = append(decisions, store.Decision{Candidate: c, GPUModel: model, GPUHoursReserved: hours})
		}
		return decisions, nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// A paused job waits for a resume, which its blocker names.
func TestExplainPausedJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	f.do(f.submitter, "POST", "/v1/jobs/"+job.ID.String()+"/pause", nil).want(200)

	e := f.explain(f.submitter, job)
	if e.Status != "paused" {
		t.Errorf("status %s, want paused", e.Status)
	}
	if fmt.Sprint(e.Blockers) != fmt.Sprint([]string{api.BlockerPaused}) {
		t.Errorf("blockers %q, want only the pause", e.Blockers)
	}
}

// A failed job's explanation carries its last run's end as the runs table records it, and a
// job without an ended run has none. The test reads the JSON, not api.Explanation, so that
// it checks the field names that clients see.
func TestExplainFailedJobLastRun(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	if queued := f.explainJSON(job); queued.LastRun != nil {
		t.Errorf("queued job: last_run %s, want none", queued.LastRun)
	}
	admissions := f.admit()
	if len(admissions) != 1 {
		t.Fatalf("%d admissions, want 1", len(admissions))
	}
	exitCode, endedAt := 3, time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	_, err := f.store.EndRun(context.Background(), store.RunEnd{RunID: admissions[0].RunID, Status: store.RunFailed,
		EndedAt: endedAt, ExitCode: &exitCode, Reason: "Error (exit code 3)"})
	if err != nil {
		t.Fatal(err)
	}

	failed := f.explainJSON(job)
	if failed.Status != "failed" {
		t.Errorf("status %s, want failed", failed.Status)
	}
	if failed.Run != nil {
		t.Errorf("run %s, want none: the run has ended", failed.Run)
	}
	wantJSON(t, "last_run", failed.LastRun, `{"number":1,"status":"failed","completed_at":"2026-05-01T12:30:00Z",`+
		`"exit_code":3,"end_reason":"Error (exit code 3)"}`)
}

// explainedRuns is the part of an explanation about the job's status and runs, as JSON.
type explainedRuns struct {
	Status  string          `json:"status"`
	Run     json.RawMessage `json:"run"`
	LastRun json.RawMessage `json:"last_run"`
}

func (f *fixture) explainJSON(job api.Job) explainedRuns {
	f.t.Helper()
	var e explainedRuns
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String()+"/explain", nil).want(200).decode(&e)
	return e
}
