package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// submitWithPreemptions queues a 1-GPU job with maxPreemptions on a cluster with A10s.
func submitWithPreemptions(t *testing.T, s *store.Store, maxPreemptions int) store.Job {
	t.Helper()
	ctx := context.Background()
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	sub := submission("")
	sub.GPUMilli, sub.MaxPreemptions = 1000, maxPreemptions
	job, err := s.SubmitJob(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// admitNext admits the first queued job on A10 and returns its run.
func admitNext(t *testing.T, s *store.Store) store.Admission {
	t.Helper()
	admissions, err := s.Dequeue(context.Background(), store.CandidateWindow{Limit: 10},
		func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
			if len(snap.Candidates) == 0 {
				return nil, nil
			}
			return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 1}}, nil
		})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("dequeue: %d admissions, err %v; want 1", len(admissions), err)
	}
	return admissions[0]
}

// preemptTimes admits the job and ends its run as evicted, n times over, and returns the
// result of the last end.
func preemptTimes(t *testing.T, s *store.Store, n int) store.RunEndResult {
	t.Helper()
	var result store.RunEndResult
	for range n {
		run := admitNext(t, s)
		var err error
		result, err = s.EndRun(context.Background(), store.RunEnd{RunID: run.RunID, Status: store.RunPreempted,
			EndedAt: time.Now(), Reason: "Evicted"})
		if err != nil {
			t.Fatal(err)
		}
	}
	return result
}

// A job preempted one time fewer than its max_preemptions goes back to the queue with its
// preemptions counted and no attempt used.
func TestPreemptionBelowLimitRequeues(t *testing.T) {
	s := setup(t)
	job := submitWithPreemptions(t, s, 3)

	result := preemptTimes(t, s, 2)

	if result.JobStatus != store.JobQueued {
		t.Errorf("job status after the run's end %s, want queued", result.JobStatus)
	}
	if result.PreemptionLimitReached {
		t.Error("PreemptionLimitReached is true one preemption below the limit")
	}
	got, err := s.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Preemptions != 2 || got.MaxPreemptions != 3 {
		t.Errorf("preemptions %d of %d, want 2 of 3", got.Preemptions, got.MaxPreemptions)
	}
	if got.Attempts != 0 {
		t.Errorf("attempts %d, want 0: a preemption uses no attempt", got.Attempts)
	}
	if got.CompletedAt != nil {
		t.Errorf("completed_at %v on a requeued job, want none", *got.CompletedAt)
	}
	if reason := deref(got.WaitReason); reason != "requeued after preemption: Evicted" {
		t.Errorf("wait reason %q, want %q", reason, "requeued after preemption: Evicted")
	}
}

// The preemption that brings a job to its max_preemptions fails the job, with the count
// and the last reason in its error, and gives back what the run held.
func TestPreemptionLimitFailsJob(t *testing.T) {
	cases := []struct {
		name           string
		maxPreemptions int
		wantError      string
	}{
		{"first preemption with limit 1", 1, "preempted 1 times (max_preemptions 1): Evicted"},
		{"third preemption with limit 3", 3, "preempted 3 times (max_preemptions 3): Evicted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := setup(t)
			ctx := context.Background()
			job := submitWithPreemptions(t, s, c.maxPreemptions)

			result := preemptTimes(t, s, c.maxPreemptions)

			if result.JobStatus != store.JobFailed {
				t.Errorf("job status after the run's end %s, want failed", result.JobStatus)
			}
			if !result.PreemptionLimitReached {
				t.Error("PreemptionLimitReached is false at the limit")
			}
			got, err := s.GetJob(ctx, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != store.JobFailed {
				t.Errorf("stored status %s, want failed", got.Status)
			}
			if got.Preemptions != c.maxPreemptions {
				t.Errorf("preemptions %d, want %d", got.Preemptions, c.maxPreemptions)
			}
			if msg := deref(got.ErrorMessage); msg != c.wantError {
				t.Errorf("error %q, want %q", msg, c.wantError)
			}
			if got.CompletedAt == nil {
				t.Error("completed_at not set on the failed job")
			}
			if got.WaitReason != nil {
				t.Errorf("wait reason %q on a failed job, want none", *got.WaitReason)
			}
			q, err := s.GetQuotaState(ctx, "vision")
			if err != nil {
				t.Fatal(err)
			}
			if q.CurrentConcurrent != 0 || q.GPUHoursReserved != 0 {
				t.Errorf("quota holds %d jobs and %v GPU-hours, want none", q.CurrentConcurrent, q.GPUHoursReserved)
			}
		})
	}
}

// A paused job whose run ends preempted stays paused, and the preemption is not counted,
// because it did not send the job back to the queue.
func TestPausedJobPreemptionNotCounted(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := submitWithPreemptions(t, s, 2)
	preemptTimes(t, s, 1)
	run := admitNext(t, s)
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}

	result, err := s.EndRun(ctx, store.RunEnd{RunID: run.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "Evicted"})
	if err != nil {
		t.Fatal(err)
	}

	if result.JobStatus != store.JobPaused || result.PreemptionLimitReached {
		t.Errorf("job %s, limit reached %v; want paused, not reached", result.JobStatus, result.PreemptionLimitReached)
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Preemptions != 1 {
		t.Errorf("preemptions %d, want 1: the paused job's preemption is not counted", got.Preemptions)
	}
}

// recordCheckpoint records a checkpoint of the live run at uri, with step unless it is nil.
func recordCheckpoint(t *testing.T, s *store.Store, run store.Admission, uri string, step *int64) {
	t.Helper()
	_, err := s.RecordArtifact(context.Background(), store.NewArtifact{RunID: run.RunID, Type: "checkpoint",
		URI: uri, Checksum: strings.Repeat("ab", 32), SizeBytes: 10, Step: step})
	if err != nil {
		t.Fatalf("record checkpoint %s: %v", uri, err)
	}
}

// preemptions returns the job's stored preemption count.
func preemptions(t *testing.T, s *store.Store, job store.Job) int {
	t.Helper()
	got, err := s.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.Preemptions
}

// A job one preemption below its max_preemptions that records a checkpoint has made
// progress: its count goes back to 0, so its next preemption requeues it with a count of 1
// instead of failing it.
func TestCheckpointResetsPreemptions(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := submitWithPreemptions(t, s, 3)
	preemptTimes(t, s, 2)
	run := admitNext(t, s)

	step := int64(100)
	recordCheckpoint(t, s, run, "s3://ckpt/job/step-100", &step)
	if got := preemptions(t, s, job); got != 0 {
		t.Errorf("preemptions %d after the checkpoint, want 0", got)
	}

	result, err := s.EndRun(ctx, store.RunEnd{RunID: run.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "Evicted"})
	if err != nil {
		t.Fatal(err)
	}
	if result.JobStatus != store.JobQueued {
		t.Errorf("job status after the run's end %s, want queued", result.JobStatus)
	}
	if result.PreemptionLimitReached {
		t.Error("PreemptionLimitReached is true after a checkpoint reset the count")
	}
	if got := preemptions(t, s, job); got != 1 {
		t.Errorf("preemptions %d after the preemption that followed the checkpoint, want 1", got)
	}
}

// A checkpoint is progress only if its step is above every step the job's runs recorded
// before. A run that saves again at the step it resumed from keeps the count. A checkpoint
// without a step cannot be compared and resets the count.
func TestCheckpointWithoutProgressKeepsPreemptions(t *testing.T) {
	s := setup(t)
	job := submitWithPreemptions(t, s, 5)
	first := admitNext(t, s)
	step100 := int64(100)
	recordCheckpoint(t, s, first, "s3://ckpt/job/run-1/step-100", &step100)
	if _, err := s.EndRun(context.Background(), store.RunEnd{RunID: first.RunID, Status: store.RunPreempted,
		EndedAt: time.Now(), Reason: "Evicted"}); err != nil {
		t.Fatal(err)
	}
	second := admitNext(t, s)

	step50 := int64(50)
	recordCheckpoint(t, s, second, "s3://ckpt/job/run-2/step-50", &step50)
	if got := preemptions(t, s, job); got != 1 {
		t.Errorf("preemptions %d after a checkpoint at step 50 below run 1's 100, want 1", got)
	}
	recordCheckpoint(t, s, second, "s3://ckpt/job/run-2/step-100", &step100)
	if got := preemptions(t, s, job); got != 1 {
		t.Errorf("preemptions %d after a checkpoint at run 1's step 100 again, want 1", got)
	}
	step101 := int64(101)
	recordCheckpoint(t, s, second, "s3://ckpt/job/run-2/step-101", &step101)
	if got := preemptions(t, s, job); got != 0 {
		t.Errorf("preemptions %d after a checkpoint at step 101, want 0", got)
	}

	if _, err := s.EndRun(context.Background(), store.RunEnd{RunID: second.RunID, Status: store.RunPreempted,
		EndedAt: time.Now(), Reason: "Evicted"}); err != nil {
		t.Fatal(err)
	}
	third := admitNext(t, s)
	recordCheckpoint(t, s, third, "s3://ckpt/job/run-3/latest", nil)
	if got := preemptions(t, s, job); got != 0 {
		t.Errorf("preemptions %d after a checkpoint without a step, want 0", got)
	}
}

// A checkpoint that moves a rotating slot to a higher step is progress too, and its
// retry is not.
func TestCheckpointSlotAgainResetsPreemptions(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := submitWithPreemptions(t, s, 5)
	first := admitNext(t, s)
	step := int64(100)
	recordCheckpoint(t, s, first, "s3://ckpt/job/slot-a", &step)
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: first.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: "Evicted"}); err != nil {
		t.Fatal(err)
	}
	second := admitNext(t, s)
	recordCheckpoint(t, s, second, "s3://ckpt/job/slot-a", &step)
	if got := preemptions(t, s, job); got != 1 {
		t.Errorf("preemptions %d after slot A at run 1's step again, want 1", got)
	}

	higher := int64(200)
	recordCheckpoint(t, s, second, "s3://ckpt/job/slot-a", &higher)
	if got := preemptions(t, s, job); got != 0 {
		t.Errorf("preemptions %d after slot A moved to step 200, want 0", got)
	}
}

// A preemption the job did not cause (a queue drain, a lost node) requeues the job
// without raising its count, also at a max_preemptions of 1, which the first counted
// preemption reaches.
func TestNotCountedPreemptionRequeues(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := submitWithPreemptions(t, s, 1)
	run := admitNext(t, s)

	result, err := s.EndRun(ctx, store.RunEnd{RunID: run.RunID, Status: store.RunPreempted, EndedAt: time.Now(),
		Reason: store.DrainReason, NotCounted: true})
	if err != nil {
		t.Fatal(err)
	}

	if result.JobStatus != store.JobQueued {
		t.Errorf("job status after the run's end %s, want queued", result.JobStatus)
	}
	if result.PreemptionLimitReached {
		t.Error("PreemptionLimitReached is true for a preemption that does not count")
	}
	got, err := s.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Preemptions != 0 {
		t.Errorf("preemptions %d, want 0", got.Preemptions)
	}
	if got.CompletedAt != nil {
		t.Errorf("completed_at %v on a requeued job, want none", *got.CompletedAt)
	}
	want := "requeued after preemption: " + store.DrainReason
	if reason := deref(got.WaitReason); reason != want {
		t.Errorf("wait reason %q, want %q", reason, want)
	}
}
