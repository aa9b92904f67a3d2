package replay

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/replay/trace"
)

func TestValidateRejectsBadFactors(t *testing.T) {
	good := Config{NodesFile: "n", TasksFile: "t", Mode: trace.ModePaced, Speedup: 1, Load: 1}
	cases := map[string]func(*Config){
		"negative budget scale":   func(c *Config) { c.BudgetScale = -1 },
		"negative max concurrent": func(c *Config) { c.MaxConcurrent = -5 },
		"zero speedup":            func(c *Config) { c.Speedup = 0 },
		"infinite load":           func(c *Config) { c.Load = math.Inf(1) },
		"negative limit":          func(c *Config) { c.Limit = -1 },
		"unknown mode":            func(c *Config) { c.Mode = "bogus" },
	}
	for name, change := range cases {
		cfg := good
		change(&cfg)
		if err := validate(&cfg); err == nil {
			t.Errorf("%s: accepted, want an error", name)
		}
	}
	if err := validate(&good); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

// writeMixedTrace writes a node file with one 8-GPU T4 node and a task file whose rows
// are CPU-only (c) or one-GPU (g) tasks in the order of kinds.
func writeMixedTrace(t *testing.T, kinds string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	nodes := "sn,cpu_milli,memory_mib,gpu,model\nt4-node-0,96000,393216,8,T4\n"
	var tasks strings.Builder
	tasks.WriteString("name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n")
	for i, kind := range kinds {
		gpus, milli := 0, 0
		if kind == 'g' {
			gpus, milli = 1, 1000
		}
		fmt.Fprintf(&tasks, "task-%d,1000,1024,%d,%d,,BE,Succeeded,%d,%d,%d\n", i, gpus, milli, i*10, i*10+100, i*10)
	}
	nodesFile, tasksFile := filepath.Join(dir, "nodes.csv"), filepath.Join(dir, "tasks.csv")
	if err := os.WriteFile(nodesFile, []byte(nodes), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tasksFile, []byte(tasks.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return nodesFile, tasksFile
}

// TestLoadPlanCountsSkipsWithinLimit checks that -limit counts as skipped only the
// CPU-only tasks before its last GPU task, not those of the whole file.
func TestLoadPlanCountsSkipsWithinLimit(t *testing.T) {
	nodes, tasks := writeMixedTrace(t, "cgcgccgc")
	cases := []struct {
		limit int
		want  taskCounts
	}{
		{limit: 2, want: taskCounts{total: 8, read: 4, gpu: 2, cpuOnly: 2, limit: 2}},
		{limit: 1, want: taskCounts{total: 8, read: 2, gpu: 1, cpuOnly: 1, limit: 1}},
		// A limit that leaves no GPU task out reads the whole file, as no limit does.
		{limit: 3, want: taskCounts{total: 8, read: 8, gpu: 3, cpuOnly: 5}},
		{limit: 0, want: taskCounts{total: 8, read: 8, gpu: 3, cpuOnly: 5}},
	}
	for _, c := range cases {
		cfg := Config{NodesFile: nodes, TasksFile: tasks, Limit: c.limit, Mode: trace.ModePaced, Speedup: 1, Load: 1}
		p, err := loadPlan(cfg)
		if err != nil {
			t.Fatalf("limit %d: %v", c.limit, err)
		}
		if p.counts != c.want {
			t.Errorf("limit %d: counts %+v, want %+v", c.limit, p.counts, c.want)
		}
		if n := len(p.schedule.Entries); n != c.want.gpu {
			t.Errorf("limit %d: %d entries scheduled, want %d", c.limit, n, c.want.gpu)
		}
	}
}
