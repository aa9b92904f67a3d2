package replay

import (
	"fmt"
	"sort"

	"github.com/schedulerd/schedulerd/replay/report"
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

// taskCounts counts trace tasks. read counts the tasks of the file up to the last GPU
// task the run takes, and cpuOnly the CPU-only tasks among them, so that a limited run
// does not count as skipped the tasks past its limit.
type taskCounts struct {
	total, read, gpu, cpuOnly, problems int
	// limit is the -limit that cut the GPU tasks short, or 0 when the run takes them all.
	limit int
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
	gpuTasks := p.takeGPUTasks(tasks, cfg.Limit)

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

// takeGPUTasks returns the GPU tasks in file order, at most limit of them when limit is
// positive, and counts the tasks read: when the limit leaves GPU tasks out, the read part
// ends with the last GPU task taken.
func (p *plan) takeGPUTasks(tasks []trace.Task, limit int) []trace.Task {
	p.counts.total = len(tasks)
	p.counts.read = len(tasks)
	var gpuTasks []trace.Task
	lastTaken := -1
	for i, t := range tasks {
		if !t.IsGPU() {
			continue
		}
		if limit > 0 && len(gpuTasks) == limit {
			p.counts.read = lastTaken + 1
			p.counts.limit = limit
			break
		}
		gpuTasks = append(gpuTasks, t)
		lastTaken = i
	}
	p.counts.gpu = len(gpuTasks)
	p.counts.cpuOnly = p.counts.read - len(gpuTasks)
	return gpuTasks
}

// reportCounts returns the counts for the report, with the number of jobs submitted.
func (c taskCounts) reportCounts(submitted int) report.TaskCounts {
	return report.TaskCounts{Total: c.total, Limit: c.limit, Read: c.read, GPU: c.gpu,
		CPUOnlySkipped: c.cpuOnly, Submitted: submitted, Problems: c.problems}
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
