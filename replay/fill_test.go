package replay_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/scheduler"
)

// writeTrace writes a node file with nodes nodes of gpus GPUs of model, and a task file
// with tasks one-GPU tasks restricted to model, one created every 10 trace seconds.
func writeTrace(t *testing.T, model string, nodes, gpus, tasks int) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var n strings.Builder
	n.WriteString("sn,cpu_milli,memory_mib,gpu,model\n")
	for i := range nodes {
		fmt.Fprintf(&n, "%s-node-%d,32000,131072,%d,%s\n", strings.ToLower(model), i, gpus, model)
	}
	var p strings.Builder
	p.WriteString("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n")
	for i := range tasks {
		created := i * 10
		fmt.Fprintf(&p, "%s-task-%02d,1000,1024,1,1000,%s,LS,Succeeded,%d,%d,%d\n", model, i, model, created, created+20000, created)
	}
	nodesFile, tasksFile := filepath.Join(dir, "nodes.csv"), filepath.Join(dir, "tasks.csv")
	if err := os.WriteFile(nodesFile, []byte(n.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tasksFile, []byte(p.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return nodesFile, tasksFile
}

// TestFillStopsAtFirstUnplaced fills two 2-GPU nodes with one-GPU tasks that never end:
// four run, the fifth finds no room and the replay stops there.
func TestFillStopsAtFirstUnplaced(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "FILLTEST", 2, 2, 10)
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModeFill, Speedup: 1, Load: 1,
		MaxConcurrent: 100, ReportDir: t.TempDir(), Timeout: 3 * time.Minute}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	path, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	counts := jobCounts(t, h.Store)
	if counts["running"] != 4 || counts["queued"] != 1 || len(counts) != 2 {
		t.Errorf("jobs by state %v, want 4 running and 1 queued (the fifth task; the rest never submitted)", counts)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "Where the fill stopped: task 5 of 10 (FILLTEST-task-04) found no room: ") {
		t.Errorf("report does not say which task found no room:\n%s", body)
	}
	if !strings.HasSuffix(string(body), "## Problems\n\nnone\n") {
		t.Errorf("report lists problems, but the trace has none (the fill's stop is not one):\n%s", body)
	}
}

// runFill runs a fill-mode replay of cfg's trace and returns the report's text.
func runFill(t *testing.T, h *daemontest.Harness, cfg replay.Config) string {
	t.Helper()
	cfg.Mode, cfg.ReportDir, cfg.Timeout = trace.ModeFill, t.TempDir(), 3*time.Minute
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	path, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestFillAtDefaultSpeedup runs fill mode with the command's default speedup, load and
// budget scale. Fill-mode jobs reserve 30 days of GPU time each, far more than the paced
// budgets divided by that speedup, so those budgets would stop the fill at its first task.
// Four tasks run on the two 2-GPU nodes, and the fifth finds no room.
func TestFillAtDefaultSpeedup(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "FILLFAST", 2, 2, 10)
	body := runFill(t, h, replay.Config{NodesFile: nodes, TasksFile: tasks, Speedup: 20000, Load: 20,
		BudgetScale: 2, MaxConcurrent: 2000})

	counts := jobCounts(t, h.Store)
	if counts["running"] != 4 || counts["queued"] != 1 || len(counts) != 2 {
		t.Errorf("jobs by state %v, want 4 running and 1 queued (the fifth task; the rest never submitted)", counts)
	}
	want := "task 5 of 10 (FILLFAST-task-04) found no room: " + scheduler.ReasonNoCapacity
	if !strings.Contains(body, want) {
		t.Errorf("report does not contain %q:\n%s", want, body)
	}
}

// TestFillNamesConcurrencyLimit lets each project run one job on nodes with room for all
// ten tasks. The fill stops at the first task whose project already runs one, and the
// report names the concurrency limit, not the cluster, as what stopped it.
func TestFillNamesConcurrencyLimit(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "FILLCONC", 2, 8, 10)
	body := runFill(t, h, replay.Config{NodesFile: nodes, TasksFile: tasks, Speedup: 20000, Load: 20,
		BudgetScale: 2, MaxConcurrent: 1})

	read, err := trace.ReadTasks(tasks)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[trace.ProjectName]bool{}
	stuck := 0
	for stuck < len(read) && !seen[trace.Project(read[stuck])] {
		seen[trace.Project(read[stuck])] = true
		stuck++
	}
	if stuck == len(read) {
		t.Fatal("every task of the test trace is in a project of its own; the test needs a repeat")
	}

	counts := jobCounts(t, h.Store)
	if counts["running"] != stuck || counts["queued"] != 1 || len(counts) != 2 {
		t.Errorf("jobs by state %v, want %d running and 1 queued", counts, stuck)
	}
	want := fmt.Sprintf("task %d of 10 (%s) waits in the queue, not for room: %s",
		stuck+1, read[stuck].Name, scheduler.ReasonConcurrency)
	if !strings.Contains(body, want) {
		t.Errorf("report does not contain %q:\n%s", want, body)
	}
}

// TestFillNamesUnplacedPod fills two 2-GPU nodes with two one-GPU tasks that each need
// more than half of a node's CPU, so they run on different nodes. The third task needs
// 2 GPUs: the scheduler admits it, since 2 GPUs of the model are free, but no node has
// both free, so its pod stays Pending and the report quotes its scheduling condition.
func TestFillNamesUnplacedPod(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "FILLFRAG", 2, 2, 0)
	rows := "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n" +
		"FILLFRAG-task-00,20000,1024,1,1000,FILLFRAG,LS,Succeeded,0,100,0\n" +
		"FILLFRAG-task-01,20000,1024,1,1000,FILLFRAG,LS,Succeeded,10,110,10\n" +
		"FILLFRAG-task-02,1000,1024,2,1000,FILLFRAG,LS,Succeeded,20,120,20\n"
	if err := os.WriteFile(tasks, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	body := runFill(t, h, replay.Config{NodesFile: nodes, TasksFile: tasks, Speedup: 20000, Load: 20,
		BudgetScale: 2, MaxConcurrent: 2000})

	counts := jobCounts(t, h.Store)
	if counts["running"] != 3 || len(counts) != 1 {
		t.Errorf("jobs by state %v, want 3 running (the third admitted, its pod not placed)", counts)
	}
	for _, want := range []string{
		"task 3 of 3 (FILLFRAG-task-02) was admitted, but did not run within 30s: pod trace-",
		`phase Pending on node "", not scheduled: Unschedulable`,
		"| FILLFRAG | 2 | 4 | 50.0% |", // the 2 GPUs of the unplaced pod are not in use
	} {
		if !strings.Contains(body, want) {
			t.Errorf("report does not contain %q:\n%s", want, body)
		}
	}
}

// TestReplayContinuesWithoutResubmitting replays five tasks, then ten: the second run
// submits only the five it lacks, so each task has one job.
func TestReplayContinuesWithoutResubmitting(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "RESUMETEST", 2, 8, 10)
	run := func(limit int) {
		t.Helper()
		cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Limit: limit, Mode: trace.ModePaced,
			Speedup: 10000, Load: 10, MaxConcurrent: 100, BudgetScale: 1000, ReportDir: t.TempDir(),
			Timeout: 3 * time.Minute}
		r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	run(5)
	run(10)

	var jobs, keys int
	err := h.Store.Pool().QueryRow(context.Background(),
		`SELECT count(*), count(DISTINCT idempotency_key) FROM jobs`).Scan(&jobs, &keys)
	if err != nil {
		t.Fatal(err)
	}
	if jobs != 10 || keys != 10 {
		t.Errorf("%d jobs with %d distinct keys, want 10 and 10", jobs, keys)
	}
	if counts := jobCounts(t, h.Store); counts["completed"] != 10 {
		t.Errorf("jobs by state %v, want 10 completed", counts)
	}
}

// A replay that continues on a database whose earlier jobs hold more GPU-hours than its
// budgets allow stops, reports what to do, and leaves that project's budget as it was.
func TestReplayRejectsBudgetBelowHeld(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "HELDTEST", 1, 2, 1)
	h.Project("vision", 2e6, 100)
	if _, err := h.Store.Pool().Exec(context.Background(), `UPDATE quotas SET gpu_hours_reserved = 1e6
		WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1000, Load: 1,
		MaxConcurrent: 100, ReportDir: t.TempDir(), Timeout: time.Minute}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}

	_, err = r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "gpu_hours_budget is below the 1e+06 the project's jobs hold now") ||
		!strings.Contains(err.Error(), "replay into a fresh database") {
		t.Fatalf("Run = %v, want the budget conflict and what to do", err)
	}
	quota, err := h.Store.GetQuota(context.Background(), "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursBudget != 2e6 {
		t.Errorf("budget %v after the rejected replay, want 2e6 as before", quota.GPUHoursBudget)
	}
}

// TestTimeoutNamesStuckJob replays one task that runs for hours with a short timeout: the
// error names the job that was still running and its pod as the Kubernetes API has it.
func TestTimeoutNamesStuckJob(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	nodes, tasks := writeTrace(t, "STUCKTEST", 1, 2, 1)
	cfg := replay.Config{NodesFile: nodes, TasksFile: tasks, Mode: trace.ModePaced, Speedup: 1, Load: 1,
		MaxConcurrent: 100, ReportDir: t.TempDir(), Timeout: 20 * time.Second}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}

	_, err = r.Run(context.Background())
	if err == nil {
		t.Fatal("a replay whose only task runs for hours ended within 20 s")
	}
	t.Log(err)
	var jobID string
	if err := h.Store.Pool().QueryRow(context.Background(), `SELECT id::text FROM jobs`).Scan(&jobID); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(1 still active; job " + jobID + " running", "last run running",
		`: phase Running on node "stucktest-node-0")`, "context deadline exceeded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
