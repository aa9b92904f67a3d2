package trace

import (
	"cmp"
	"slices"
)

// GPUClass groups tasks by the number of GPUs they request.
type GPUClass string

// GPU classes. Single-GPU includes tasks that share one GPU.
const (
	ClassCPUOnly   GPUClass = "cpu-only"
	ClassSingleGPU GPUClass = "single-gpu"
	ClassMultiGPU  GPUClass = "multi-gpu"
)

// Class returns the GPU class of the task.
func (t Task) Class() GPUClass {
	switch {
	case t.NumGPU == 0:
		return ClassCPUOnly
	case t.NumGPU == 1:
		return ClassSingleGPU
	}

	return ClassMultiGPU
}

// TaskCounts is the number of tasks per GPU class and pod phase.
type TaskCounts struct {
	ByClass         map[GPUClass]int
	ByPhase         map[Phase]int
	ByClassAndPhase map[GPUClass]map[Phase]int
}

// CountTasks counts tasks by GPU class, by phase and by both, for reports
// that compare a sample with the published trace statistics.
func CountTasks(tasks []Task) TaskCounts {
	counts := TaskCounts{
		ByClass:         map[GPUClass]int{},
		ByPhase:         map[Phase]int{},
		ByClassAndPhase: map[GPUClass]map[Phase]int{},
	}

	for _, task := range tasks {
		class := task.Class()
		counts.ByClass[class]++
		counts.ByPhase[task.Phase]++

		if counts.ByClassAndPhase[class] == nil {
			counts.ByClassAndPhase[class] = map[Phase]int{}
		}
		counts.ByClassAndPhase[class][task.Phase]++
	}

	return counts
}

// Peak is the maximum load of a trace. The two maximums may occur at
// different times.
type Peak struct {
	// Tasks is the maximum number of tasks running at once, CPU-only
	// tasks included, first reached at TasksAt (trace seconds).
	Tasks   int
	TasksAt int64

	// GPUMilli is the maximum GPU request running at once in thousandths
	// of a GPU, shares counted as fractions, first reached at GPUMilliAt.
	GPUMilli   int64
	GPUMilliAt int64
}

// event is a task starting (+1) or ending (-1) at a trace time.
type event struct {
	time     int64
	delta    int
	gpuMilli int64
}

// PeakConcurrency returns the maximum tasks and GPU thousandths running at
// once, as recorded in the trace. A task runs in the half-open interval
// [scheduled_time, deletion_time), so a task that ends at the second
// another starts does not overlap it. Tasks that never ran are ignored.
func PeakConcurrency(tasks []Task) Peak {
	events := make([]event, 0, 2*len(tasks))
	for _, task := range tasks {
		if !task.Scheduled || task.DeletionTime == task.ScheduledTime {
			continue
		}

		milli := task.GPUMilli()
		events = append(events, event{task.ScheduledTime, 1, milli}, event{task.DeletionTime, -1, -milli})
	}

	// Ends sort before starts at the same time, which makes the intervals
	// half-open.
	slices.SortFunc(events, func(a, b event) int {
		return cmp.Or(cmp.Compare(a.time, b.time), cmp.Compare(a.delta, b.delta))
	})

	return scanPeak(events)
}

func scanPeak(events []event) Peak {
	var peak Peak
	running := 0
	var milli int64
	for _, e := range events {
		running += e.delta
		milli += e.gpuMilli

		if running > peak.Tasks {
			peak.Tasks, peak.TasksAt = running, e.time
		}
		if milli > peak.GPUMilli {
			peak.GPUMilli, peak.GPUMilliAt = milli, e.time
		}
	}

	return peak
}

// TotalGPUHours returns the sum of GPUHours over the tasks.
func TotalGPUHours(tasks []Task) float64 {
	total := 0.0
	for _, task := range tasks {
		total += GPUHours(task)
	}

	return total
}

// FirstGPUTasks returns the first n GPU tasks in the given order, skipping
// CPU-only tasks, or all GPU tasks when there are fewer than n.
func FirstGPUTasks(tasks []Task, n int) []Task {
	var first []Task
	for _, task := range tasks {
		if len(first) == n {
			break
		}
		if task.IsGPU() {
			first = append(first, task)
		}
	}

	return first
}

// Summary describes what a replay of the tasks submits. CPU-only tasks are
// counted in CPUOnlyTasks and in nothing else, because the replay skips
// them.
type Summary struct {
	GPUTasks     int
	CPUOnlyTasks int

	// ByPhase counts the GPU tasks by their phase in the trace.
	ByPhase map[Phase]int

	// GPUHoursByProject is the sum of GPUHours per project of the GPU
	// tasks. GPUHours is its total.
	GPUHoursByProject map[ProjectName]float64
	GPUHours          float64
}

// Summarize computes the Summary of the tasks, the expected figures that
// replay accounting is checked against.
func Summarize(tasks []Task) Summary {
	summary := Summary{ByPhase: map[Phase]int{}, GPUHoursByProject: map[ProjectName]float64{}}

	for _, task := range tasks {
		if !task.IsGPU() {
			summary.CPUOnlyTasks++
			continue
		}

		hours := GPUHours(task)
		summary.GPUTasks++
		summary.ByPhase[task.Phase]++
		summary.GPUHoursByProject[Project(task)] += hours
		summary.GPUHours += hours
	}

	return summary
}
