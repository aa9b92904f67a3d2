package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// admitOne queues a job of gpuMilli for one hour with maxAttempts and admits it on A10,
// returning its run.
func admitOne(t *testing.T, s *store.Store, gpuMilli, maxAttempts int) store.Admission {
	t.Helper()
	return admitConfig(t, s, gpuMilli, maxAttempts, string(submission("").Config), false)
}

// admitConfig is admitOne for a job with the given config.
func admitConfig(t *testing.T, s *store.Store, gpuMilli, maxAttempts int, config string, workflow bool) store.Admission {
	t.Helper()
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	sub := submission("")
	sub.Config, sub.Workflow = json.RawMessage(config), workflow
	sub.GPUMilli, sub.MaxAttempts, sub.MaxRuntimeSeconds = gpuMilli, maxAttempts, 3600
	if _, err := s.SubmitJob(ctx, sub); err != nil {
		t.Fatal(err)
	}
	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		c := snap.Candidates[0]
		return []store.Decision{{Candidate: c, GPUModel: "A10", GPUHoursReserved: float64(gpuMilli) / 1000}}, nil
	})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("dequeue: %v admissions, err %v", len(admissions), err)
	}
	return admissions[0]
}

func TestCompletedRunDebitsExactHours(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 2000, 3)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	if err := s.StartRun(ctx, a.RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	result, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(45 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}

	if result.GPUHoursUsed != 1.5 || result.JobStatus != store.JobCompleted || result.ProjectID != "vision" {
		t.Errorf("result %+v, want 1.5 GPU-hours, job completed, project vision", result)
	}
	quota, _ := s.GetQuota(ctx, "vision")
	if quota.GPUHoursUsed != 1.5 || quota.GPUHoursReserved != 0 || quota.CurrentConcurrent != 0 {
		t.Errorf("quota %+v, want used 1.5, nothing reserved, no job running", quota)
	}
	models, _ := s.ListGPUModels(ctx)
	if models[0].AllocatedMilli != 0 {
		t.Errorf("A10 still has %d milli allocated", models[0].AllocatedMilli)
	}

	_, err = s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(time.Hour)})
	if !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("second end: %v, want ErrStaleStatus", err)
	}
	quota, _ = s.GetQuota(ctx, "vision")
	if quota.GPUHoursUsed != 1.5 {
		t.Errorf("after the second end: used %v, want 1.5 (counted once)", quota.GPUHoursUsed)
	}
}

func TestRunHoursCappedAtReservation(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := s.StartRun(ctx, a.RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}

	result, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(5 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if result.GPUHoursUsed != 1 {
		t.Errorf("used %v GPU-hours, want 1 (the reservation)", result.GPUHoursUsed)
	}
}

func TestRunEndMovesJob(t *testing.T) {
	cases := []struct {
		name        string
		maxAttempts int
		end         store.RunEnd
		wantJob     store.JobStatus
		wantTries   int
		// wantReason is the job's wait reason afterwards; only a requeued job has one.
		wantReason string
	}{
		{"retryable failure with attempts left", 3, store.RunEnd{Status: store.RunFailed, Retryable: true, Reason: "OOMKilled"},
			store.JobQueued, 1, "retrying after failure: OOMKilled"},
		{"failure on the last attempt", 1, store.RunEnd{Status: store.RunFailed, Retryable: true, Reason: "Error"},
			store.JobFailed, 1, ""},
		{"non-retryable failure", 3, store.RunEnd{Status: store.RunFailed, Retryable: false, Reason: "ErrImagePull"},
			store.JobFailed, 1, ""},
		{"preemption uses no attempt", 1, store.RunEnd{Status: store.RunPreempted, Reason: "Evicted"},
			store.JobQueued, 0, "requeued after preemption: Evicted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup(t)
			ctx := context.Background()
			a := admitOne(t, s, 1000, c.maxAttempts)
			c.end.RunID, c.end.EndedAt = a.RunID, time.Now()

			result, err := s.EndRun(ctx, c.end)
			if err != nil {
				t.Fatal(err)
			}
			job, _ := s.GetJob(ctx, a.Job.ID)
			if result.JobStatus != c.wantJob || job.Status != c.wantJob || job.Attempts != c.wantTries {
				t.Errorf("job %s with %d attempts (result %s), want %s with %d", job.Status, job.Attempts, result.JobStatus, c.wantJob, c.wantTries)
			}
			if got := deref(job.WaitReason); got != c.wantReason {
				t.Errorf("wait reason %q, want %q", got, c.wantReason)
			}
			if result.GPUHoursUsed != 0 {
				t.Errorf("a run that never started used %v GPU-hours, want 0", result.GPUHoursUsed)
			}
		})
	}
}

// TestCompletionClearsEarlierError: a job preempted once and then completed carries no
// error message from the preemption.
func TestCompletionClearsEarlierError(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := admitOne(t, s, 1000, 3)
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: first.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "pod deleted"}); err != nil {
		t.Fatal(err)
	}
	job, _ := s.GetJob(ctx, first.Job.ID)
	if job.ErrorMessage == nil || *job.ErrorMessage != "pod deleted" {
		t.Fatalf("after the preemption: error %v, want pod deleted", job.ErrorMessage)
	}

	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 1}}, nil
	})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("second admission: %d, %v", len(admissions), err)
	}
	start := time.Now().Add(-time.Minute)
	if err := s.StartRun(ctx, admissions[0].RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: admissions[0].RunID, Status: store.RunCompleted, EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	job, _ = s.GetJob(ctx, first.Job.ID)
	if job.Status != store.JobCompleted || job.ErrorMessage != nil {
		t.Errorf("job %s with error %v, want completed without an error", job.Status, job.ErrorMessage)
	}
}

// TestCancelClearsEarlierError: a job preempted once and then cancelled carries no error
// message from the preemption, and its run keeps the reason it ended.
func TestCancelClearsEarlierError(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "pod deleted"}); err != nil {
		t.Fatal(err)
	}

	job, err := s.SetJobStatus(ctx, a.Job, store.JobQueued, store.JobCancelled, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if job.Status != store.JobCancelled {
		t.Errorf("job %s, want cancelled", job.Status)
	}
	if job.ErrorMessage != nil {
		t.Errorf("error %q, want none", *job.ErrorMessage)
	}
	var reason string
	if err := s.Pool().QueryRow(ctx, `SELECT end_reason FROM runs WHERE id = $1`, a.RunID).Scan(&reason); err != nil {
		t.Fatal(err)
	}
	if reason != "pod deleted" {
		t.Errorf("run end reason %q, want pod deleted", reason)
	}
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// A run ends, and gives back what it holds, also after its budget was cut in SQL below
// what the project has used and reserved.
func TestRunEndsAfterBudgetCutInSQL(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 2000, 3)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if err := s.StartRun(ctx, a.RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_budget = 1 WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}

	_, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(45 * time.Minute)})
	if err != nil {
		t.Fatalf("end run after the budget cut: %v", err)
	}
	q, err := s.GetQuotaState(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if q.GPUHoursUsed != 1.5 {
		t.Errorf("used %v GPU-hours, want the run's 1.5", q.GPUHoursUsed)
	}
	if q.GPUHoursReserved != 0 {
		t.Errorf("reserved %v GPU-hours, want 0", q.GPUHoursReserved)
	}
	if q.CurrentConcurrent != 0 {
		t.Errorf("%d admitted jobs, want 0", q.CurrentConcurrent)
	}
}

// Deleting a live run is rejected, because nothing would give back its reservation, slot
// and GPUs. A reset that gives them back itself may delete it with
// schedulerd.delete_live_runs.
func TestDeleteLiveRunRejected(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)

	_, err := s.Pool().Exec(ctx, `DELETE FROM runs WHERE id = $1`, a.RunID)
	if err == nil || !strings.Contains(err.Error(), "end it before deleting it") {
		t.Errorf("deleting a pending run: %v, want it rejected", err)
	}
	if q, _ := s.GetQuotaState(ctx, "vision"); q.CurrentConcurrent != 1 {
		t.Errorf("%d admitted jobs after the rejected delete, want 1", q.CurrentConcurrent)
	}

	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SET LOCAL schedulerd.delete_live_runs = on`); err != nil {
		t.Fatal(err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM runs WHERE id = $1`, a.RunID)
	if err != nil || tag.RowsAffected() != 1 {
		t.Errorf("deleting with schedulerd.delete_live_runs on: %v rows, %v; want 1 row", tag.RowsAffected(), err)
	}
}

// A job whose config has an evaluation or a model section is evaluating from the moment its
// run completes, before its workflow starts to evaluate it. Otherwise a pipeline that polls
// the job would see it completed without a result while Temporal is down, and stop waiting.
func TestCompletedRunMarksEvaluating(t *testing.T) {
	cases := []struct {
		name, config string
		workflow     bool
		end          store.RunStatus
		wantResult   string // "" for no result
	}{
		{"model section", `{"image":"x","model":{"name":"resnet"}}`, true, store.RunCompleted, `{"status": "evaluating"}`},
		{"evaluation section", `{"image":"x","evaluation":{"thresholds":{"acc":{"min":0.8}}}}`, true,
			store.RunCompleted, `{"status": "evaluating"}`},
		{"neither section", `{"image":"x"}`, true, store.RunCompleted, ""},
		{"null model section", `{"image":"x","model":null}`, true, store.RunCompleted, ""},
		{"preempted run", `{"image":"x","model":{"name":"resnet"}}`, true, store.RunPreempted, ""},
		{"failed run", `{"image":"x","model":{"name":"resnet"}}`, true, store.RunFailed, ""},
		{"no workflow", `{"image":"x","model":{"name":"resnet"}}`, false, store.RunCompleted, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup(t)
			ctx := context.Background()
			a := admitConfig(t, s, 1000, 1, c.config, c.workflow)
			if err := s.StartRun(ctx, a.RunID, time.Now().Add(-time.Minute), "node-1"); err != nil {
				t.Fatal(err)
			}

			if _, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: c.end, EndedAt: time.Now(),
				Reason: "test"}); err != nil {
				t.Fatal(err)
			}
			var result *string
			if err := s.Pool().QueryRow(ctx, `SELECT result_json::text FROM jobs WHERE id = $1`,
				a.Job.ID).Scan(&result); err != nil {
				t.Fatal(err)
			}
			if got := deref(result); got != c.wantResult {
				t.Errorf("result %q, want %q", got, c.wantResult)
			}
		})
	}
}

// The first time stored for a run's container wait stays: a second call, as from a restarted
// dispatcher or a new leader, changes nothing. A run that has ended gets no time.
func TestRecordContainerWaitSetsOnce(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	first := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	run, err := s.GetRun(ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.ContainerWaitStartedAt != nil {
		t.Fatalf("new run has container wait start %v, want none", run.ContainerWaitStartedAt)
	}

	stored, err := s.RecordContainerWait(ctx, a.RunID, first)
	if err != nil {
		t.Fatal(err)
	}
	if !stored {
		t.Error("first call reports nothing stored, want stored")
	}
	stored, err = s.RecordContainerWait(ctx, a.RunID, first.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		t.Error("second call reports stored, want the first time kept")
	}
	run, err = s.GetRun(ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.ContainerWaitStartedAt == nil || !run.ContainerWaitStartedAt.Equal(first) {
		t.Errorf("container wait start %v after two calls, want the first call's %v", run.ContainerWaitStartedAt, first)
	}

	ended := admitOne(t, s, 1000, 3)
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: ended.RunID, Status: store.RunFailed, EndedAt: first}); err != nil {
		t.Fatal(err)
	}
	stored, err = s.RecordContainerWait(ctx, ended.RunID, first)
	if err != nil {
		t.Fatal(err)
	}
	if stored {
		t.Error("ended run: reports stored, want nothing stored")
	}
}
