package replay

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// placedOrStuck waits until the job of a fill-mode entry runs, or until it is clear it
// cannot: it waits in the queue for capacity, or its pod cannot be scheduled.
func (r *Replayer) placedOrStuck(ctx context.Context, job store.Job) (bool, string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		got, err := r.store.GetJob(ctx, job.ID)
		if err != nil {
			return false, "", err
		}
		if got.Status == store.JobRunning && got.StartedAt != nil {
			return true, "", nil
		}
		if reason := deref(got.WaitReason); got.Status == store.JobQueued && isCapacityReason(reason) {
			return false, reason, nil
		}
		if got.Status != store.JobQueued && got.Status != store.JobRunning {
			return false, "job " + string(got.Status), nil
		}
		if err := sleepUntil(ctx, time.Now().Add(20*time.Millisecond)); err != nil {
			return false, "", err
		}
	}
	return false, "not running after 30 s (its pod found no node)", nil
}

func isCapacityReason(reason string) bool {
	return strings.HasPrefix(reason, "no free capacity") || strings.HasPrefix(reason, "larger than any node") ||
		strings.HasPrefix(reason, "GPU capacity held")
}

// fill submits entries one at a time, each after the previous runs, and stops at the first
// that finds no room. Nothing ends: fill-mode jobs run until the replay stops them.
func (r *Replayer) fill(ctx context.Context, entries []trace.Entry, done int, rec *recorder) (int, error) {
	for i := done; i < len(entries); i++ {
		job, err := r.submit(ctx, entries[i])
		if err != nil {
			return i, err
		}
		rec.submitted.Add(1)
		placed, why, err := r.placedOrStuck(ctx, job)
		if err != nil {
			return i + 1, err
		}
		if !placed {
			r.fillStop = fmt.Sprintf("task %d of %d (%s) found no room: %s", i+1, len(entries), entries[i].Task.Name, why)
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
