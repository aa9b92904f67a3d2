package dispatcher

import (
	"testing"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

func TestRunEndCause(t *testing.T) {
	for _, c := range []struct {
		end  store.RunEnd
		want string
	}{
		{store.RunEnd{Status: store.RunCompleted, Reason: "Completed"}, metrics.CauseCompleted},
		{store.RunEnd{Status: store.RunCancelled, Reason: "job cancelled"}, metrics.CauseCancelled},
		{store.RunEnd{Status: store.RunCancelled, Reason: "job paused"}, metrics.CausePaused},
		{store.RunEnd{Status: store.RunFailed, Reason: "OOMKilled (exit code 137)"}, metrics.CauseOOMKilled},
		{store.RunEnd{Status: store.RunFailed, Reason: "Error (exit code 1)"}, metrics.CauseFailed},
		{store.RunEnd{Status: store.RunFailed, Reason: "ImagePullBackOff: pull access denied"}, metrics.CauseImagePull},
		{store.RunEnd{Status: store.RunFailed, Reason: "ErrImagePull: not found"}, metrics.CauseImagePull},
		{store.RunEnd{Status: store.RunFailed, Reason: "ImagePullBackOff for 5m0s since 2026-12-05T10:00:00Z: rate limited"}, metrics.CauseImagePull},
		{store.RunEnd{Status: store.RunFailed, Reason: "CreateContainerError for 5m0s since 2026-12-05T10:00:00Z: runtime timeout"}, metrics.CauseFailed},
		// A container config error is permanent but no image problem.
		{store.RunEnd{Status: store.RunFailed, Reason: "CreateContainerConfigError: no secret"}, metrics.CauseFailed},
		{store.RunEnd{Status: store.RunFailed, Reason: "DeadlineExceeded: ran past max_runtime_seconds"}, metrics.CauseDeadlineExceeded},
		{store.RunEnd{Status: store.RunPreempted, Reason: "Evicted"}, metrics.CauseEvicted},
		{store.RunEnd{Status: store.RunPreempted, Reason: "EvictionByEvictionAPI"}, metrics.CauseEvicted},
		{store.RunEnd{Status: store.RunPreempted, Reason: "unschedulable for 5m0s: 0/3 nodes"}, metrics.CauseUnschedulable},
		{store.RunEnd{Status: store.RunPreempted, Reason: "PreemptionByScheduler"}, metrics.CausePreempted},
		{store.RunEnd{Status: store.RunPreempted, Reason: "node gpu-7 lost"}, metrics.CausePreempted},
		{store.RunEnd{Status: store.RunPreempted, Reason: "pod deleted"}, metrics.CausePreempted},
	} {
		if got := runEndCause(c.end, store.RunEndResult{JobStatus: store.JobQueued}); got != c.want {
			t.Errorf("runEndCause(%s, %q) = %s, want %s", c.end.Status, c.end.Reason, got, c.want)
		}
	}
}

// A preempted run whose job failed at its max_preemptions counts under its own cause,
// whatever preempted it.
func TestRunEndCausePreemptionLimit(t *testing.T) {
	failed := store.RunEndResult{JobStatus: store.JobFailed, PreemptionLimitReached: true}
	for _, reason := range []string{"Evicted", "unschedulable for 5m0s: 0/3 nodes", "pod deleted"} {
		end := store.RunEnd{Status: store.RunPreempted, Reason: reason}
		if got := runEndCause(end, failed); got != metrics.CausePreemptionLimit {
			t.Errorf("runEndCause(preempted, %q) with the job failed at its limit = %s, want %s",
				reason, got, metrics.CausePreemptionLimit)
		}
	}
}
