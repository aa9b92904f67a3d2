package cron_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/pgtest"
)

func TestTickRetriesFailedInsert(t *testing.T) {
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svc, err := cron.NewService(pool, cron.Config{Tasks: []cron.Task{
		{Name: "hourly", Schedule: "0 * * * *", Run: func(context.Context, time.Time) error { return nil }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Tick(context.Background(), start); err != nil {
		t.Fatal(err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := svc.Tick(cancelled, start.Add(time.Hour)); err == nil {
		t.Fatal("tick with a cancelled context succeeded, want the insert error")
	}

	result, err := svc.Tick(context.Background(), start.Add(time.Hour+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if result.Inserted != 1 || result.Skipped != 0 {
		t.Errorf("retry inserted %d and skipped %d, want 1 and 0", result.Inserted, result.Skipped)
	}
}

func TestTickSkipsLateFiring(t *testing.T) {
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svc, err := cron.NewService(pool, cron.Config{
		MaxLateness: 10 * time.Minute,
		Tasks: []cron.Task{
			{Name: "hourly", Schedule: "0 * * * *", Run: func(context.Context, time.Time) error { return nil }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Tick(context.Background(), start); err != nil {
		t.Fatal(err)
	}

	// Three hours later: two firings passed over, the latest 30 minutes late.
	result, err := svc.Tick(context.Background(), start.Add(3*time.Hour+30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if result.Inserted != 0 || result.Skipped != 3 {
		t.Errorf("inserted %d and skipped %d, want 0 and 3", result.Inserted, result.Skipped)
	}
}

func TestConfigErrors(t *testing.T) {
	noop := func(context.Context, time.Time) error { return nil }
	cases := []struct {
		name  string
		tasks []cron.Task
	}{
		{"no tasks", nil},
		{"bad name", []cron.Task{{Name: "Bad Name", Schedule: "0 * * * *", Run: noop}}},
		{"duplicate", []cron.Task{{Name: "a", Schedule: "0 * * * *", Run: noop}, {Name: "a", Schedule: "0 * * * *", Run: noop}}},
		{"no run", []cron.Task{{Name: "a", Schedule: "0 * * * *"}}},
		{"bad schedule", []cron.Task{{Name: "a", Schedule: "every day", Run: noop}}},
	}
	pool := pgtest.NewPool(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := cron.NewService(pool, cron.Config{Tasks: c.tasks}); err == nil {
				t.Error("NewService succeeded, want an error")
			}
		})
	}
}
