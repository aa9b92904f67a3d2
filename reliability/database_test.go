//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// databaseOutage is how long PostgreSQL stays down. It outlasts the daemon's poll and
// resync intervals, and the Lease (15 s) of a leader killed at its start.
const databaseOutage = 25 * time.Second

// TestDatabaseRestartAndConnectionCut runs two daemons and stops PostgreSQL under them as a
// crash does (pg_ctl -m immediate) for 25 s while jobs arrive and end. The leader is
// killed at the start of the outage, so the standby takes the Lease while the database is
// away. Then every database connection of the daemons is cut with pg_terminate_backend.
// The standby must keep running, reconnect with back-off and bring every job to one
// completed run.
func TestDatabaseRestartAndConnectionCut(t *testing.T) {
	sc := newScenario(t, 4)
	model := daemontest.GPUNodes(t, 4, 8)
	// Each job reserves one GPU-hour, so the budget, not the 32 GPUs, bounds admission and
	// the budget invariant is tested where it binds.
	project := daemontest.CreateProject(t, sc.store, "vision", 24, 1000)
	sc.requireDurableCommits()
	replicas := []*daemontest.Process{sc.daemon("replica-0"), sc.daemon("replica-1")}
	for _, d := range replicas {
		d.Start()
	}
	leader := replicas[sc.waitLeader(replicas, "")]

	const jobs = 150
	submitted := make(chan error, 1)
	go func() { submitted <- sc.submitSteadily(project.ID, model, jobs, 100*time.Millisecond) }()

	time.Sleep(time.Duration(3000+sc.rng.IntN(3000)) * time.Millisecond)
	restarted := make(chan error, 1)
	start := time.Now()
	go func() { restarted <- pgtest.Shared(t).Restart(context.Background(), "immediate", databaseOutage) }()
	time.Sleep(time.Second)
	leader.Kill()
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL stopped and started again after %s; the leader was killed 1 s into it",
		time.Since(start).Round(time.Millisecond))
	standby := replicas[sc.waitLeader(replicas, sc.identity(leader))]

	time.Sleep(time.Duration(3000+sc.rng.IntN(3000)) * time.Millisecond)
	cut := sc.count(`SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1`, daemonAppName)
	t.Logf("cut %d connections of the daemons", cut)
	if cut == 0 {
		t.Errorf("no daemon connection found to cut, want at least one (seed %d)", sc.seed)
	}

	if err := <-submitted; err != nil {
		t.Fatalf("%v (seed %d)", err, sc.seed)
	}
	sc.waitFor(2*time.Minute, "every job completed", func() bool {
		return sc.count(`SELECT count(*) FROM jobs WHERE status = 'completed'`) == jobs
	})
	select {
	case <-standby.Exited():
		t.Errorf("the new leader exited: %v, want it to outlast the database outage (seed %d)",
			standby.ExitErr(), sc.seed)
	default:
	}
	if n := sc.count(`SELECT count(*) FROM runs`); n != jobs {
		t.Errorf("%d runs for %d jobs, want one each (seed %d)", n, jobs, sc.seed)
	}
	requireInvariants(t, sc.seed, sc.system())
}

// submitSteadily submits n short one-GPU jobs, one every interval. Each has an
// idempotency key, so a submission retried after the database went away mid-commit stores
// the job once.
func (sc *scenario) submitSteadily(project, model string, n int, interval time.Duration) error {
	for i := range n {
		spec := oneGPU(model, &jobspec.Simulation{RunSeconds: float64(2 + i%5)})
		sub := daemontest.NewSubmission(project, 50, spec)
		sub.IdempotencyKey = fmt.Sprintf("steady-%d", i)
		if err := sc.submitWithRetry(sub); err != nil {
			return err
		}
		time.Sleep(interval)
	}
	return nil
}

// submitWithRetry submits until the store accepts the job or reports it stored already,
// for up to a minute.
func (sc *scenario) submitWithRetry(sub store.Submission) error {
	deadline := time.Now().Add(time.Minute)
	var err error
	for time.Now().Before(deadline) {
		_, err = sc.store.SubmitJob(context.Background(), sub)
		var duplicate *store.DuplicateKeyError
		if err == nil || errors.As(err, &duplicate) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("submit job %s: %w", sub.IdempotencyKey, err)
}

// requireDurableCommits turns synchronous_commit back on for the scenario's database, and
// reconnects the scenario's store so that its connections use it too. The test server
// turns it off for speed (scripts/pg-up.sh), and then a crash of the server loses the last
// commits that it acknowledged, which no client can make up for.
func (sc *scenario) requireDurableCommits() {
	sc.t.Helper()
	ctx := context.Background()
	var name string
	if err := sc.store.Pool().QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		sc.t.Fatal(err)
	}
	if _, err := sc.store.Pool().Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q SET synchronous_commit = on`, name)); err != nil {
		sc.t.Fatalf("turn on synchronous_commit: %v", err)
	}
	sc.store.Pool().Reset()
	var setting string
	if err := sc.store.Pool().QueryRow(ctx, `SHOW synchronous_commit`).Scan(&setting); err != nil || setting != "on" {
		sc.t.Fatalf("synchronous_commit is %q (error %v), want on", setting, err)
	}
}
