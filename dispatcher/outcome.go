package dispatcher

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/schedulerd/schedulerd/store"
)

// Verdict is the state of a run as its pod reports it.
type Verdict int

const (
	// Waiting: the pod is pending and nothing is wrong yet.
	Waiting Verdict = iota
	// Started: a container is running; the run's GPU clock starts at StartedAt.
	Started
	// Ended: the run is over; End says how.
	Ended
	// Stuck: the pod has been unschedulable past the timeout. Delete it and requeue, unless
	// only GPUs that other pods use keep it off (waitsForGPUs): then it keeps waiting.
	Stuck
	// Terminating: someone else is deleting the pod. The run ends, as End says, once the pod
	// is gone, so that a requeued job never has a second pod while the first still runs, or
	// once the pod outlives its deletion deadline by StuckTerminating.
	Terminating
)

// StuckTerminating is how long past its deletion deadline a pod may stay before its run
// ends anyway. Only a kubelet removes a pod deleted with a grace period, so the pod of an
// unreachable node whose Node object stays (taint-based eviction after the node went
// NotReady, say) stays until the node comes back. Its run would hold its quota
// and its job would never resume. The pod's object stays for its kubelet, or an operator,
// to remove.
// NOTE: a kubelet cut off by a network partition may still run the old container while
// the job's next run starts elsewhere, and the old container's hours after the deadline
// are not charged.
const StuckTerminating = 5 * time.Minute

// Observation is the judgement of one pod.
type Observation struct {
	Verdict   Verdict
	StartedAt time.Time // when a container started, zero if none did
	Node      string
	End       store.RunEnd // with Verdict Ended or Stuck; RunID is left to the caller
}

// Limits are the durations after which Judge gives up on a pod that waits.
type Limits struct {
	// UnschedulableTimeout is how long a pod may stay unschedulable.
	UnschedulableTimeout time.Duration
	// ImagePullGrace is how long a container may wait for a cause that mayPass, counted from
	// Judge's waitStarted.
	ImagePullGrace time.Duration
}

// Waiting reasons of a container that no retry can fix: the image name is invalid, the pull
// policy forbids a pull, or the container's config is invalid. A config error that
// missingConfigObject matches is the exception: its Secret or ConfigMap may still appear.
var permanentWaitReasons = map[string]bool{
	"InvalidImageName":           true,
	"ErrImageNeverPull":          true,
	"CreateContainerConfigError": true,
}

// Waiting reasons of a container whose cause may pass, such as a registry timeout or rate
// limit, or a container runtime error: the kubelet retries the pull or the creation with a
// back-off, so the run fails only after Limits.ImagePullGrace.
var transientWaitReasons = map[string]bool{
	"ErrImagePull":         true,
	"ImagePullBackOff":     true,
	"CreateContainerError": true,
}

// missingConfigObject matches the kubelet's messages (Kubernetes 1.37: kubelet_pods.go and
// its secret and configmap managers) for a CreateContainerConfigError whose Secret or
// ConfigMap, or a key in one, is missing, or whose cache has not synced. Someone else creates
// the Secret that a job's secret_env names, such as a controller that copies it from a
// secret store, possibly after the pod. The kubelet retries and starts the container once it exists,
// so such a wait gets the grace of a transient reason.
var missingConfigObject = regexp.MustCompile(
	`(secret|configmap) "[^"]*" not found|couldn't find key .* in (Secret|ConfigMap) |failed to sync (secret|configmap) cache`)

// mayPass reports whether a container waits for a cause that the kubelet's retries may
// outlast.
func mayPass(w *corev1.ContainerStateWaiting) bool {
	if w.Reason == "CreateContainerConfigError" {
		return missingConfigObject.MatchString(w.Message)
	}
	return transientWaitReasons[w.Reason]
}

// Judge reads a pod's status and the facts of its node. now and limits decide when a pending
// pod that cannot be placed, or whose container cannot be created, is given up. A pod being
// deleted that has not finished counts as preempted. schedulerd deletes a live run's pod only
// after recording the run's end or stop, and such a run is not judged this way, so someone
// else (an operator, an eviction, kube-scheduler making room) removed it. node decides whether
// such a preemption counts toward the job's max_preemptions (uncountedDisruption).
// waitStarted is when Limits.ImagePullGrace began to count for the pod, as the run records
// it (store.Run.ContainerWaitStartedAt). Zero counts the grace from the pod's start.
func Judge(pod *corev1.Pod, node NodeFacts, now time.Time, limits Limits, waitStarted time.Time) Observation {
	obs := Observation{Node: pod.Spec.NodeName, StartedAt: containerStart(pod)}

	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		obs.Verdict, obs.End = Ended, finishedEnd(pod, node, now)
		return obs
	}

	if pod.DeletionTimestamp != nil {
		obs.Verdict = Terminating
		obs.End = disruptionEnd(pod, node, deletionReason(pod), now)
		if deadline := pod.DeletionTimestamp.Time; now.Sub(deadline) >= StuckTerminating {
			obs.Verdict, obs.End = Ended, stuckEnd(pod, node, deadline, now)
		}
		return obs
	}
	if reason, failed := waitFailure(pod, now, limits.ImagePullGrace, waitStarted); failed {
		obs.Verdict = Ended
		obs.End = store.RunEnd{Status: store.RunFailed, EndedAt: now, Reason: reason, Retryable: false}
		return obs
	}
	if pod.Status.Phase == corev1.PodRunning && !obs.StartedAt.IsZero() {
		obs.Verdict = Started
		return obs
	}
	if since, message, ok := unschedulableSince(pod); ok && now.Sub(since) >= limits.UnschedulableTimeout {
		obs.Verdict = Stuck
		obs.End = store.RunEnd{Status: store.RunPreempted, EndedAt: now,
			Reason: fmt.Sprintf("unschedulable for %s: %s", now.Sub(since).Round(time.Second), message)}
	}
	return obs
}

// stuckEnd returns the end of a pod still terminating StuckTerminating past its deletion
// deadline. The container was due to be killed at the deadline, so its hours end there. The
// preemption does not count when the pod's node is not ready or has the unreachable or
// not-ready taint, because the job did not cause that.
// NOTE: on a node that reports Ready the end counts, although a kubelet that cannot stop the
// container (a hung container runtime, say) is not the job's doing either.
func stuckEnd(pod *corev1.Pod, node NodeFacts, deadline, now time.Time) store.RunEnd {
	reason := fmt.Sprintf("%s; still terminating %s after its deletion deadline on node %s",
		deletionReason(pod), now.Sub(deadline).Round(time.Second), pod.Spec.NodeName)
	end := disruptionEnd(pod, node, reason, deadline)
	if cause := node.down(pod.Spec.NodeName); !end.NotCounted && cause != "" {
		end.Reason += notCountedPrefix + cause
		end.NotCounted = true
	}
	return end
}

// disruptionEnd returns the preempted end, at endedAt, of a pod that someone else disrupted.
// Its reason is reason, followed by why the preemption does not count when it does not.
func disruptionEnd(pod *corev1.Pod, node NodeFacts, reason string, endedAt time.Time) store.RunEnd {
	end := store.RunEnd{Status: store.RunPreempted, EndedAt: endedAt, Reason: reason}
	if cause := uncountedDisruption(pod, node); cause != "" {
		end.Reason += notCountedPrefix + cause
		end.NotCounted = true
	}
	return end
}

// finishedEnd judges a pod in a terminal phase. Since Kubernetes 1.27 the kubelet also moves
// a pod it stops for a deletion to a terminal phase, and the exit code then shows how the
// program handled the signal, not how training went. A pod whose deletion was requested before
// its container finished therefore counts as preempted, whatever its phase.
func finishedEnd(pod *corev1.Pod, node NodeFacts, now time.Time) store.RunEnd {
	if deletedBeforeFinish(pod, now) {
		return disruptionEnd(pod, node, deletionReason(pod), finishedAt(pod, now))
	}
	if pod.Status.Phase == corev1.PodSucceeded {
		return succeededEnd(pod, now)
	}
	return failedEnd(pod, node, now)
}

// succeededEnd judges a pod that reached Succeeded. It records the container's exit code
// (0) like a failure's, so that job explain shows it for every run that ran to its end.
func succeededEnd(pod *corev1.Pod, now time.Time) store.RunEnd {
	end := store.RunEnd{Status: store.RunCompleted, EndedAt: finishedAt(pod, now), Reason: "Completed"}
	if t := terminated(pod); t != nil {
		code := int(t.ExitCode)
		end.ExitCode = &code
	}
	return end
}

// deletedBeforeFinish reports whether the pod's deletion was requested before, or in the
// same second as, its container finished. The request time is the deletion timestamp less
// the grace period. Pod times have whole seconds, so a pod that finished in the second of
// the request counts as deleted: its job runs again rather than count as done.
func deletedBeforeFinish(pod *corev1.Pod, now time.Time) bool {
	if pod.DeletionTimestamp == nil {
		return false
	}
	requested := pod.DeletionTimestamp.Time
	if grace := pod.DeletionGracePeriodSeconds; grace != nil {
		requested = requested.Add(-time.Duration(*grace) * time.Second)
	}
	return !finishedAt(pod, now).Before(requested)
}

// failedEnd distinguishes a preemption (eviction, node shutdown, kube-scheduler preemption),
// which requeues the job without using an attempt, from a failure of the program.
func failedEnd(pod *corev1.Pod, node NodeFacts, now time.Time) store.RunEnd {
	if reason := disruptionReason(pod); reason != "" {
		return disruptionEnd(pod, node, reason, finishedAt(pod, now))
	}
	end := store.RunEnd{EndedAt: finishedAt(pod, now)}
	if pod.Status.Reason == "DeadlineExceeded" {
		end.Status, end.Reason, end.Retryable = store.RunFailed, "DeadlineExceeded: ran past max_runtime_seconds", true
		return end
	}

	end.Status, end.Retryable, end.Reason = store.RunFailed, true, "Error"
	if t := terminated(pod); t != nil {
		code := int(t.ExitCode)
		end.ExitCode = &code
		if t.Reason != "" {
			end.Reason = t.Reason
		}
		end.Reason = fmt.Sprintf("%s (exit code %d)", end.Reason, code)
	}
	return end
}

// disruptionReason returns why the pod was disrupted from outside, or "". A kubelet that
// rejects a pod because its node lacks a resource the pod was scheduled with (a GPU its
// device plugin has since reported unhealthy, say) sets the reason "OutOf" and the
// resource name, and one that rejects a pod while its node shuts down sets "NodeShutdown".
// The program never ran then, so no attempt is used.
// NOTE: the pod does not show who asked for an Eviction API eviction. One on a cordoned node
// is taken for a drain's and does not count (uncountedDisruption), also when someone else
// evicted the pod during the drain. A drain that deletes pods without the Eviction API
// (kubectl drain --disable-eviction), or that taints the node instead of cordoning it
// (Cluster Autoscaler's default), leaves no sign of itself, so its preemptions count.
func disruptionReason(pod *corev1.Pod) string {
	switch pod.Status.Reason {
	case "Evicted", "Preempting", "Shutdown", "Terminated", "NodeLost", "UnexpectedAdmissionError",
		nodeShutdownRejectedReason:
		return pod.Status.Reason
	}
	if strings.HasPrefix(pod.Status.Reason, "OutOf") {
		return pod.Status.Reason
	}
	return disruptionTarget(pod)
}

func deletionReason(pod *corev1.Pod) string {
	if reason := disruptionReason(pod); reason != "" {
		return reason
	}
	return "pod deleted"
}

// waitFailure returns why the run of a pod with a container that cannot start fails, if it
// does: at once for a permanentWaitReasons reason, and for a reason that mayPass once the
// pod has waited grace since waitStarted, or since its start (podStart) when waitStarted is
// zero. Until then the kubelet's retries may succeed.
func waitFailure(pod *corev1.Pod, now time.Time, grace time.Duration, waitStarted time.Time) (string, bool) {
	var transient *corev1.ContainerStateWaiting
	for _, cs := range pod.Status.ContainerStatuses {
		w := cs.State.Waiting
		switch {
		case w == nil:
		case mayPass(w):
			if transient == nil {
				transient = w
			}
		case permanentWaitReasons[w.Reason]:
			return w.Reason + ": " + w.Message, true
		}
	}
	if transient == nil {
		return "", false
	}
	since := waitStarted
	if since.IsZero() {
		since = podStart(pod)
	}
	waited := now.Sub(since)
	if waited < grace {
		return "", false
	}
	return fmt.Sprintf("%s for %s since %s: %s", transient.Reason, waited.Round(time.Second),
		since.UTC().Format(time.RFC3339), transient.Message), true
}

// transientWait returns the first waiting state of the pod's containers whose cause mayPass,
// or nil when no container waits for such a cause.
func transientWait(pod *corev1.Pod) *corev1.ContainerStateWaiting {
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && mayPass(w) {
			return w
		}
	}
	return nil
}

// podStart returns the earliest time the pod's containers could begin to wait for their
// images: the pod's status.startTime, which the kubelet sets when it accepts the pod, before
// it pulls the images. A pod without one, whose status someone else wrote, falls back to its
// binding (the PodScheduled condition) and then to its creation. The grace counts from here
// only when the run records no time of its own (store.Run.ContainerWaitStartedAt).
func podStart(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime != nil {
		return pod.Status.StartTime.Time
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return pod.CreationTimestamp.Time
}

func unschedulableSince(pod *corev1.Pod) (time.Time, string, bool) {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return c.LastTransitionTime.Time, c.Message, true
		}
	}
	return time.Time{}, "", false
}

// containerStart returns when the training container started running.
func containerStart(pod *corev1.Pod) time.Time {
	cs := trainStatus(pod)
	switch {
	case cs == nil:
	case cs.State.Running != nil:
		return cs.State.Running.StartedAt.Time
	case cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero():
		return cs.State.Terminated.StartedAt.Time
	}
	return time.Time{}
}

// terminated returns the end of the training container, or nil while it has not ended.
func terminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	if cs := trainStatus(pod); cs != nil {
		return cs.State.Terminated
	}
	return nil
}

// trainStatus returns the status of the pod's TrainContainer, or nil before the kubelet
// reported one.
func trainStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == TrainContainer {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func finishedAt(pod *corev1.Pod, now time.Time) time.Time {
	if t := terminated(pod); t != nil && !t.FinishedAt.IsZero() {
		return t.FinishedAt.Time
	}
	return now
}
