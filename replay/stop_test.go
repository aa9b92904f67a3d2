package replay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// writeStopTrace writes a trace of one 8-GPU node and five one-GPU tasks. At a speedup of
// 1, the first three arrive within 2 seconds: one completes after 1 s, one fails after 1 s
// and one runs for 100,000 s. The last two arrive 1,000,000 s later, so that a test stops
// the replay while it waits to submit them.
func writeStopTrace(t *testing.T) (string, string) {
	t.Helper()
	return writeStopTasks(t, []traceTask{
		{"Succeeded", 0, 1}, {"Failed", 1, 1}, {"Running", 2, 100_000},
		{"Succeeded", 1_000_000, 1}, {"Succeeded", 1_000_001, 1},
	})
}

// traceTask is one one-GPU task of writeStopTasks: its end phase, and its creation time and
// run length in trace seconds.
type traceTask struct {
	phase          string
	created, lasts int
}

// writeStopTasks writes a trace of one 8-GPU node and the tasks, and returns the node file and
// the task file.
func writeStopTasks(t *testing.T, tasks []traceTask) (string, string) {
	t.Helper()
	dir := t.TempDir()
	nodes := "sn,cpu_milli,memory_mib,gpu,model\nstoptest-node-0,32000,131072,8,STOPTEST\n"
	var rows strings.Builder
	rows.WriteString("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase," +
		"creation_time,deletion_time,scheduled_time\n")
	for i, task := range tasks {
		fmt.Fprintf(&rows, "stoptest-task-%02d,1000,1024,1,1000,STOPTEST,LS,%s,%d,%d,%d\n",
			i, task.phase, task.created, task.created+task.lasts, task.created)
	}
	nodesFile, tasksFile := filepath.Join(dir, "nodes.csv"), filepath.Join(dir, "tasks.csv")
	if err := os.WriteFile(nodesFile, []byte(nodes), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tasksFile, []byte(rows.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return nodesFile, tasksFile
}

// TestInterruptedReplayWritesPartialReport cancels a replay while it waits to submit its
// fourth task, with one job completed, one failed and one running. The daemon stops first,
// so that the database keeps the states that the report reads. The report is still
// written, marked partial with the cause and the step, and its counts match the database.
func TestInterruptedReplayWritesPartialReport(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeStopTrace(t)
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1, Load: 1,
		MaxConcurrent: 100, ReportDir: t.TempDir(), Timeout: 10 * time.Minute}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	type result struct {
		path string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		path, err := r.Run(ctx)
		done <- result{path, err}
	}()

	waitForJobCounts(t, h.Store, map[string]int{"completed": 1, "failed": 1, "running": 1}, done)
	if err := h.Shutdown(); err != nil {
		t.Fatalf("daemon: %v", err)
	}
	cancel(errors.New("the test stopped it"))
	got := <-done

	if !errors.Is(got.err, context.Canceled) {
		t.Errorf("Run returned %v, want an error that wraps context.Canceled", got.err)
	}
	wantErr := "interrupted (the test stopped it) while submitting trace tasks: "
	if got.err == nil || !strings.HasPrefix(got.err.Error(), wantErr) {
		t.Errorf("Run returned %v, want it to start with %q", got.err, wantErr)
	}
	text := readPartialReport(t, cfg.ReportDir, got.path)
	counts := jobCounts(t, h.Store)
	submitted := 0
	for _, n := range counts {
		submitted += n
	}
	wantLines := []string{
		"- Reason: interrupted (the test stopped it)",
		"- Step: submitting trace tasks",
		fmt.Sprintf("- Trace tasks submitted: %d of 5, and %d not submitted", submitted, 5-submitted),
		fmt.Sprintf("| Submitted | %d |", submitted),
		fmt.Sprintf("| Total | %d | 100.0%% |", submitted),
	}
	for state, n := range counts {
		wantLines = append(wantLines, fmt.Sprintf("| %s | %d |", state, n))
	}
	for _, line := range wantLines {
		if !strings.Contains(text, "\n"+line) {
			t.Errorf("report lacks the line %q:\n%s", line, text)
		}
	}
	if submitted != 3 {
		t.Errorf("database holds %d jobs after the stop, want the 3 submitted before it", submitted)
	}
	assertNoTempFiles(t, cfg.ReportDir)
}

// waitForJobCounts waits until the database's jobs by state are want. It fails the test
// if the replay returns first, or after two minutes.
func waitForJobCounts[T any](t *testing.T, s *store.Store, want map[string]int, replayDone <-chan T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		counts := jobCounts(t, s)
		if fmt.Sprint(counts) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs by state %v after 2 minutes, want %v", counts, want)
		}
		select {
		case result := <-replayDone:
			t.Fatalf("replay returned %+v before the jobs by state were %v (they are %v)", result, want, counts)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// assertNoTempFiles fails the test if dir holds a temporary file of the report's atomic
// writes.
func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("report directory holds the temporary file %s", e.Name())
		}
	}
}

// TestTimedOutReplayWritesPartialReport gives a replay a timeout that has passed before
// it creates its first node. It writes a partial report that names the timeout and
// submits nothing.
func TestTimedOutReplayWritesPartialReport(t *testing.T) {
	s := store.New(pgtest.NewPool(t))
	nodes, tasks := writeStopTrace(t)
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1, Load: 1,
		ReportDir: t.TempDir(), Timeout: time.Nanosecond}
	r, err := replay.New(cfg, s, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}

	path, err := r.Run(context.Background())

	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run returned %v, want an error that wraps context.DeadlineExceeded", err)
	}
	if path == "" {
		t.Fatal("Run returned no report path")
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("partial report: %v", err)
	}
	for _, line := range []string{
		"- Reason: reached its timeout of 1ns",
		"- Step: creating the trace's nodes",
		"- Trace tasks submitted: 0 of 5, and 5 not submitted",
		"## Jobs by state at the stop\n\nnone",
	} {
		if !strings.Contains(string(body), "\n"+line+"\n") {
			t.Errorf("report lacks the line %q:\n%s", line, body)
		}
	}
}

// readPartialReport checks that Run returned the path of the report file in reportDir and
// that the report's title marks it partial, and returns the report's text.
func readPartialReport(t *testing.T, reportDir, path string) string {
	t.Helper()
	if want := filepath.Join(reportDir, report.ReportFile); path != want {
		t.Fatalf("Run returned the report path %q, want %q", path, want)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("partial report: %v", err)
	}
	text := string(body)

	if !strings.HasPrefix(text, "# Trace replay of tasks.csv (partial)\n") {
		t.Errorf("report title is not marked partial:\n%s", text)
	}
	return text
}
