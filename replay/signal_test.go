package replay_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// TestSecondSignalStopsPartialReport runs `schedulerd replay` as a process, with no daemon,
// and sends it SIGINT while it waits to submit its fourth task. The test holds a lock on
// job_idempotency_keys, so the partial report's first read waits. A second SIGINT must
// end that wait: the process exits 1 within 5 s, names the second signal and writes no
// report. Without it, the report would wait for its 20 s timeout.
func TestSecondSignalStopsPartialReport(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := storeFor(t, url)
	bin := daemontest.BuildBinary(t)
	nodes, tasks := writeStopTrace(t)
	reportDir := filepath.Join(t.TempDir(), "report")
	stdoutPath, stderrPath := filepath.Join(t.TempDir(), "stdout"), filepath.Join(t.TempDir(), "stderr")
	cmd := startReplayProcess(t, bin, url, stdoutPath, stderrPath, "-nodes", nodes, "-tasks", tasks,
		"-speedup", "1", "-load", "1", "-max-concurrent", "100", "-report-dir", reportDir, "-timeout", "10m")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	waitForCount(t, s, `SELECT count(*) FROM job_idempotency_keys`, 3, exited)
	lockIdempotencyKeys(t, s)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitForLockWait(t, s, exited)
	second := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	select {
	case exitErr = <-exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("replay still running 5 s after the second SIGINT; stderr:\n%s", readFile(t, stderrPath))
	}
	t.Logf("replay exited %s after the second SIGINT", time.Since(second).Round(time.Millisecond))

	var exit *exec.ExitError
	if !errors.As(exitErr, &exit) || exit.ExitCode() != 1 {
		t.Errorf("replay exited with %v, want exit code 1", exitErr)
	}
	wantLine := "schedulerd replay: interrupted (interrupt signal received) while submitting trace tasks: " +
		"context canceled; stopped writing the partial report: second interrupt signal received"
	stderr := readFile(t, stderrPath)
	if !strings.Contains("\n"+stderr, "\n"+wantLine+"\n") {
		t.Errorf("stderr lacks the line %q:\n%s", wantLine, stderr)
	}
	if stdout := readFile(t, stdoutPath); strings.Contains(stdout, "report written") {
		t.Errorf("stdout announces a report:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(reportDir, report.ReportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("report file: %v, want it not to exist", err)
	}
}

// TestFirstStopEndsTimedOutPartialReport gives a replay a timeout that has passed before it
// starts, so that no stop from the caller has ended it. With job_idempotency_keys locked,
// its partial report waits. Cancelling the caller's context must then end the report: Run
// returns within 5 s, without a path, and names both causes.
func TestFirstStopEndsTimedOutPartialReport(t *testing.T) {
	s := store.New(pgtest.NewPool(t))
	nodes, tasks := writeStopTrace(t)
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1, Load: 1,
		ReportDir: t.TempDir(), Timeout: time.Nanosecond}
	r, err := replay.New(cfg, s, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lockIdempotencyKeys(t, s)

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan runResult, 1)
	go func() {
		path, err := r.Run(runCtx)
		done <- runResult{path, err}
	}()
	waitForLockWait(t, s, done)
	cancel(errors.New("the test stopped it"))
	var got runResult
	select {
	case got = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run still running 5 s after its context ended")
	}

	if got.path != "" {
		t.Errorf("Run returned the report path %q, want none", got.path)
	}
	wantPrefix := "reached its timeout of 1ns while creating the trace's nodes: "
	if got.err == nil || !strings.HasPrefix(got.err.Error(), wantPrefix) {
		t.Errorf("Run returned %v, want it to start with %q", got.err, wantPrefix)
	}
	wantSuffix := "; stopped writing the partial report: the test stopped it"
	if got.err == nil || !strings.HasSuffix(got.err.Error(), wantSuffix) {
		t.Errorf("Run returned %v, want it to end with %q", got.err, wantSuffix)
	}
	if !errors.Is(got.err, context.DeadlineExceeded) {
		t.Errorf("Run returned %v, want an error that wraps context.DeadlineExceeded", got.err)
	}
}

// waitForLockWait waits until a session other than the test's waits for a lock in a query
// of job_idempotency_keys, which the partial report reads first.
func waitForLockWait[T any](t *testing.T, s *store.Store, exited <-chan T) {
	t.Helper()
	waitForCount(t, s, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
		AND query LIKE '%FROM job_idempotency_keys%' AND pid <> pg_backend_pid()`, 1, exited)
}

// startReplayProcess starts `schedulerd replay` with args on the database at url and the
// test cluster, its output going to the two files. The test's cleanup kills it if it
// still runs.
func startReplayProcess(t *testing.T, bin, url, stdoutPath, stderrPath string, args ...string) *exec.Cmd {
	t.Helper()
	stdout, err := os.Create(stdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdout.Close() })
	stderr, err := os.Create(stderrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stderr.Close() })

	cmd := exec.Command(bin, append([]string{"replay"}, args...)...)
	cmd.Env = append(os.Environ(), "SCHEDULERD_DATABASE_URL="+url,
		"SCHEDULERD_KUBECONFIG="+daemontest.Kube.Kubeconfig)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start schedulerd replay: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd
}

// waitForCount waits up to two minutes until the query's count is want. It fails the test
// if the replay ends first.
func waitForCount[T any](t *testing.T, s *store.Store, query string, want int, exited <-chan T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n int
		if err := s.Pool().QueryRow(context.Background(), query).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("count %d after 2 minutes, want %d: %s", n, want, query)
		}
		select {
		case result := <-exited:
			t.Fatalf("replay ended (%+v) before the count %d reached %d: %s", result, n, want, query)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// lockIdempotencyKeys holds job_idempotency_keys locked until the test ends, so that the
// partial report's first read waits.
func lockIdempotencyKeys(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	lock, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Rollback(ctx) })
	if _, err := lock.Exec(ctx, `LOCK TABLE job_idempotency_keys IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
}
