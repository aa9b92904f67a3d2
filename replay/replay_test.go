package replay_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/tracetest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

// firstGPUTasks returns the first n GPU tasks of the trace file, as the replay's -limit
// selects them, read independently of the replay.
func firstGPUTasks(t *testing.T, path string, n int) []trace.Task {
	t.Helper()
	tasks, err := trace.ReadTasks(path)
	if err != nil {
		t.Fatal(err)
	}
	var gpu []trace.Task
	for _, task := range tasks {
		if task.IsGPU() && len(gpu) < n {
			gpu = append(gpu, task)
		}
	}
	return gpu
}

// TestReplayFirst300Tasks replays the first 300 GPU tasks against the real apiserver with
// the trace's 1,213 nodes. Budgets are scaled up so that none runs out and every job ends:
// a task that failed in the trace fails (one attempt), every other completes.
func TestReplayFirst300Tasks(t *testing.T) {
	const limit, speedup, load = 300, 200_000, 50
	dir := tracetest.Dir(t)
	h := daemontest.Start(t, daemontest.Options{})
	cfg := replay.Config{
		NodesFile: filepath.Join(dir, "openb_node_list_gpu_node.csv"),
		TasksFile: filepath.Join(dir, "openb_pod_list_default.csv"),
		Limit:     limit, Mode: trace.ModePaced, Speedup: speedup, Load: load,
		BudgetScale: 1000, MaxConcurrent: 1000, ReportDir: t.TempDir(), Timeout: 5 * time.Minute,
	}
	r, err := replay.New(cfg, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	reportPath, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	// Expected figures, from the trace alone.
	tasks := firstGPUTasks(t, cfg.TasksFile, limit)
	wantFailed, wantZero, wantOne := 0, 0, 0
	wantHours := map[string]float64{}
	tolerance := map[string]float64{}
	for _, task := range tasks {
		if task.Phase == trace.PhaseFailed {
			wantFailed++
		}
		// A pod lasts 0 s when the trace run is under half the speedup, and 1 s up to 1.5 times it.
		switch runSeconds := task.RunSeconds(); {
		case runSeconds > 0 && runSeconds < speedup/2:
			wantZero++
		case runSeconds > 1 && runSeconds < speedup*3/2:
			wantOne++
		}
		project := string(trace.Project(task))
		seconds := math.Round(float64(task.RunSeconds()) / speedup)
		wantHours[project] += float64(task.GPUMilli()) / 1000 * seconds / 3600
		// The quota keeps 4 decimals of GPU-hours, so each run's debit may round by 0.00005.
		tolerance[project] += 0.00005
	}

	counts := jobCounts(t, h.Store)
	if counts["failed"] != wantFailed || counts["completed"] != limit-wantFailed {
		t.Errorf("jobs by state %v, want %d completed and %d failed", counts, limit-wantFailed, wantFailed)
	}
	for project, want := range wantHours {
		quota, err := h.Store.GetQuota(context.Background(), project)
		if err != nil {
			t.Fatal(err)
		}
		if diff := math.Abs(quota.GPUHoursUsed - want); diff > tolerance[project]+1e-9 {
			t.Errorf("project %s used %.4f GPU-hours, want %.4f ± %.4f", project, quota.GPUHoursUsed, want, tolerance[project])
		}
		if quota.CurrentConcurrent != 0 || quota.GPUHoursReserved != 0 {
			t.Errorf("project %s still holds %d jobs and %.4f GPU-hours", project, quota.CurrentConcurrent, quota.GPUHoursReserved)
		}
	}
	body, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	for _, row := range []string{
		fmt.Sprintf("| With a run length | %d | 100.0%% |", limit),
		fmt.Sprintf("| Shortened to 0 s | %d |", wantZero),
		fmt.Sprintf("| Shortened to 1 s | %d |", wantOne),
	} {
		if !strings.Contains(string(body), "\n"+row) {
			t.Errorf("report lacks the row %q:\n%s", row, body)
		}
	}
}

func jobCounts(t *testing.T, s *store.Store) map[string]int {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT status::text, count(*) FROM jobs GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			t.Fatal(err)
		}
		counts[status] = n
	}
	return counts
}
