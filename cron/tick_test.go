package cron

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
)

// TestTickCountsFailedInserts checks that a tick whose inserts fail for two tasks returns
// one error that counts them, lists them in task order and wraps each insert error.
func TestTickCountsFailedInserts(t *testing.T) {
	errFirst := errors.New("connection reset")
	errSecond := errors.New("statement timeout")
	insertErrs := map[string]error{"first": errFirst, "second": errSecond}
	insert := func(_ context.Context, args taskArgs, _ *river.InsertOpts) (bool, error) {
		return false, insertErrs[args.Task]
	}
	noop := func(context.Context, time.Time) error { return nil }
	tasks := []Task{
		{Name: "first", Schedule: "0 * * * *", Run: noop},
		{Name: "second", Schedule: "0 * * * *", Run: noop},
	}
	s, err := newScheduler(tasks, time.UTC, insert, time.Minute, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	now := time.Date(2026, 5, 1, 3, 0, 0, 0, time.UTC)
	result, wake, err := s.tick(context.Background(), now)
	want := "2 errors: " +
		"insert River job of cron task first scheduled at 2026-05-01T03:00:00Z: connection reset; " +
		"insert River job of cron task second scheduled at 2026-05-01T03:00:00Z: statement timeout"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, errFirst) {
		t.Error("errors.Is does not find the first task's insert error")
	}
	if !errors.Is(err, errSecond) {
		t.Error("errors.Is does not find the second task's insert error")
	}
	if result.Inserted != 0 {
		t.Errorf("inserted %d jobs, want 0", result.Inserted)
	}
	if want := now.Add(retryWait); !wake.Equal(want) {
		t.Errorf("wake at %s, want %s, after the retry wait", wake, want)
	}
}
