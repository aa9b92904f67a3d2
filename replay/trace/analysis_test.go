package trace

import (
	"math"
	"testing"
)

// projectScript prints the tasks and GPU milli-seconds per project index
// (0 vision .. 4 research) with an FNV-1a implementation independent of
// the package. Run in the trace directory:
//
//	python3 -c '
//	import csv, collections as c
//	def h(s, x=0xcbf29ce484222325):
//	    for b in s.encode(): x = (x ^ b) * 0x100000001b3 % 2**64
//	    return x % 5
//	rows = list(csv.DictReader(open("openb_pod_list_default.csv")))
//	# rows = [r for r in rows if r["num_gpu"] != "0"][:300]  # first 300 GPU tasks
//	n, ms = c.Counter(), c.Counter()
//	for r in rows:
//	    g = int(r["gpu_milli"]) if r["num_gpu"] == "1" else int(r["num_gpu"]) * 1000
//	    n[h(r["name"])] += 1
//	    ms[h(r["name"])] += g * (int(r["deletion_time"]) - int(r["scheduled_time"] or r["creation_time"]))
//	print(sorted(n.items()), sorted(ms.items()))'
var projectOrder = []ProjectName{ProjectVision, ProjectSpeech, ProjectNLP, ProjectRecSys, ProjectResearch}

func TestProjectsAllReceiveTasks(t *testing.T) {
	tasks := readRealTasks(t)

	counts := map[ProjectName]int{}
	for _, task := range tasks {
		counts[Project(task)]++
	}

	want := []int{1629, 1624, 1636, 1622, 1641}
	for i, project := range projectOrder {
		if counts[project] != want[i] {
			t.Errorf("tasks of %s = %d, want %d", project, counts[project], want[i])
		}
	}
}

func TestProjectsBudgetExceeded(t *testing.T) {
	tasks := readRealTasks(t)
	usage := Summarize(tasks).GPUHoursByProject

	want := []int64{48_339_364_330, 24_848_632_990, 26_180_402_280, 40_813_714_700, 45_213_336_360}
	exceeded := 0
	for i, quota := range DefaultProjects() {
		wantHours := float64(want[i]) / 3_600_000
		if math.Abs(usage[quota.Name]-wantHours) > 1e-6 {
			t.Errorf("GPU-hours of %s = %.6f, want %.6f", quota.Name, usage[quota.Name], wantHours)
		}
		if wantHours > quota.BudgetGPUHours {
			exceeded++
		}
	}

	if exceeded == 0 {
		t.Errorf("no project exceeds its budget in a full replay, want at least one")
	}
}

func TestSummarizeFirst300(t *testing.T) {
	first := FirstGPUTasks(readRealTasks(t), 300)
	if len(first) != 300 {
		t.Fatalf("FirstGPUTasks = %d tasks, want 300", len(first))
	}

	// awk -F, 'NR>1 && $4>0 {n++; if (n==300) print $1}' $p
	if last := first[299].Name; last != "openb-pod-0318" {
		t.Errorf("300th GPU task = %s, want openb-pod-0318", last)
	}

	summary := Summarize(first)
	if summary.GPUTasks != 300 || summary.CPUOnlyTasks != 0 {
		t.Errorf("GPUTasks, CPUOnlyTasks = %d, %d, want 300, 0", summary.GPUTasks, summary.CPUOnlyTasks)
	}

	wantPhase := map[Phase]int{PhaseFailed: 114, PhasePending: 21, PhaseRunning: 155, PhaseSucceeded: 10}
	for phase, want := range wantPhase {
		if summary.ByPhase[phase] != want {
			t.Errorf("phase %s = %d, want %d", phase, summary.ByPhase[phase], want)
		}
	}

	want := []int64{34_958_552_760, 12_636_201_310, 10_431_362_830, 31_595_007_310, 37_703_758_600}
	for i, project := range projectOrder {
		wantHours := float64(want[i]) / 3_600_000
		if math.Abs(summary.GPUHoursByProject[project]-wantHours) > 1e-6 {
			t.Errorf("GPU-hours of %s = %.6f, want %.6f", project, summary.GPUHoursByProject[project], wantHours)
		}
	}

	if math.Abs(summary.GPUHours-127_324_882_810.0/3_600_000) > 1e-6 {
		t.Errorf("GPUHours = %.6f, want 35368.023003", summary.GPUHours)
	}
}

func TestSummarizeCountsCPUOnly(t *testing.T) {
	tasks := []Task{
		{Name: "cpu", Phase: PhaseSucceeded, DeletionTime: 3600, Scheduled: true},
		{Name: "gpu", NumGPU: 2, GPUShareMilli: 1000, Phase: PhaseFailed, DeletionTime: 1800, Scheduled: true},
	}

	summary := Summarize(tasks)
	if summary.CPUOnlyTasks != 1 {
		t.Errorf("CPUOnlyTasks = %d, want 1", summary.CPUOnlyTasks)
	}
	if summary.GPUTasks != 1 {
		t.Errorf("GPUTasks = %d, want 1", summary.GPUTasks)
	}
	if summary.ByPhase[PhaseSucceeded] != 0 || summary.ByPhase[PhaseFailed] != 1 {
		t.Errorf("ByPhase = %v, want only Failed: 1", summary.ByPhase)
	}
	// 2 GPUs for half an hour.
	if summary.GPUHours != 1 {
		t.Errorf("GPUHours = %v, want 1", summary.GPUHours)
	}
}

func TestFirstGPUTasksShort(t *testing.T) {
	tasks := []Task{{Name: "a", NumGPU: 1}, {Name: "b"}, {Name: "c", NumGPU: 4}}

	got := FirstGPUTasks(tasks, 5)
	if len(got) != 2 || got[0].Name != "a" || got[1].Name != "c" {
		t.Errorf("FirstGPUTasks = %v, want tasks a and c", got)
	}
}

// ran returns a task that ran from start to end with the given GPU request.
func ran(start, end int64, numGPU, share int) Task {
	return Task{NumGPU: numGPU, GPUShareMilli: share, CreationTime: start, ScheduledTime: start, DeletionTime: end, Scheduled: true}
}

func TestPeakConcurrency(t *testing.T) {
	tests := []struct {
		name  string
		tasks []Task
		want  Peak
	}{
		{"empty", nil, Peak{}},
		{"one", []Task{ran(5, 10, 2, 1000)}, Peak{Tasks: 1, TasksAt: 5, GPUMilli: 2000, GPUMilliAt: 5}},
		{"touching", []Task{ran(0, 10, 1, 1000), ran(10, 20, 1, 1000)}, Peak{Tasks: 1, TasksAt: 0, GPUMilli: 1000, GPUMilliAt: 0}},
		{"overlap", []Task{ran(0, 10, 1, 500), ran(5, 20, 4, 1000), ran(6, 7, 0, 0)}, Peak{Tasks: 3, TasksAt: 6, GPUMilli: 4500, GPUMilliAt: 5}},
		{"zero length", []Task{ran(3, 3, 8, 1000)}, Peak{}},
		{"never ran", []Task{{NumGPU: 1, GPUShareMilli: 1000, DeletionTime: 9}}, Peak{}},
		{"peaks apart", []Task{ran(0, 4, 8, 1000), ran(5, 9, 0, 0), ran(6, 9, 0, 0)}, Peak{Tasks: 2, TasksAt: 6, GPUMilli: 8000, GPUMilliAt: 0}},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := PeakConcurrency(test.tasks); got != test.want {
				t.Errorf("PeakConcurrency = %+v, want %+v", got, test.want)
			}
		})
	}
}

func TestCountTasksByClassAndPhase(t *testing.T) {
	tasks := []Task{
		{NumGPU: 0, Phase: PhaseRunning},
		{NumGPU: 1, Phase: PhaseFailed},
		{NumGPU: 1, Phase: PhaseFailed},
		{NumGPU: 8, Phase: PhasePending},
	}

	counts := CountTasks(tasks)
	if got := counts.ByClassAndPhase[ClassSingleGPU][PhaseFailed]; got != 2 {
		t.Errorf("single-gpu Failed = %d, want 2", got)
	}
	if got := counts.ByClassAndPhase[ClassMultiGPU][PhasePending]; got != 1 {
		t.Errorf("multi-gpu Pending = %d, want 1", got)
	}
	if got := counts.ByClass[ClassCPUOnly]; got != 1 {
		t.Errorf("cpu-only = %d, want 1", got)
	}
}
