package store_test

import (
	"context"
	"errors"
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
