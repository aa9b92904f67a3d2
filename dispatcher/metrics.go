package dispatcher

import (
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// runEndCause maps a run's end, as Judge and the reconcile steps write it, and what the
// end did to its job, to the cause label of the runs-ended metric.
func runEndCause(end store.RunEnd, result store.RunEndResult) string {
	if result.PreemptionLimitReached {
		return metrics.CausePreemptionLimit
	}
	switch end.Status {
	case store.RunCompleted:
		return metrics.CauseCompleted
	case store.RunCancelled:
		// A pause ends the run as cancelled too, but the job can resume, so it has its own cause.
		if end.Reason == jobStopReason(store.JobPaused) {
			return metrics.CausePaused
		}
		return metrics.CauseCancelled
	case store.RunFailed:
		return failureCause(end.Reason)
	}

	// Preempted: an eviction (the reason is "Evicted" or a DisruptionTarget reason such as
	// EvictionByEvictionAPI), an unschedulable pod, or any other disruption.
	switch {
	case strings.HasPrefix(end.Reason, "unschedulable for"):
		return metrics.CauseUnschedulable
	case strings.Contains(end.Reason, "Evict"):
		return metrics.CauseEvicted
	}
	return metrics.CausePreempted
}

// jobStopReason is the end reason of a live run whose job was paused or cancelled, such as
// "job paused". runEndCause reads it back to tell a pause from a cancel.
func jobStopReason(status store.JobStatus) string { return "job " + string(status) }

// failureCause returns the cause of a failed run from its reason, separating the failures
// that operators act on differently (memory, deadline, image) from the others.
func failureCause(reason string) string {
	switch {
	case strings.HasPrefix(reason, "OOMKilled"):
		return metrics.CauseOOMKilled
	case strings.HasPrefix(reason, "DeadlineExceeded"):
		return metrics.CauseDeadlineExceeded
	}
	for _, wait := range imagePullReasons {
		// waitFailure writes "Reason: message" for an immediate failure and "Reason for
		// 5m0s since TIME: message" after the grace.
		if strings.HasPrefix(reason, wait+":") || strings.HasPrefix(reason, wait+" for ") {
			return metrics.CauseImagePull
		}
	}
	return metrics.CauseFailed
}

// imagePullReasons are the container waiting reasons of permanentWaitReasons and
// transientWaitReasons that mean the image could not be pulled.
var imagePullReasons = []string{"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

// PodsByPhase counts the pods in the informer cache by phase. It returns false until the
// first resync has finished, which only happens on the replica whose dispatcher runs.
func (d *Dispatcher) PodsByPhase() (map[string]int, bool) {
	if !d.Synced() {
		return nil, false
	}
	pods, err := d.pods.List(labels.Everything())
	if err != nil {
		return nil, false
	}
	byPhase := make(map[string]int, len(metrics.PodPhases))
	for _, p := range pods {
		phase := string(p.Status.Phase)
		if phase == "" {
			phase = "Pending"
		}
		byPhase[phase]++
	}
	return byPhase, true
}
