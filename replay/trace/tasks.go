package trace

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// QoS is the quality-of-service class that the trace records for a task.
type QoS string

// QoS classes of the Alibaba GPU trace, from most to least protected.
const (
	QoSLatencySensitive QoS = "LS"
	QoSGuaranteed       QoS = "Guaranteed"
	QoSBurstable        QoS = "Burstable"
	QoSBestEffort       QoS = "BE"
)

// Phase is the Kubernetes pod phase recorded at the end of the trace.
type Phase string

// Pod phases found in the trace. Running means the task was still running
// when the trace ended, and Pending means it was never scheduled.
const (
	PhaseSucceeded Phase = "Succeeded"
	PhaseRunning   Phase = "Running"
	PhasePending   Phase = "Pending"
	PhaseFailed    Phase = "Failed"
)

// MaxGPUsPerTask bounds num_gpu and a node's gpu count. Each trace task is
// one pod, which runs on one node. The nodes of the default sample have at
// most 8 GPUs and an NVIDIA DGX-2 has 16, so the bound leaves room for
// larger machines in other samples but rejects corrupt values, such as a
// gpu_milli number in the num_gpu column.
const MaxGPUsPerTask = 64

// MilliPerGPU is the number of thousandths in one whole GPU.
const MilliPerGPU = 1000

// Task is one row of a pod list file. Times are whole seconds from the
// trace start.
type Task struct {
	// Source is the base name of the file. IdempotencyKey hashes it.
	Source string

	// Line is the 1-based line of the row in Source.
	Line int

	Name      string
	CPUMilli  int64
	MemoryMiB int64

	// NumGPU is the number of GPUs, 0 for a CPU-only task.
	NumGPU int

	// GPUShareMilli is the gpu_milli column: the thousandths of each GPU
	// that the task uses. It is 0 when NumGPU is 0, 1..1000 when NumGPU is 1,
	// and 1000 when NumGPU is greater than 1.
	GPUShareMilli int

	// AllowedModels lists the GPU models the task may run on. Nil means any.
	AllowedModels []string

	QoS   QoS
	Phase Phase

	CreationTime int64
	DeletionTime int64

	// ScheduledTime is valid only when Scheduled is true.
	ScheduledTime int64

	// Scheduled is false when the scheduled_time field is empty, which
	// means that the task never ran in the trace.
	Scheduled bool
}

var taskColumns = []string{
	"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec",
	"qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time",
}

var knownQoS = map[QoS]bool{
	QoSLatencySensitive: true, QoSGuaranteed: true, QoSBurstable: true, QoSBestEffort: true,
}

var knownPhases = map[Phase]bool{
	PhaseSucceeded: true, PhaseRunning: true, PhasePending: true, PhaseFailed: true,
}

// ReadTasks reads a pod list file such as openb_pod_list_default.csv. It
// rejects the whole file at the first invalid row, because a replay of a
// partly read trace would report wrong totals.
func ReadTasks(path string) ([]Task, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}
	defer file.Close()

	return ReadTasksFrom(file, path)
}

// ReadTasksFrom reads a pod list from r. The name appears in error messages,
// and its base name becomes Task.Source. A file with a header and no rows
// yields no tasks and no error.
func ReadTasksFrom(r io.Reader, name string) ([]Task, error) {
	table, err := openTable(r, name, taskColumns)
	if err != nil {
		return nil, err
	}

	var tasks []Task
	firstLine := map[string]int{}
	for {
		more, err := table.next()
		if err != nil {
			return nil, err
		}
		if !more {
			return tasks, nil
		}

		task, err := parseTask(table, firstLine)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, task)
	}
}

// parseTask converts the current row. firstLine maps each name seen so far
// to its line, to reject duplicates.
func parseTask(t *table, firstLine map[string]int) (Task, error) {
	task := Task{Source: filepath.Base(t.file), Line: t.line}

	steps := []func(*table, *Task) error{
		parseTaskName, parseTaskResources, parseTaskGPUs, parseTaskClasses, parseTaskTimes,
	}
	for _, step := range steps {
		if err := step(t, &task); err != nil {
			return Task{}, err
		}
	}

	if line, seen := firstLine[task.Name]; seen {
		err := fmt.Errorf("%w %q: first used on line %d", ErrDuplicate, task.Name, line)
		return Task{}, t.fail("name", err)
	}
	firstLine[task.Name] = task.Line

	return task, nil
}

func parseTaskName(t *table, task *Task) (err error) {
	task.Name, err = t.nonEmpty("name")
	return err
}

func parseTaskResources(t *table, task *Task) (err error) {
	task.CPUMilli, err = t.integer("cpu_milli", 0, maxInt64)
	if err != nil {
		return err
	}

	task.MemoryMiB, err = t.integer("memory_mib", 0, maxInt64)
	return err
}

// parseTaskGPUs reads num_gpu, gpu_milli and gpu_spec. gpu_milli is a
// share of one GPU, which has no clear meaning for a task with several
// GPUs. All 75 multi-GPU tasks of the default sample have gpu_milli 1000,
// so any other value is rejected rather than guessed at.
func parseTaskGPUs(t *table, task *Task) error {
	numGPU, err := t.integer("num_gpu", 0, MaxGPUsPerTask)
	if err != nil {
		return err
	}
	task.NumGPU = int(numGPU)

	share, err := t.integer("gpu_milli", 0, MilliPerGPU)
	if err != nil {
		return err
	}
	task.GPUShareMilli = int(share)

	if err := checkShare(task.NumGPU, task.GPUShareMilli); err != nil {
		return t.fail("gpu_milli", err)
	}

	task.AllowedModels, err = parseModels(t.text("gpu_spec"))
	if err != nil {
		return t.fail("gpu_spec", err)
	}

	return nil
}

// checkShare checks that gpu_milli agrees with num_gpu.
func checkShare(numGPU, share int) error {
	switch {
	case numGPU == 0 && share != 0:
		return fmt.Errorf("%w: gpu_milli %d with num_gpu 0, want 0 for a CPU-only task", ErrInconsistent, share)
	case numGPU == 1 && share == 0:
		return fmt.Errorf("%w: gpu_milli 0 with num_gpu 1, want a share of 1 to 1000", ErrInconsistent)
	case numGPU > 1 && share != MilliPerGPU:
		return fmt.Errorf("%w: gpu_milli %d with num_gpu %d, want 1000 because multi-GPU tasks take whole GPUs", ErrInconsistent, share, numGPU)
	}

	return nil
}

// parseModels splits a gpu_spec such as "V100M16|V100M32". An empty spec
// returns nil, which means any model.
func parseModels(spec string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}

	models := strings.Split(spec, "|")
	for i, model := range models {
		if model == "" {
			return nil, fmt.Errorf("%w: model list %q has an empty entry", ErrEmptyValue, spec)
		}
		// A job config may not list a model twice, so the replay could not submit the task.
		if slices.Contains(models[:i], model) {
			return nil, fmt.Errorf("%w: model list %q names %s twice", ErrDuplicate, spec, model)
		}
	}

	return models, nil
}

func parseTaskClasses(t *table, task *Task) error {
	task.QoS = QoS(t.text("qos"))
	if !knownQoS[task.QoS] {
		return t.fail("qos", fmt.Errorf("%w %q: want LS, Guaranteed, Burstable or BE", ErrUnknownValue, task.QoS))
	}

	task.Phase = Phase(t.text("pod_phase"))
	if !knownPhases[task.Phase] {
		return t.fail("pod_phase", fmt.Errorf("%w %q: want Succeeded, Running, Pending or Failed", ErrUnknownValue, task.Phase))
	}

	return nil
}

// parseTaskTimes reads the three times and checks their order:
// creation <= scheduled <= deletion.
func parseTaskTimes(t *table, task *Task) (err error) {
	task.CreationTime, err = t.integer("creation_time", 0, maxSeconds)
	if err != nil {
		return err
	}

	task.DeletionTime, err = t.integer("deletion_time", 0, maxSeconds)
	if err != nil {
		return err
	}
	if task.DeletionTime < task.CreationTime {
		return t.fail("deletion_time", fmt.Errorf("%w: %d is before creation_time %d", ErrInconsistent, task.DeletionTime, task.CreationTime))
	}

	if t.text("scheduled_time") == "" {
		return nil
	}

	task.ScheduledTime, err = t.integer("scheduled_time", 0, maxSeconds)
	if err != nil {
		return err
	}
	task.Scheduled = true

	return checkScheduled(t, task)
}

func checkScheduled(t *table, task *Task) error {
	if task.ScheduledTime < task.CreationTime {
		return t.fail("scheduled_time", fmt.Errorf("%w: %d is before creation_time %d", ErrInconsistent, task.ScheduledTime, task.CreationTime))
	}

	if task.ScheduledTime > task.DeletionTime {
		return t.fail("scheduled_time", fmt.Errorf("%w: %d is after deletion_time %d", ErrInconsistent, task.ScheduledTime, task.DeletionTime))
	}

	return nil
}
