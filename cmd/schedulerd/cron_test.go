package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/config"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

func TestCronRunPartitions(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}

	code, stdout, stderr := run(t, env, "cron", "run", "partitions", "-partition-months-ahead", "5")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	// The migration made three months ahead, so two more are created.
	if !strings.HasPrefix(stdout, "created 2 jobs partitions;") || !strings.HasSuffix(stdout, "runway 6 months\n") {
		t.Errorf("stdout %q, want 2 partitions created and a runway of 6 months", stdout)
	}
}

// seedEndedBudget creates project vision with a quota for the month two months before the
// current one, and returns the pool and that month's first day.
func seedEndedBudget(t *testing.T, url string) (*pgxpool.Pool, time.Time) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := store.New(pool)
	if _, err := s.UpsertProject(ctx, store.Project{ID: "vision", OrgID: "acme", K8sNamespace: "team-vision"}); err != nil {
		t.Fatal(err)
	}
	month := time.Now().UTC().AddDate(0, -2, 0)
	start := time.Date(month.Year(), month.Month(), 1, 0, 0, 0, 0, time.UTC)
	_, err = s.UpsertQuota(ctx, store.Quota{ProjectID: "vision", GPUHoursBudget: 10, MaxConcurrentJobs: 2,
		PriorityTier: 5, PeriodStart: start, PeriodEnd: start.AddDate(0, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return pool, start
}

func TestCronRunBudgets(t *testing.T) {
	url := pgtest.NewDatabase(t)
	_, start := seedEndedBudget(t, url)

	code, stdout, stderr := run(t, map[string]string{"SCHEDULERD_DATABASE_URL": url}, "cron", "run", "budgets")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	newStart := start.AddDate(0, 2, 0)
	want := "renewed vision: " + start.Format(time.DateOnly) + " to " + start.AddDate(0, 1, 0).Format(time.DateOnly) +
		", 0.00 GPU-hours used; now " + newStart.Format(time.DateOnly) + " to " + newStart.AddDate(0, 1, 0).Format(time.DateOnly) +
		"\nbudgets renewed: 1\n"
	if stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}

	code, _, stderr = run(t, map[string]string{"SCHEDULERD_DATABASE_URL": url}, "cron", "run", "budgets", "-dry-run")
	if code != 2 {
		t.Errorf("-dry-run: exit code %d, want 2", code)
	}
	if !strings.Contains(stderr, "-dry-run applies to the retention task only") {
		t.Errorf("-dry-run: stderr %q, want the reason", stderr)
	}
}

// TestCronServiceRenewsBudgets runs the budgets task through the cron service that
// `schedulerd run` builds, with the other tasks off.
func TestCronServiceRenewsBudgets(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pool, start := seedEndedBudget(t, url)
	ctx := context.Background()
	cfg, _, err := config.LoadOnly("run", commandSettings["run"], []string{"-cron-partitions", "off"},
		func(name string) string { return map[string]string{"SCHEDULERD_CRON_RETENTION": "off"}[name] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := newCronService(ctx, pool, newCronSettings(cfg), slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("stop cron service: %v", err)
		}
	}()

	firing := time.Now().UTC().Truncate(time.Hour).Add(5 * time.Minute)
	result, err := svc.Tick(ctx, firing)
	if err != nil {
		t.Fatal(err)
	}
	if result.Inserted != 1 {
		t.Fatalf("tick at %s inserted %d jobs, want the budgets task's 1", firing.Format(time.TimeOnly), result.Inserted)
	}
	want := start.AddDate(0, 2, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var periodStart time.Time
		if err := pool.QueryRow(ctx, `SELECT period_start FROM quotas WHERE project_id = 'vision'`).Scan(&periodStart); err != nil {
			t.Fatal(err)
		}
		if periodStart.Equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("period starts %s after 30 s, want %s", periodStart.Format(time.DateOnly), want.Format(time.DateOnly))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartCronAllOff(t *testing.T) {
	var logs strings.Builder
	env := &environment{getenv: func(string) string { return "" }, log: slog.New(slog.NewTextHandler(&logs, nil))}
	settings := cronSettings{partitionsSchedule: "off", retentionSchedule: "off", budgetsSchedule: "off"}

	// No database is needed: with every task off, nothing connects.
	stop, err := startCron(context.Background(), env, nil, settings, nil)
	if err != nil {
		t.Fatalf("start with every task off: %v, want no error", err)
	}
	stop()
	if !strings.Contains(logs.String(), "every cron task is off") {
		t.Errorf("log %q, want a warning that every cron task is off", logs.String())
	}
}

func TestCronRunUsage(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no task", []string{"cron", "run"}, "schedulerd cron: want: cron run partitions|retention|budgets"},
		{"unknown task", []string{"cron", "run", "vacuum"}, `schedulerd cron: unknown cron task "vacuum"`},
		{"bad months", []string{"cron", "run", "partitions", "-partition-months-ahead", "x"},
			`schedulerd: invalid -partition-months-ahead (env SCHEDULERD_PARTITION_MONTHS_AHEAD): want 1 to 120`},
		{"months beyond 120", []string{"cron", "run", "partitions", "-partition-months-ahead", "121"},
			"schedulerd: invalid -partition-months-ahead (env SCHEDULERD_PARTITION_MONTHS_AHEAD): want 1 to 120 " +
				`(0 leaves each month without a partition until the task runs in it), got "121"` + "\n"},
		{"negative months", []string{"cron", "run", "partitions", "-partition-months-ahead", "-1"},
			"schedulerd: invalid -partition-months-ahead (env SCHEDULERD_PARTITION_MONTHS_AHEAD): want 1 to 120 " +
				`(0 leaves each month without a partition until the task runs in it), got "-1"` + "\n"},
		{"no month ahead", []string{"cron", "run", "partitions", "-partition-months-ahead", "0"},
			"schedulerd: invalid -partition-months-ahead (env SCHEDULERD_PARTITION_MONTHS_AHEAD): want 1 to 120 " +
				`(0 leaves each month without a partition until the task runs in it), got "0"` + "\n"},
		{"bad direction", []string{"cron", "run", "retention", "-retention-best-metric", "loss", "-retention-best-direction", "up"},
			`schedulerd: invalid -retention-best-direction (env SCHEDULERD_RETENTION_BEST_DIRECTION): want one of min, max, got "up"` + "\n"},
		{"batch above S3's maximum", []string{"cron", "run", "retention", "-retention-batch", "5000"},
			"schedulerd: invalid -retention-batch (env SCHEDULERD_RETENTION_BATCH): want 1 to 1000 objects per " +
				`DeleteObjects request (S3's maximum), got "5000"` + "\n"},
		{"empty batch", []string{"cron", "run", "retention", "-retention-batch", "0"},
			"schedulerd: invalid -retention-batch (env SCHEDULERD_RETENTION_BATCH): want 1 to 1000 objects per " +
				`DeleteObjects request (S3's maximum), got "0"` + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, c.want) {
				t.Errorf("stderr %q, want prefix %q", stderr, c.want)
			}
		})
	}
}
