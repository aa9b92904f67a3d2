package trace

import (
	"fmt"
	"strings"
)

// ProblemKind names why a task cannot run on the given nodes.
type ProblemKind string

const (
	// ProblemUnknownModel marks a task whose gpu_spec lists a model that no
	// node has. The task may still fit on another listed model.
	ProblemUnknownModel ProblemKind = "unknown-model"

	// ProblemNoNodeFits marks a task that no single node of an allowed
	// model can hold: too few GPUs, CPU or memory on every such node.
	ProblemNoNodeFits ProblemKind = "no-node-fits"
)

// ModelProblem is a task that CheckModels flags. A task may appear twice,
// once per kind.
type ModelProblem struct {
	Task Task
	Kind ProblemKind

	// Models lists the requested models that no node has. It is set for
	// ProblemUnknownModel only.
	Models []string
}

// String formats the problem as "file:line: task name: reason" for reports.
func (p ModelProblem) String() string {
	prefix := fmt.Sprintf("%s:%d: task %s", p.Task.Source, p.Task.Line, p.Task.Name)
	if p.Kind == ProblemUnknownModel {
		return fmt.Sprintf("%s: no node has GPU model %s", prefix, strings.Join(p.Models, ", "))
	}

	return fmt.Sprintf("%s: no single node of an allowed model has %d GPUs, %d CPU milli and %d MiB",
		prefix, max(p.Task.NumGPU, 1), p.Task.CPUMilli, p.Task.MemoryMiB)
}

// nodeShape is the capacity of a node. Many nodes have the same shape, so
// tasks are checked against the distinct shapes only.
type nodeShape struct {
	model     string
	gpus      int
	cpuMilli  int64
	memoryMiB int64
}

// CheckModels returns the GPU tasks that cannot run on the nodes, in task
// order, so that a replay reports them instead of dropping them silently.
// A task whose listed models all lack nodes gets ProblemUnknownModel only,
// since ProblemNoNodeFits would add nothing. CPU-only tasks are not
// checked, because the replay skips them and the node lists may hold GPU
// nodes only.
func CheckModels(tasks []Task, nodes []Node) []ModelProblem {
	shapes := distinctShapes(nodes)
	models := map[string]bool{}
	for _, shape := range shapes {
		models[shape.model] = true
	}

	var problems []ModelProblem
	for _, task := range tasks {
		if task.IsGPU() {
			problems = append(problems, checkTask(task, shapes, models)...)
		}
	}

	return problems
}

func checkTask(task Task, shapes []nodeShape, models map[string]bool) []ModelProblem {
	var problems []ModelProblem
	var missing []string
	for _, model := range task.AllowedModels {
		if !models[model] {
			missing = append(missing, model)
		}
	}

	if len(missing) > 0 {
		problems = append(problems, ModelProblem{Task: task, Kind: ProblemUnknownModel, Models: missing})
	}
	if len(missing) > 0 && len(missing) == len(task.AllowedModels) {
		return problems
	}

	if !fitsAnyShape(task, shapes) {
		problems = append(problems, ModelProblem{Task: task, Kind: ProblemNoNodeFits})
	}

	return problems
}

func fitsAnyShape(task Task, shapes []nodeShape) bool {
	for _, shape := range shapes {
		if allowsModel(task, shape.model) && fits(task, shape) {
			return true
		}
	}

	return false
}

func allowsModel(task Task, model string) bool {
	if task.AllowedModels == nil {
		return true
	}

	for _, allowed := range task.AllowedModels {
		if allowed == model {
			return true
		}
	}

	return false
}

// fits reports whether an empty node of the shape holds the task. A shared
// task needs one GPU with room for its share, which an empty GPU has.
func fits(task Task, shape nodeShape) bool {
	return shape.gpus >= max(task.NumGPU, 1) &&
		shape.cpuMilli >= task.CPUMilli &&
		shape.memoryMiB >= task.MemoryMiB
}

// distinctShapes returns the capacities of the GPU nodes without repeats,
// in first-seen order.
func distinctShapes(nodes []Node) []nodeShape {
	seen := map[nodeShape]bool{}
	var shapes []nodeShape
	for _, node := range nodes {
		shape := nodeShape{node.Model, node.GPUs, node.CPUMilli, node.MemoryMiB}
		if node.GPUs == 0 || seen[shape] {
			continue
		}

		seen[shape] = true
		shapes = append(shapes, shape)
	}

	return shapes
}
