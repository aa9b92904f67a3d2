package replay_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
)

// runResult is what a replay's Run returned.
type runResult struct {
	path string
	err  error
}

// startWaitingReplay starts a replay of three one-GPU tasks that arrive within 2 s: one
// completes after 1 s, one fails after 1 s and one runs for 100,000 s. Once the database
// holds them in those states, the replay is at its last step, where it counts the active
// jobs every 500 ms. The daemon then stops, so that the database keeps the states that the
// report reads. The returned channel receives Run's result.
func startWaitingReplay(t *testing.T) (*daemontest.Harness, replay.Config, <-chan runResult) {
	t.Helper()
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeStopTasks(t, []traceTask{
		{"Succeeded", 0, 1}, {"Failed", 1, 1}, {"Running", 2, 100_000},
	})
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1, Load: 1,
		MaxConcurrent: 100, ReportDir: t.TempDir(), Timeout: 10 * time.Minute}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan runResult, 1)
	go func() {
		path, err := r.Run(context.Background())
		done <- runResult{path, err}
	}()

	waitForJobCounts(t, h.Store, map[string]int{"completed": 1, "failed": 1, "running": 1}, done)
	if err := h.Shutdown(); err != nil {
		t.Fatalf("daemon: %v", err)
	}
	return h, cfg, done
}

// renameTable renames a table under the replay, so that its next query of the table fails
// with SQLSTATE 42P01 (undefined table).
func renameTable(t *testing.T, h *daemontest.Harness, table string) {
	t.Helper()
	if _, err := h.Store.Pool().Exec(context.Background(),
		"ALTER TABLE "+table+" RENAME TO "+table+"_renamed"); err != nil {
		t.Fatalf("rename table %s: %v", table, err)
	}
}

// awaitRun waits up to two minutes for Run's result.
func awaitRun(t *testing.T, done <-chan runResult) runResult {
	t.Helper()
	select {
	case got := <-done:
		return got
	case <-time.After(2 * time.Minute):
		t.Fatal("replay still running 2 minutes after its database failed")
		return runResult{}
	}
}

// TestFailedReplayWritesPartialReport breaks the database under a replay that waits for
// its jobs: the job_queue table that its count of active jobs reads disappears, while the
// tables of the report stay. Run returns the database error and still writes the report,
// marked partial with that error as the reason.
func TestFailedReplayWritesPartialReport(t *testing.T) {
	h, cfg, done := startWaitingReplay(t)

	renameTable(t, h, "job_queue")
	got := awaitRun(t, done)

	var pgErr *pgconn.PgError
	if !errors.As(got.err, &pgErr) || pgErr.Code != "42P01" {
		t.Errorf("Run returned %v, want an error that wraps the database's 42P01 (undefined table)", got.err)
	}
	dbErr := `count active jobs: ERROR: relation "job_queue" does not exist (SQLSTATE 42P01)`
	if want := "failed while waiting for the submitted jobs to end: " + dbErr; got.err == nil || got.err.Error() != want {
		t.Errorf("Run returned %v, want %q", got.err, want)
	}
	text := readPartialReport(t, cfg.ReportDir, got.path)
	for _, line := range []string{
		"- Reason: failed: " + dbErr,
		"- Step: waiting for the submitted jobs to end",
		"- Trace tasks submitted: 3 of 3, and 0 not submitted",
		"| completed | 1 |",
		"| failed | 1 |",
		"| running | 1 |",
	} {
		if !strings.Contains(text, "\n"+line) {
			t.Errorf("report lacks the line %q:\n%s", line, text)
		}
	}
	assertNoTempFiles(t, cfg.ReportDir)
}

// TestFailedPartialReportReturnsBothErrors breaks a table that both the replay and its
// report read. Run writes no report and returns an error that wraps the replay's error
// and the report's.
func TestFailedPartialReportReturnsBothErrors(t *testing.T) {
	h, cfg, done := startWaitingReplay(t)

	renameTable(t, h, "jobs")
	got := awaitRun(t, done)

	if got.path != "" {
		t.Errorf("Run returned the report path %q, want none", got.path)
	}
	dbErr := `ERROR: relation "jobs" does not exist (SQLSTATE 42P01)`
	want := "failed while waiting for the submitted jobs to end: count active jobs: " + dbErr +
		"; the partial report failed too: gather report figures: " + dbErr
	if got.err == nil || got.err.Error() != want {
		t.Errorf("Run returned %v, want %q", got.err, want)
	}
	joined, ok := got.err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Run returned %T, want an error that wraps two errors", got.err)
	}
	wrapped := joined.Unwrap()
	if len(wrapped) != 2 {
		t.Fatalf("Run's error wraps %d errors, want the replay's and the report's", len(wrapped))
	}
	for i, err := range wrapped {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
			t.Errorf("wrapped error %d is %v, want one that wraps the database's 42P01", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.ReportDir, report.ReportFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("report file: %v, want it not to exist", err)
	}
	assertNoTempFiles(t, cfg.ReportDir)
}
