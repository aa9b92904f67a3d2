package cron_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// TestEndedStartContextLetsTaskFinish: `schedulerd run` starts the service with the context
// that SIGTERM ends. A task running then must keep its context for the stop timeout, so
// that a rolling update does not cut it off and spend one of its attempts.
func TestEndedStartContextLetsTaskFinish(t *testing.T) {
	pool := pgtest.NewPool(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	started := make(chan context.Context, 1)
	release := make(chan struct{})
	outcomes := make(chan cron.Outcome, 1)
	svc, err := cron.NewService(pool, cron.Config{
		Tasks: []cron.Task{{Name: "slow", Schedule: "0 * * * *", MaxAttempts: 1,
			Run: func(ctx context.Context, _ time.Time) error {
				started <- ctx
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}},
		Now:         func() time.Time { return now },
		StopTimeout: time.Minute,
		OnFinished:  func(o cron.Outcome) { outcomes <- o },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stopCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		if err := svc.Stop(stopCtx); err != nil {
			t.Errorf("stop cron service: %v", err)
		}
	}()
	if _, err := svc.Tick(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	var taskCtx context.Context
	select {
	case taskCtx = <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the task did not start within 30 s")
	}

	cancel() // as SIGTERM does
	if err := taskCtx.Err(); err != nil {
		t.Errorf("task context ended with the start context (%v), want it live for the stop timeout", err)
	}
	close(release)
	select {
	case o := <-outcomes:
		if o.Err != nil {
			t.Errorf("task outcome %v, want success", o.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no outcome of the task within 30 s")
	}
}
