package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// A stop keeps the run live with the first end requested, and a stop of an ended run is
// stale.
func TestRequestStop(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	run, err := s.GetRun(ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}

	cancel := store.RunEnd{RunID: run.ID, Status: store.RunCancelled, Reason: "job paused"}
	if err := s.RequestStop(ctx, cancel, time.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := store.RunEnd{RunID: run.ID, Status: store.RunFailed, Reason: "DeadlineExceeded", Retryable: true}
	if err := s.RequestStop(ctx, deadline, time.Now()); err != nil {
		t.Fatalf("second stop: %v, want it accepted and ignored", err)
	}

	got, err := s.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != run.Status {
		t.Errorf("run %s after the stop request, want it still %s", got.Status, run.Status)
	}
	stop, ok := got.StopEnd()
	if !ok {
		t.Fatal("StopEnd reports no stop")
	}
	if stop.Status != store.RunCancelled || stop.Reason != "job paused" || stop.Retryable {
		t.Errorf("stop %+v, want the first one: cancelled, job paused, not retryable", stop)
	}

	stop.EndedAt = time.Now()
	if _, err := s.EndRun(ctx, stop); err != nil {
		t.Fatal(err)
	}
	if err := s.RequestStop(ctx, cancel, time.Now()); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("stop of an ended run: %v, want ErrStaleStatus", err)
	}
}

// A run that fails while its job is paused counts its attempt, and with none left the job
// fails: resuming it would run it past max_attempts.
func TestFailedRunOfPausedJob(t *testing.T) {
	for _, c := range []struct {
		maxAttempts int
		want        store.JobStatus
	}{
		{1, store.JobFailed},
		{3, store.JobPaused},
	} {
		t.Run(fmt.Sprintf("%d attempts", c.maxAttempts), func(t *testing.T) {
			s := setup(t)
			ctx := context.Background()
			a := admitOne(t, s, 1000, c.maxAttempts)
			if _, err := s.SetJobStatus(ctx, a.Job, store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
				t.Fatal(err)
			}

			result, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunFailed, EndedAt: time.Now(),
				Retryable: true, Reason: "DeadlineExceeded: ran past max_runtime_seconds"})
			if err != nil {
				t.Fatal(err)
			}

			if result.JobStatus != c.want {
				t.Errorf("job %s, want %s", result.JobStatus, c.want)
			}
			job, err := s.GetJob(ctx, a.Job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if job.Attempts != 1 {
				t.Errorf("%d attempts used, want the failed run's 1", job.Attempts)
			}
		})
	}
}

// A drain leaves a pending run that the dispatcher is stopping to end with its recorded stop.
func TestDrainLeavesStoppingRun(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	stop := store.RunEnd{RunID: a.RunID, Status: store.RunCancelled, Reason: "job paused"}
	if err := s.RequestStop(ctx, stop, time.Now()); err != nil {
		t.Fatal(err)
	}

	result, err := s.DrainQueue(ctx, "vision", time.Now(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	if len(result.Requeued) != 0 {
		t.Errorf("drain requeued %d runs, want none: the stopping run ends as its stop says", len(result.Requeued))
	}
	run, err := s.GetRun(ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != store.RunPending {
		t.Errorf("run %s after the drain, want still pending", run.Status)
	}
}
