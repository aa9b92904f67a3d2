package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestNotifyStopsFirstThenAbort feeds two signals by hand: the first ends only the stop
// context, the second the abort context, each with a cause that names its signal.
func TestNotifyStopsFirstThenAbort(t *testing.T) {
	signals := make(chan os.Signal, 2)
	stop, abort, release := notifyStops(context.Background(), signals)
	defer release()

	signals <- os.Interrupt
	waitDone(t, stop, "stop after the first signal")
	if got, want := context.Cause(stop).Error(), "interrupt signal received"; got != want {
		t.Errorf("stop cause %q, want %q", got, want)
	}
	if abort.Err() != nil {
		t.Fatalf("abort ended after one signal: %v", context.Cause(abort))
	}

	signals <- syscall.SIGTERM
	waitDone(t, abort, "abort after the second signal")
	if got, want := context.Cause(abort).Error(), "second terminated signal received"; got != want {
		t.Errorf("abort cause %q, want %q", got, want)
	}
	if got, want := context.Cause(stop).Error(), "interrupt signal received"; got != want {
		t.Errorf("stop cause after the second signal %q, want %q", got, want)
	}
}

// TestNotifyStopsReleaseEndsBoth: without a signal, release ends both contexts.
func TestNotifyStopsReleaseEndsBoth(t *testing.T) {
	stop, abort, release := notifyStops(context.Background(), make(chan os.Signal))
	if stop.Err() != nil || abort.Err() != nil {
		t.Fatalf("contexts ended before release: stop %v, abort %v", stop.Err(), abort.Err())
	}

	release()

	waitDone(t, stop, "stop after release")
	waitDone(t, abort, "abort after release")
}

func waitDone(t *testing.T, ctx context.Context, description string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: context still running after 5 s", description)
	}
}
