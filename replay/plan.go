package replay

import (
	"fmt"
	"sort"

	"github.com/schedulerd/schedulerd/replay/trace"
)

// plan is what will be replayed: the nodes, the schedule of GPU tasks and the tasks set
// aside with the reason.
type plan struct {
	nodes    []trace.Node
	schedule trace.Schedule
	counts   taskCounts
	problems []string
}

type taskCounts struct {
	total, gpu, cpuOnly, problems int
}

func loadPlan(cfg Config) (*plan, error) {
	nodes, err := trace.ReadNodes(cfg.NodesFile)
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	tasks, err := trace.ReadTasks(cfg.TasksFile)
	if err != nil {
		return nil, fmt.Errorf("read tasks: %w", err)
	}

	p := &plan{nodes: nodes}
	p.counts.total = len(tasks)
	gpuTasks := make([]trace.Task, 0, len(tasks))
	for _, t := range tasks {
		if t.IsGPU() {
			gpuTasks = append(gpuTasks, t)
		}
	}
	p.counts.cpuOnly = len(tasks) - len(gpuTasks)
	if cfg.Limit > 0 && cfg.Limit < len(gpuTasks) {
		gpuTasks = gpuTasks[:cfg.Limit]
	}
	p.counts.gpu = len(gpuTasks)

	gpuTasks = p.setAsideProblems(gpuTasks, nodes)
	sort.SliceStable(gpuTasks, func(i, j int) bool { return gpuTasks[i].CreationTime < gpuTasks[j].CreationTime })

	if cfg.Mode == trace.ModeFill {
		p.schedule, err = trace.Fill(gpuTasks)
	} else {
		p.schedule, err = trace.Pace(gpuTasks, cfg.Speedup, cfg.Load)
	}
	if err != nil {
		return nil, fmt.Errorf("plan the replay: %w", err)
	}
	return p, nil
}

// setAsideProblems reports the tasks that no node can hold and returns the others.
func (p *plan) setAsideProblems(tasks []trace.Task, nodes []trace.Node) []trace.Task {
	problems := trace.CheckModels(tasks, nodes)
	if len(problems) == 0 {
		return tasks
	}
	skip := make(map[string]bool, len(problems))
	for _, pr := range problems {
		p.problems = append(p.problems, pr.String())
		// A task that lists another model some node has is still submitted.
		if pr.Kind == trace.ProblemNoNodeFits || len(pr.Models) == len(pr.Task.AllowedModels) {
			skip[pr.Task.Name] = true
		}
	}
	p.counts.problems = len(skip)

	kept := tasks[:0]
	for _, t := range tasks {
		if !skip[t.Name] {
			kept = append(kept, t)
		}
	}
	return kept
}
