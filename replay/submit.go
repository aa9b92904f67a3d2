package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// runSlack is added to each simulated run's length to make its max_runtime_seconds: pod
// timestamps have whole seconds, so a run may measure a second longer than asked. The slack
// is reserved from the budget with every job, so it is kept small: at a speedup of 20,000,
// each second stands for five and a half trace hours.
const runSlack = 2

// Submission returns the job of one schedule entry: the trace task's resources, priority
// and project, a simulated run of the entry's wall-clock length that exits as the task did,
// and one attempt, since the trace records one outcome per task.
func Submission(e trace.Entry) (store.Submission, jobspec.Spec, error) {
	t := e.Task
	req := t.GPURequest()
	spec := jobspec.Spec{
		Image:       "trace/" + t.Name,
		MaxAttempts: 1,
		Resources: jobspec.Resources{CPUMilli: t.CPUMilli, MemoryMiB: t.MemoryMiB,
			GPUModels: t.AllowedModels},
	}
	if t.IsShared() {
		spec.Resources.GPUShareMilli = req.SharedMilli
	} else {
		spec.Resources.GPUs = req.Whole
	}
	if e.RunForever {
		spec.MaxRuntimeSeconds = jobspec.MaxRuntimeLimit
	} else {
		seconds := SimulatedSeconds(e)
		spec.MaxRuntimeSeconds = int(min(seconds+runSlack, jobspec.MaxRuntimeLimit))
		spec.Simulation = &jobspec.Simulation{RunSeconds: float64(seconds), ExitCode: t.ExitCode()}
	}
	if err := spec.Validate(); err != nil {
		return store.Submission{}, spec, fmt.Errorf("task %s: %w", t.Name, err)
	}

	raw, err := json.Marshal(spec)
	if err != nil {
		return store.Submission{}, spec, err
	}
	tags, _ := json.Marshal(map[string]string{"trace_task": t.Name, "qos": string(t.QoS), "tier": string(t.QoS.Tier())})
	return store.Submission{
		ProjectID: string(trace.Project(t)), IdempotencyKey: t.IdempotencyKey(), JobType: "fine_tune",
		Priority: t.QoS.Priority(), Config: raw, Tags: tags, GPUMilli: spec.GPUMilli(),
		GPUModels: spec.Resources.GPUModels, MaxRuntimeSeconds: spec.MaxRuntimeSeconds,
		MaxAttempts: spec.Attempts(), MaxPreemptions: spec.Preemptions(), CPUMilli: t.CPUMilli,
		MemoryMiB: t.MemoryMiB,
	}, spec, nil
}

// SimulatedSeconds is the whole seconds a simulated pod of the entry runs: the pod
// annotation KWOK reads takes whole seconds.
func SimulatedSeconds(e trace.Entry) int64 {
	return int64(math.Round(e.Run.Seconds()))
}

// SimulatedGPUHours is the GPU-hours of the entry's simulated run, its GPUs times
// SimulatedSeconds, which accounting should charge. The rounding to whole seconds makes it
// differ from the trace run divided by the speedup.
func SimulatedGPUHours(e trace.Entry) float64 {
	return float64(e.Task.GPUMilli()) / 1000 * float64(SimulatedSeconds(e)) / 3600
}

// submitAll submits the schedule and returns how many jobs it holds. Entries whose key
// the database already has (a replay interrupted and started again) are not submitted
// again, and the clock starts at the first entry still missing.
func (r *Replayer) submitAll(ctx context.Context, rec *recorder) (int, error) {
	entries := r.plan.schedule.Entries
	done, err := r.alreadySubmitted(ctx, entries)
	if err != nil {
		return 0, err
	}
	// NOTE: a continued run's duration, samples and daemon CPU time cover only itself,
	// while the figures read from the database cover every run. The report states this.
	r.continued = done
	if done > 0 {
		fmt.Fprintf(r.cfg.Progress, "continuing: %d of %d tasks were submitted by an earlier run\n", done, len(entries))
	}
	if r.plan.schedule.StopAtFirstUnplaced {
		return r.fill(ctx, entries, done, rec)
	}

	offset := time.Duration(0)
	if done < len(entries) {
		offset = entries[done].Submit
	}
	start := time.Now()
	for i := done; i < len(entries); i++ {
		if err := sleepUntil(ctx, start.Add(entries[i].Submit-offset)); err != nil {
			return i, err
		}
		if _, err := r.submit(ctx, entries[i]); err != nil {
			return i, err
		}
		rec.submitted.Add(1)
	}
	return len(entries), nil
}

// alreadySubmitted counts the leading entries whose idempotency keys are stored.
func (r *Replayer) alreadySubmitted(ctx context.Context, entries []trace.Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Task.IdempotencyKey()
	}
	var n int
	err := r.store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM job_idempotency_keys WHERE idempotency_key = ANY($1)`, keys).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count submitted tasks: %w", err)
	}
	return n, nil
}

// submit stores one entry's job; a key already stored counts as submitted.
func (r *Replayer) submit(ctx context.Context, e trace.Entry) (store.Job, error) {
	sub, _, err := Submission(e)
	if err != nil {
		return store.Job{}, err
	}
	job, err := r.store.SubmitJob(ctx, sub)
	var dup *store.DuplicateKeyError
	if errors.As(err, &dup) {
		return r.store.GetJob(ctx, dup.JobID)
	}
	return job, err
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
