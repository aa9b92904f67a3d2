package api

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// Explanation is the response to "why is my job waiting": the facts admission decides on,
// read in one snapshot, and the blockers they add up to now.
type Explanation struct {
	JobID   uuid.UUID `json:"job_id"`
	Project string    `json:"project"`
	Status  string    `json:"status"`
	// WaitReason is the reason the scheduler stored at its last look at the job, or the
	// dispatcher's for a running job whose pod waits for GPUs that other pods use.
	WaitReason *string `json:"wait_reason,omitempty"`
	// Position is absent unless the job is queued.
	Position *Position `json:"queue_position,omitempty"`
	// Budget and Concurrency are absent when the project has no quota.
	Budget        *BudgetState      `json:"budget,omitempty"`
	Concurrency   *ConcurrencyState `json:"concurrency,omitempty"`
	Drained       bool              `json:"drained"`
	DrainedAt     *time.Time        `json:"drained_at,omitempty"`
	DrainDeadline *time.Time        `json:"drain_deadline,omitempty"`
	GPUMilli      int               `json:"gpu_milli"`
	// CPUMilli and MemoryMiB are the pod's request, which one node of a GPU model must offer.
	CPUMilli  int64 `json:"cpu_milli"`
	MemoryMiB int64 `json:"memory_mib"`
	// GPUModels are the models the job may use (all models when it names none), with their
	// free capacity now.
	GPUModels []ModelState `json:"gpu_models"`
	// Blockers are the scheduler's reasons that keep a queued job from starting now. None
	// for a queued job means the next dequeue may admit it, after the jobs ahead of it. A
	// paused job's blocker is its pause (BlockerPaused and the two beside it); other
	// statuses have none.
	Blockers []string `json:"blockers"`
	// Run is the job's pending or running run. A pending run of a running job was admitted
	// but its container has not started: its pod may wait for a node or an image.
	Run *LiveRun `json:"run,omitempty"`
	// LastRun is the job's latest ended run, which shows why a failed job failed; absent
	// until a run of the job has ended.
	LastRun *EndedRun `json:"last_run,omitempty"`
}

// EndedRun is a run that has ended, as the runs table records its end.
type EndedRun struct {
	Number      int        `json:"number"`
	Status      string     `json:"status"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
	// ExitCode is the container's exit code, absent when the run ended without one, such as
	// a run whose container never started.
	ExitCode *int `json:"exit_code,omitempty"`
	// EndReason is the dispatcher's reason for the end, such as "OOMKilled (exit code 137)"
	// or "job paused".
	EndReason *string `json:"end_reason,omitempty"`
}

// LiveRun is a run that has not ended.
type LiveRun struct {
	Number int    `json:"number"`
	Status string `json:"status"`
	Pod    string `json:"pod"`
	// PodCreatedAt is absent until the dispatcher has created the pod.
	PodCreatedAt *time.Time `json:"pod_created_at,omitempty"`
	// Node is absent until the container has started.
	Node     *string `json:"node,omitempty"`
	GPUModel *string `json:"gpu_model,omitempty"`
	// Stopping is present while the dispatcher stops the run's pod: how the run will end
	// and why, such as "cancelled: job paused". The job cannot be resumed until then.
	Stopping *string `json:"stopping,omitempty"`
}

// The blockers of paused jobs, which wait for nothing but a resume. BlockerPaused is a
// job's own pause. A trial that its hpo parent's pause paused waits for the parent's
// resume (BlockerPausedByParent). A paused hpo parent queues its trials again when resumed
// (BlockerPausedSearch). A job or hpo parent that an operator or admin paused also lists
// BlockerPauseHeld, because only an operator or admin can resume it.
const (
	BlockerPaused         = "job paused: POST /v1/jobs/{id}/resume (schedulerd job resume) queues it again"
	BlockerPausedByParent = "paused with its hpo parent (parent_job_id): the parent's resume queues it again"
	BlockerPausedSearch   = "hpo search paused: POST /v1/jobs/{id}/resume (schedulerd job resume) " +
		"queues again the trials its pause paused"
	BlockerPauseHeld = "paused by an operator or admin (paused_by_token): " +
		"only an operator or admin can resume it"
)

// Position is the place of a queued job in admission order: priority, then age.
type Position struct {
	Ahead          int64 `json:"ahead"`
	AheadInProject int64 `json:"ahead_in_project"`
	Queued         int64 `json:"queued"`
}

// BudgetState is the project's GPU-hour budget against what the job would reserve.
type BudgetState struct {
	GPUHoursBudget   float64 `json:"gpu_hours_budget"`
	GPUHoursUsed     float64 `json:"gpu_hours_used"`
	GPUHoursReserved float64 `json:"gpu_hours_reserved"`
	GPUHoursLeft     float64 `json:"gpu_hours_left"`
	// JobReservation is the GPU-hours admission would reserve for the job: its GPUs times
	// its max_runtime_seconds.
	JobReservation float64 `json:"job_reservation_gpu_hours"`
	Fits           bool    `json:"fits"`
}

// ConcurrencyState is the project's concurrency limit and how much of it is taken.
type ConcurrencyState struct {
	MaxConcurrentJobs int `json:"max_concurrent_jobs"`
	CurrentConcurrent int `json:"current_concurrent"`
	FreeSlots         int `json:"free_slots"`
}

// ModelState is one GPU model's capacity, in thousandths of a GPU.
type ModelState struct {
	Model            string `json:"model"`
	Nodes            int    `json:"nodes"`
	CapacityMilli    int64  `json:"capacity_milli"`
	AllocatedMilli   int64  `json:"allocated_milli"`
	FreeMilli        int64  `json:"free_milli"`
	LargestNodeMilli int64  `json:"largest_node_milli"`
	// LargestNodeCPUMilli and LargestNodeMemoryMiB are the most one node offers; they may
	// come from different nodes.
	LargestNodeCPUMilli  int64 `json:"largest_node_cpu_milli"`
	LargestNodeMemoryMiB int64 `json:"largest_node_memory_mib"`
	// NodeSizes are the sizes of the model's nodes that no other node of it covers. The
	// job's pod must fit one of them; the largest values above may come from different
	// nodes. Empty until the dispatcher has counted the nodes once.
	NodeSizes []NodeSize `json:"node_sizes"`
}

// NodeSize is one node's allocatable GPUs, CPU (both in thousandths) and memory.
type NodeSize struct {
	GPUMilli  int64 `json:"gpu_milli"`
	CPUMilli  int64 `json:"cpu_milli"`
	MemoryMiB int64 `json:"memory_mib"`
}

func (s *Server) explainJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	id, err := pathJobID(r)
	if err != nil {
		return err
	}
	facts, err := s.store.ExplainJob(r.Context(), id, s.cfg.StarvationBound)
	err = caller.hideOtherProject(err, facts.Job.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("job %s does not exist", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", explain(facts, s.cfg.StarvationBound))
	return nil
}

// pausedBlockers returns the blockers of the paused job j: what resumes it, and whether
// only an operator or admin may resume it.
func pausedBlockers(j store.Job) []string {
	blocker := BlockerPaused
	switch {
	case j.JobType == "hpo":
		blocker = BlockerPausedSearch
	case j.PausedByParent:
		blocker = BlockerPausedByParent
	}
	if j.PauseHeld() {
		return []string{blocker, BlockerPauseHeld}
	}
	return []string{blocker}
}

// explain turns the facts into the response. It mirrors the checks of scheduler.Policy, at
// the time of the facts' snapshot, with starvationBound as the policy's.
func explain(f store.JobExplanation, starvationBound time.Duration) Explanation {
	j := f.Job
	e := Explanation{JobID: j.ID, Project: j.ProjectID, Status: string(j.Status), WaitReason: waitReason(j),
		GPUMilli: j.GPUMilli, CPUMilli: f.CPUMilli, MemoryMiB: f.MemoryMiB, GPUModels: allowedModels(j, f.Models),
		Blockers: []string{}}
	if f.Position != nil {
		e.Position = &Position{Ahead: f.Position.Ahead, AheadInProject: f.Position.AheadInProject,
			Queued: f.Position.Queued}
	}
	period, budget, capacity := "", "", capacityBlocker(f)
	if f.Quota != nil {
		period = scheduler.PeriodReason(f.Quota.Quota, f.Now)
	}
	if q := f.Quota; q != nil {
		reservation := jobspec.ReservedGPUHours(j.GPUMilli, j.MaxRuntimeSeconds)
		// The renewal of an ended period resets the used hours, so the job fits if it fits
		// the renewed budget.
		renewed := q.Quota
		if period == scheduler.ReasonPeriodEnded {
			renewed.GPUHoursUsed = 0
		}
		e.Budget = &BudgetState{GPUHoursBudget: q.GPUHoursBudget, GPUHoursUsed: q.GPUHoursUsed,
			GPUHoursReserved: q.GPUHoursReserved, GPUHoursLeft: q.GPUHoursLeft(), JobReservation: reservation,
			Fits: jobspec.FitsBudget(q.GPUHoursBudget, renewed.GPUHoursUsed, q.GPUHoursReserved, reservation)}
		// A job that no node could run holds no budget, however long it waits.
		runnable := capacity != scheduler.ReasonNoModel && capacity != scheduler.ReasonTooLarge
		starving := j.GPUMilli > 0 && f.Now.Sub(f.QueuedAt) >= starvationBound && runnable
		budget = budgetBlocker(renewed, f.StarvingAhead, reservation, starving)
		e.Concurrency = &ConcurrencyState{MaxConcurrentJobs: q.MaxConcurrentJobs,
			CurrentConcurrent: q.CurrentConcurrent, FreeSlots: max(0, q.MaxConcurrentJobs-q.CurrentConcurrent)}
		e.Drained, e.DrainedAt, e.DrainDeadline = q.DrainedAt != nil, q.DrainedAt, q.DrainDeadline
	}
	switch j.Status {
	case store.JobQueued:
		e.Blockers = blockers(e, period, budget, capacity)
	case store.JobPaused:
		e.Blockers = pausedBlockers(j)
	}
	if r := f.LiveRun; r != nil {
		e.Run = &LiveRun{Number: r.RunNumber, Status: string(r.Status), Pod: r.Namespace + "/" + r.PodName,
			PodCreatedAt: r.PodCreatedAt, Node: r.WorkerNode, GPUModel: r.GPUModel}
		if stop, ok := r.StopEnd(); ok {
			stopping := string(stop.Status) + ": " + stop.Reason
			e.Run.Stopping = &stopping
		}
	}
	if r := f.LastEndedRun; r != nil {
		e.LastRun = &EndedRun{Number: r.RunNumber, Status: string(r.Status), CompletedAt: r.CompletedAt,
			ExitCode: r.ExitCode, EndReason: r.EndReason}
	}
	return e
}

func allowedModels(j store.Job, models []store.ModelCapacity) []ModelState {
	states := []ModelState{}
	for _, m := range models {
		if len(j.GPUModels) > 0 && !slices.Contains(j.GPUModels, m.Model) {
			continue
		}
		sizes := make([]NodeSize, len(m.NodeShapes))
		for i, s := range m.NodeShapes {
			sizes[i] = NodeSize(s)
		}
		states = append(states, ModelState{Model: m.Model, Nodes: m.Nodes, CapacityMilli: m.CapacityMilli,
			AllocatedMilli: m.AllocatedMilli, FreeMilli: max(0, m.CapacityMilli-m.AllocatedMilli),
			LargestNodeMilli: m.LargestNodeMilli, LargestNodeCPUMilli: m.LargestNodeCPUMilli,
			LargestNodeMemoryMiB: m.LargestNodeMemoryMiB, NodeSizes: sizes})
	}
	return states
}

// blockers lists what holds a queued job back, quota first, as admission checks it.
func blockers(e Explanation, period, budget, capacity string) []string {
	var found []string
	switch {
	case e.Budget == nil:
		found = append(found, scheduler.ReasonNoQuota)
	default:
		if e.Drained {
			found = append(found, scheduler.ReasonDrained)
		}
		if period != "" {
			found = append(found, period)
		}
		if e.Concurrency.FreeSlots == 0 {
			found = append(found, scheduler.ReasonConcurrency)
		}
		if budget != "" {
			found = append(found, budget)
		}
	}
	if capacity != "" {
		found = append(found, capacity)
	}
	if found == nil {
		return []string{}
	}
	return found
}

// budgetBlocker is the budget's reason, if any, as admission gives it to a job that
// reserves reservation. The older starving jobs of the project, whose reservations are
// starvingAhead, hold their share of the budget as the policy would hold it if it read
// them first. The jobs ahead that admission would admit are not counted.
func budgetBlocker(q store.Quota, starvingAhead []float64, reservation float64, starving bool) string {
	held := 0.0
	for _, hours := range starvingAhead {
		if _, hold := scheduler.BudgetRefusal(q, held, hours, true); hold {
			held += hours
		}
	}
	reason, _ := scheduler.BudgetRefusal(q, held, reservation, starving)
	return reason
}

// capacityBlocker is the GPU capacity's reason, if any, as admission's model choice gives it.
func capacityBlocker(f store.JobExplanation) string {
	j := f.Job
	if j.GPUMilli == 0 {
		return ""
	}
	withNodes, fits := false, false
	for _, m := range f.Models {
		if m.Nodes == 0 || (len(j.GPUModels) > 0 && !slices.Contains(j.GPUModels, m.Model)) {
			continue
		}
		withNodes = true
		if !m.Holds(j.GPUMilli, f.CPUMilli, f.MemoryMiB) {
			continue
		}
		fits = true
		if m.CapacityMilli-m.AllocatedMilli >= int64(j.GPUMilli) {
			return ""
		}
	}
	switch {
	case !withNodes:
		return scheduler.ReasonNoModel
	case !fits:
		return scheduler.ReasonTooLarge
	}
	return scheduler.ReasonNoCapacity
}
