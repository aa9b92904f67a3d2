package store_test

import (
	"context"
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
