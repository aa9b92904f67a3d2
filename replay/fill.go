package replay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// placedWait is how long fill mode waits for a job it submitted to run before it judges
// the job stuck.
const placedWait = 30 * time.Second

// placedOrStuck waits until the job of a fill-mode entry runs, or until it is clear that it
// will not. It returns "" when the job runs, and otherwise why the fill stops there, worded
// to follow the task's name.
func (r *Replayer) placedOrStuck(ctx context.Context, job store.Job) (string, error) {
	deadline := time.Now().Add(placedWait)
	for {
		got, err := r.store.GetJob(ctx, job.ID)
		if err != nil {
			return "", fmt.Errorf("read fill-mode job %s: %w", job.ID, err)
		}
		if reason, final := fillVerdict(got); final {
			return reason, nil
		}
		if !time.Now().Before(deadline) {
			return r.notRunning(ctx, got), nil
		}
		if err := sleepUntil(ctx, time.Now().Add(20*time.Millisecond)); err != nil {
			return "", err
		}
	}
}

// fillVerdict judges one reading of a fill-mode job, and reports whether the judgement is
// final. No fill-mode job ends, so once waitForCapacity has seen the replay's nodes counted,
// no GPU, concurrency slot or budget frees up, and a job left queued with a wait reason
// stays queued.
func fillVerdict(job store.Job) (string, bool) {
	reason := deref(job.WaitReason)
	switch {
	case job.Status == store.JobRunning && job.StartedAt != nil:
		return "", true
	case job.Status == store.JobQueued && isCapacityReason(reason):
		return "found no room: " + reason, true
	case job.Status == store.JobQueued && reason != "":
		return "waits in the queue, not for room: " + reason, true
	case job.Status != store.JobQueued && job.Status != store.JobRunning:
		return "ended as " + string(job.Status) + " before it ran", true
	}
	return "", false
}

func isCapacityReason(reason string) bool {
	return strings.HasPrefix(reason, scheduler.ReasonNoCapacity) ||
		strings.HasPrefix(reason, scheduler.ReasonTooLarge) || strings.HasPrefix(reason, scheduler.ReasonReserved)
}

// notRunning describes why a fill-mode job did not run within placedWait. An admitted job
// whose container has not started can have a pod that kube-scheduler cannot place, because
// the scheduler counts free GPUs per model and so admits a job whose GPUs are free in total
// but not on one node. The pod's scheduling condition, quoted in the result, shows that.
func (r *Replayer) notRunning(ctx context.Context, job store.Job) string {
	if job.Status == store.JobQueued {
		return fmt.Sprintf("was still queued after %s, with no wait reason recorded", placedWait)
	}
	var pod, namespace string
	err := r.store.Pool().QueryRow(ctx, sqlLatestPod, job.ID).Scan(&pod, &namespace)
	if err != nil {
		return fmt.Sprintf("was admitted, but did not run within %s (read its pod's name: %v)", placedWait, err)
	}
	return fmt.Sprintf("was admitted, but did not run within %s: pod %s/%s %s", placedWait,
		namespace, pod, r.describePod(ctx, namespace, pod))
}

// sqlLatestPod returns the pod name and namespace of a job's latest run.
const sqlLatestPod = `
SELECT r.pod_name, p.k8s_namespace
FROM runs r
JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
JOIN projects p ON p.id = j.project_id
WHERE r.job_id = $1
ORDER BY r.run_number DESC LIMIT 1`

// fill submits entries one at a time, each after the previous runs, and stops at the first
// that does not run, because it finds no room, waits in the queue for another reason, or
// its pod finds no node. Nothing ends: fill-mode jobs run until the replay stops them.
func (r *Replayer) fill(ctx context.Context, entries []trace.Entry, done int, rec *recorder) (int, error) {
	if err := r.waitForCapacity(ctx); err != nil {
		return done, err
	}
	for i := done; i < len(entries); i++ {
		job, err := r.submit(ctx, entries[i])
		if err != nil {
			return i, err
		}
		rec.submitted.Add(1)
		stopReason, err := r.placedOrStuck(ctx, job)
		if err != nil {
			return i + 1, err
		}
		if stopReason != "" {
			r.fillStop = fmt.Sprintf("task %d of %d (%s) %s", i+1, len(entries), entries[i].Task.Name, stopReason)
			fmt.Fprintln(r.cfg.Progress, r.fillStop)
			return i + 1, nil
		}
	}
	r.fillStop = "every task found room"
	return len(entries), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// capacityWait bounds how long fill mode waits for the daemon to count the replay's nodes.
const capacityWait = 2 * time.Minute

// waitForCapacity waits until the database counts at least the GPUs of the replay's nodes
// for each model. The daemon counts the GPUs of Ready nodes some time after they become
// Ready, and until then the scheduler gives a fill-mode job a wait reason such as "no node
// has an allowed GPU model", which fill mode would take as final.
func (r *Replayer) waitForCapacity(ctx context.Context) error {
	want := map[string]int64{}
	for _, n := range r.plan.nodes {
		want[n.Model] += int64(n.GPUs) * 1000
	}
	deadline := time.Now().Add(capacityWait)
	for {
		missing, err := r.missingCapacity(ctx, want)
		if err != nil || missing == "" {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("the database does not count the replay's nodes after %s (%s): "+
				"check that schedulerd runs against this database and cluster", capacityWait, missing)
		}
		if err := sleepUntil(ctx, time.Now().Add(200*time.Millisecond)); err != nil {
			return fmt.Errorf("wait for the daemon to count the replay's nodes: %w", err)
		}
	}
}

// missingCapacity names the first model, in name order, whose counted capacity is below
// want, or returns "" when every model has its capacity.
func (r *Replayer) missingCapacity(ctx context.Context, want map[string]int64) (string, error) {
	models, err := r.store.ListGPUModels(ctx)
	if err != nil {
		return "", fmt.Errorf("read GPU capacity: %w", err)
	}
	counted := map[string]int64{}
	for _, m := range models {
		counted[m.Model] = m.CapacityMilli
	}
	for _, model := range slices.Sorted(maps.Keys(want)) {
		if counted[model] < want[model] {
			return fmt.Sprintf("%s: %d of %d GPU thousandths counted", model, counted[model], want[model]), nil
		}
	}
	return "", nil
}
