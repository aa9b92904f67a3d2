package cron_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/logtest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// execution is one call of a task's Run.
type execution struct {
	task        string
	scheduledAt time.Time
}

// recorder returns a Run function that reports each call on runs.
func recorder(name string, runs chan<- execution) func(context.Context, time.Time) error {
	return func(_ context.Context, scheduledAt time.Time) error {
		runs <- execution{task: name, scheduledAt: scheduledAt}
		return nil
	}
}

// startService starts a cron service whose clock stays at now, so that its own loop inserts
// nothing after its first tick at now, and stops it when the test ends.
func startService(t *testing.T, pool *pgxpool.Pool, cfg cron.Config, now time.Time) *cron.Service {
	t.Helper()
	cfg.Now = func() time.Time { return now }
	svc, err := cron.NewService(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := svc.Stop(ctx); err != nil {
			t.Errorf("stop cron service: %v", err)
		}
	})
	return svc
}

// waitFor polls condition until it holds or 30 seconds pass. It waits for River, which
// works jobs on its own goroutines, and decides nothing by itself.
func waitFor(t *testing.T, what string, condition func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := condition()
		if err != nil {
			t.Fatalf("wait for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30 s waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countJobs counts the cron task jobs in River's table in the given state.
func countJobs(pool *pgxpool.Pool, state string) (int, error) {
	var n int
	err := pool.QueryRow(context.Background(),
		"SELECT count(*) FROM river.river_job WHERE kind = $1 AND state = $2", cron.JobKind, state).Scan(&n)
	return n, err
}

func TestThreeReplicasRunEachFiringOnce(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC) // midnight in New York, DST ends
	runs := make(chan execution, 200)

	var replicas []*cron.Service
	for i := range 3 {
		cfg := cron.Config{
			ClientID: fmt.Sprintf("replica-%d", i),
			Tasks: []cron.Task{
				{Name: "every-five", Schedule: "*/5 * * * *", Run: recorder("every-five", runs)},
				{Name: "hourly", Schedule: "CRON_TZ=America/New_York 30 * * * *", Run: recorder("hourly", runs)},
			},
		}
		// The loops' clocks stay at 03:02:30, where no firing is due within MaxLateness, so
		// only the test's ticks insert.
		cfg.MaxLateness = time.Minute
		replicas = append(replicas, startService(t, pool, cfg, start.Add(-57*time.Minute-30*time.Second)))
	}

	// Four hours of real time, one tick a minute on every replica at once.
	var total cron.TickResult
	for minute := 0; minute <= 240; minute++ {
		now := start.Add(time.Duration(minute) * time.Minute)
		results := make([]cron.TickResult, len(replicas))
		var wg sync.WaitGroup
		for i, svc := range replicas {
			wg.Go(func() {
				var err error
				if results[i], err = svc.Tick(ctx, now); err != nil {
					t.Errorf("replica %d tick at %v: %v", i, now, err)
				}
			})
		}
		wg.Wait()
		for _, r := range results {
			total.Inserted += r.Inserted
			total.Duplicates += r.Duplicates
			total.Skipped += r.Skipped
		}
	}

	// every-five: 49 firings from 04:00 to 08:00 UTC. hourly at :30 New York time: 00:30
	// EDT, 01:30 EDT and 02:30 EST (07:30 UTC); the repeated 01:30 EST does not fire. Skipped
	// depends on whether a loop's first tick came before the test's first, so it is not
	// checked.
	const want = 49 + 3
	if total.Inserted != want || total.Duplicates != 2*want {
		t.Errorf("ticks inserted %d and found %d duplicates, want %d and %d",
			total.Inserted, total.Duplicates, want, 2*want)
	}

	waitFor(t, "every job completed", func() (bool, error) {
		n, err := countJobs(pool, "completed")
		return n >= want, err
	})
	close(runs)
	seen := make(map[execution]int)
	for r := range runs {
		seen[r]++
	}
	if len(seen) != want {
		t.Errorf("%d distinct firings ran, want %d", len(seen), want)
	}
	for r, n := range seen {
		if n != 1 {
			t.Errorf("%s at %v ran %d times, want once", r.task, r.scheduledAt, n)
		}
	}
	for _, hour := range []int{4, 5, 7} {
		at := time.Date(2026, 11, 1, hour, 30, 0, 0, time.UTC)
		if seen[execution{"hourly", at}] != 1 {
			t.Errorf("hourly firing at %v did not run", at)
		}
	}
	if repeated := time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC); seen[execution{"hourly", repeated}] != 0 {
		t.Errorf("hourly fired at %v, in the repeated hour", repeated)
	}
	if n, err := countJobs(pool, "completed"); err != nil || n != want {
		t.Errorf("%d completed jobs (error %v), want %d", n, err, want)
	}
}

func TestFailedRunRetriesAndRecords(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

	var mu sync.Mutex
	attempts := make(map[string]int)
	run := func(name string, failures int) func(context.Context, time.Time) error {
		return func(context.Context, time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[name]++
			if attempts[name] <= failures {
				return fmt.Errorf("%s failure %d", name, attempts[name])
			}
			return nil
		}
	}
	svc := startService(t, pool, cron.Config{Tasks: []cron.Task{
		{Name: "flaky", Schedule: "0 * * * *", Run: run("flaky", 1)},
		{Name: "broken", Schedule: "0 * * * *", MaxAttempts: 2, Run: run("broken", 99)},
	}}, start)

	if _, err := svc.Tick(ctx, start); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flaky completed and broken discarded", func() (bool, error) {
		done, err := countJobs(pool, "completed")
		if err != nil {
			return false, err
		}
		discarded, err := countJobs(pool, "discarded")
		return done == 1 && discarded == 1, err
	})

	flaky, ok, err := cron.ReadStatus(ctx, pool, "flaky")
	if err != nil || !ok {
		t.Fatalf("read flaky status: ok %v, error %v", ok, err)
	}
	if flaky.LastSuccessAt.IsZero() || flaky.ConsecutiveFailures != 0 || flaky.FailuresTotal != 1 {
		t.Errorf("flaky status %+v, want a success, 0 consecutive failures, 1 in total", flaky)
	}
	if flaky.LastError != "flaky failure 1" {
		t.Errorf("flaky last error %q, want %q", flaky.LastError, "flaky failure 1")
	}
	if !flaky.LastScheduledAt.Equal(start) {
		t.Errorf("flaky last scheduled at %v, want %v", flaky.LastScheduledAt, start)
	}

	broken, ok, err := cron.ReadStatus(ctx, pool, "broken")
	if err != nil || !ok {
		t.Fatalf("read broken status: ok %v, error %v", ok, err)
	}
	if !broken.LastSuccessAt.IsZero() || broken.ConsecutiveFailures != 2 || broken.FailuresTotal != 2 {
		t.Errorf("broken status %+v, want no success and 2 failures", broken)
	}
}

func TestCrashedRunIsRescued(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	runs := make(chan execution, 10)
	cfg := cron.Config{
		Tasks:       []cron.Task{{Name: "nightly", Schedule: "0 0 * * *", Timeout: time.Second, Run: recorder("nightly", runs)}},
		RescueAfter: 2 * time.Second,
		Now:         func() time.Time { return start },
	}

	// A replica that inserts the firing and dies while working it leaves a running job.
	crashed, err := cron.NewService(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crashed.Tick(ctx, start.AddDate(0, 0, 1)); err != nil {
		t.Fatal(err)
	}
	tag, err := pool.Exec(ctx, `
		UPDATE river.river_job SET state = 'running', attempt = 1,
		       attempted_at = now() - interval '1 hour', attempted_by = ARRAY['crashed-replica']
		WHERE kind = $1`, cron.JobKind)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("mark the job running: %d rows, error %v", tag.RowsAffected(), err)
	}

	startService(t, pool, cfg, start.AddDate(0, 0, 1).Add(time.Hour))
	select {
	case r := <-runs:
		if want := start.AddDate(0, 0, 1); !r.scheduledAt.Equal(want) {
			t.Errorf("rescued run scheduled at %v, want %v", r.scheduledAt, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the crashed run was not run again within 60 s")
	}
	waitFor(t, "the rescued job completed", func() (bool, error) {
		n, err := countJobs(pool, "completed")
		return n == 1, err
	})
}

func TestLoopInsertsOnRealClock(t *testing.T) {
	pool := pgtest.NewPool(t)
	runs := make(chan execution, 10)
	svc, err := cron.NewService(pool, cron.Config{Tasks: []cron.Task{
		{Name: "every-second", Schedule: "* * * * * *", Run: recorder("every-second", runs)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := svc.Stop(context.Background()); err != nil {
			t.Errorf("stop: %v", err)
		}
	}()

	var got []time.Time
	for len(got) < 2 {
		select {
		case r := <-runs:
			got = append(got, r.scheduledAt)
		case <-time.After(20 * time.Second):
			t.Fatalf("%d runs in 20 s, want 2", len(got))
		}
	}
	// Two workers may run them in either order, and a loop woken late on a busy machine
	// passes over a firing, so only distinct whole seconds are certain.
	if got[0].Equal(got[1]) {
		t.Errorf("both runs scheduled at %v, want two firings", got[0])
	}
	for _, at := range got {
		if at.Nanosecond() != 0 {
			t.Errorf("run scheduled at %v, want a whole second", at)
		}
	}
}

func TestRiverLogLinesHaveOneComponent(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	var logs logtest.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).
		With("component", "cron")

	// A task that fails once makes River log the failed attempt.
	var failed atomic.Bool
	svc := startService(t, pool, cron.Config{Logger: logger, Tasks: []cron.Task{
		{Name: "flaky", Schedule: "0 * * * *", Run: func(context.Context, time.Time) error {
			if failed.CompareAndSwap(false, true) {
				return errors.New("first attempt fails")
			}
			return nil
		}},
	}}, start)
	if _, err := svc.Tick(ctx, start); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "flaky completed", func() (bool, error) {
		done, err := countJobs(pool, "completed")
		return done == 1, err
	})

	riverLines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if n := strings.Count(line, `"component":`); n != 1 {
			t.Errorf("log line has %d component keys, want 1: %s", n, line)
		}
		if strings.Contains(line, `"library":"river"`) {
			riverLines++
		}
	}
	if riverLines == 0 {
		t.Errorf("no log line has library=river; logs:\n%s", logs.String())
	}
}
