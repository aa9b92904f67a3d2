package trace

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The expected figures in this file come from the trace files themselves,
// computed with mawk 1.3 in the trace directory. Each constant or test
// names its command. $p is openb_pod_list_default.csv and $n is
// openb_node_list_gpu_node.csv.

// traceDirEnv names the variable that points the tests at the trace files.
const traceDirEnv = "SCHEDULERD_TRACE_DIR"

// defaultTraceDir is where the development machines keep the trace.
const defaultTraceDir = "/work/shared/traces/alibaba-gpu-v2023"

// tracePath returns the path of a trace file, skipping the test when the
// file is not present.
func tracePath(t *testing.T, name string) string {
	t.Helper()

	dir := os.Getenv(traceDirEnv)
	if dir == "" {
		dir = defaultTraceDir
	}

	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("trace file not found (set %s to its directory): %v", traceDirEnv, err)
	}

	return path
}

func readRealTasks(t *testing.T) []Task {
	t.Helper()

	tasks, err := ReadTasks(tracePath(t, "openb_pod_list_default.csv"))
	if err != nil {
		t.Fatalf("ReadTasks: %v", err)
	}

	return tasks
}

func readRealNodes(t *testing.T) []Node {
	t.Helper()

	nodes, err := ReadNodes(tracePath(t, "openb_node_list_gpu_node.csv"))
	if err != nil {
		t.Fatalf("ReadNodes: %v", err)
	}

	return nodes
}

func TestRealNodes(t *testing.T) {
	nodes := readRealNodes(t)

	// awk -F, 'NR>1{n++; g+=$4} END{print n, g}' $n
	if len(nodes) != 1213 {
		t.Errorf("nodes = %d, want 1213", len(nodes))
	}

	gpus := 0
	byModel := map[string]int{}
	for _, node := range nodes {
		gpus += node.GPUs
		byModel[node.Model]++
	}
	if gpus != 6212 {
		t.Errorf("GPUs = %d, want 6212", gpus)
	}

	// awk -F, 'NR>1{print $5}' $n | sort | uniq -c
	want := map[string]int{"P100": 134, "T4": 404, "V100M16": 55, "V100M32": 30, "A10": 2, "G2": 549, "G3": 39}
	for model, count := range want {
		if byModel[model] != count {
			t.Errorf("nodes of model %s = %d, want %d", model, byModel[model], count)
		}
	}
	if len(byModel) != len(want) {
		t.Errorf("models = %v, want the 7 of %v", byModel, want)
	}
}

func TestRealTaskCounts(t *testing.T) {
	tasks := readRealTasks(t)
	if len(tasks) != 8152 {
		t.Fatalf("tasks = %d, want 8152", len(tasks))
	}

	counts := CountTasks(tasks)

	// awk -F, 'NR>1{print $4}' $p | sort -n | uniq -c
	wantClass := map[GPUClass]int{ClassCPUOnly: 1088, ClassSingleGPU: 6989, ClassMultiGPU: 75}
	for class, want := range wantClass {
		if counts.ByClass[class] != want {
			t.Errorf("class %s = %d, want %d", class, counts.ByClass[class], want)
		}
	}

	// awk -F, 'NR>1{print $8}' $p | sort | uniq -c
	wantPhase := map[Phase]int{PhaseFailed: 1870, PhasePending: 897, PhaseRunning: 5193, PhaseSucceeded: 192}
	for phase, want := range wantPhase {
		if counts.ByPhase[phase] != want {
			t.Errorf("phase %s = %d, want %d", phase, counts.ByPhase[phase], want)
		}
	}
}

func TestRealTaskFields(t *testing.T) {
	tasks := readRealTasks(t)

	shared, unscheduled := 0, 0
	qos := map[QoS]int{}
	for _, task := range tasks {
		qos[task.QoS]++
		if task.IsShared() {
			shared++
		}
		if !task.Scheduled {
			unscheduled++
		}
	}

	// awk -F, 'NR>1 && $4==1 && $5<1000' $p | wc -l
	if shared != 3078 {
		t.Errorf("shared-GPU tasks = %d, want 3078", shared)
	}

	// awk -F, 'NR>1 && $11==""' $p | wc -l
	if unscheduled != 897 {
		t.Errorf("tasks without scheduled_time = %d, want 897", unscheduled)
	}

	// awk -F, 'NR>1{print $7}' $p | sort | uniq -c
	wantQoS := map[QoS]int{QoSBestEffort: 3398, QoSBurstable: 100, QoSGuaranteed: 7, QoSLatencySensitive: 4647}
	for class, want := range wantQoS {
		if qos[class] != want {
			t.Errorf("QoS %s = %d, want %d", class, qos[class], want)
		}
	}

	first := tasks[1]
	if first.Name != "openb-pod-0001" || first.Line != 3 || first.GPUShareMilli != 460 || first.CreationTime != 427061 {
		t.Errorf("second task = %+v, want openb-pod-0001 on line 3 with gpu_milli 460 created at 427061", first)
	}
}

func TestRealGPUHours(t *testing.T) {
	tasks := readRealTasks(t)

	var exact, ran int64
	for _, task := range tasks {
		exact += GPUMilliSeconds(task)
		if task.Scheduled {
			ran += GPUMilliSeconds(task)
		}
	}

	// awk -F, 'NR>1{n=$4;m=$5; g=(n==1&&m<1000)?m:n*1000;
	//   s=($11==""?$9:$11); t+=g*($10-s)} END{printf "%.0f\n", t}' $p
	if exact != 185_395_450_660 {
		t.Errorf("GPU milli-seconds = %d, want 185395450660", exact)
	}

	// The same command restricted to rows where $11 != "".
	if ran != 185_294_426_970 {
		t.Errorf("GPU milli-seconds of tasks that ran = %d, want 185294426970", ran)
	}

	total := TotalGPUHours(tasks)
	if math.Abs(total-185_395_450_660.0/3_600_000) > 1e-6 {
		t.Errorf("TotalGPUHours = %.6f, want 51498.736294", total)
	}
}

func TestRealPeakConcurrency(t *testing.T) {
	tasks := readRealTasks(t)

	// awk -F, 'NR>1 && $11!="" && $10>$11 {g=($4==1&&$5<1000?$5:$4*1000);
	//   print $11, 1, g; print $10, -1, -g}' $p | sort -k1,1n -k2,2n |
	//   awk '{t+=$2; g+=$3; if(t>mt){mt=t;tt=$1}; if(g>mg){mg=g;tg=$1}}
	//   END{print mt, tt, mg, tg}'
	want := Peak{Tasks: 56, TasksAt: 11_821_651, GPUMilli: 65_590, GPUMilliAt: 12_523_649}
	if got := PeakConcurrency(tasks); got != want {
		t.Errorf("PeakConcurrency = %+v, want %+v", got, want)
	}

	// The same command with && $4>0 added to the first awk.
	var gpuTasks []Task
	for _, task := range tasks {
		if task.IsGPU() {
			gpuTasks = append(gpuTasks, task)
		}
	}
	if got := PeakConcurrency(gpuTasks).Tasks; got != 52 {
		t.Errorf("peak GPU tasks = %d, want 52", got)
	}
}

func TestRealCheckModels(t *testing.T) {
	tasks := readRealTasks(t)
	nodes := readRealNodes(t)

	// Every gpu_spec of the sample is empty (awk -F, 'NR>1{print $6}' $p |
	// sort -u). A G3 node has 8 GPUs, 128000 CPU milli and 786432 MiB, more
	// than the maximum num_gpu (8), cpu_milli (120200) and memory_mib
	// (737280) of any task (awk -F, 'NR>1{print $2}' $p | sort -n | tail -1).
	if problems := CheckModels(tasks, nodes); len(problems) != 0 {
		t.Errorf("CheckModels = %d problems, first %v, want none", len(problems), problems[0])
	}
}
