package replay

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStopReasonTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeoutCause(context.Background(), time.Nanosecond, timeoutError{2 * time.Hour})
	defer cancel()
	<-ctx.Done()

	if got, want := stopReason(ctx), "reached its timeout of 2h0m0s"; got != want {
		t.Errorf("stop reason %q, want %q", got, want)
	}
}

// TestStopReasonSignal: the cause that signal.NotifyContext gives, here set by hand, names
// the signal in the reason.
func TestStopReasonSignal(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("interrupt signal received"))

	if got, want := stopReason(ctx), "interrupted (interrupt signal received)"; got != want {
		t.Errorf("stop reason %q, want %q", got, want)
	}
}
