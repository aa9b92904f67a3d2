package dispatcher

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/store"
)

// testLimits are the limits of the tests that do not depend on them.
var testLimits = Limits{UnschedulableTimeout: time.Minute, ImagePullGrace: 5 * time.Minute}

// finishedPod is a pod whose container ran from start to finish and exited with code, in
// phase. deleteAt, when not zero, is when someone requested the pod's deletion with a 30 s
// grace period.
func finishedPod(phase corev1.PodPhase, code int32, start, finish, deleteAt time.Time) *corev1.Pod {
	pod := &corev1.Pod{
		Spec: corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{Name: "train",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code,
				StartedAt: metav1.NewTime(start), FinishedAt: metav1.NewTime(finish)}}}}},
	}
	if !deleteAt.IsZero() {
		grace := int64(30)
		pod.DeletionTimestamp = &metav1.Time{Time: deleteAt.Add(30 * time.Second)}
		pod.DeletionGracePeriodSeconds = &grace
	}
	return pod
}

// A pod that reached a terminal phase because someone deleted it while it ran ends its run
// as preempted, whatever its exit code: kubelets since Kubernetes 1.27 move such pods to
// Succeeded or Failed. A pod that finished before its deletion keeps its own outcome.
func TestJudgeFinishedPodDeletion(t *testing.T) {
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	finish := start.Add(time.Hour)
	now := finish.Add(time.Minute)

	evicted := finishedPod(corev1.PodFailed, 137, start, finish, finish.Add(-5*time.Second))
	evicted.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget,
		Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI"}}

	cases := []struct {
		name       string
		pod        *corev1.Pod
		wantStatus store.RunStatus
		wantReason string
		// wantExitCode is the recorded exit code, -1 for none.
		wantExitCode int
	}{
		{"succeeded, never deleted", finishedPod(corev1.PodSucceeded, 0, start, finish, time.Time{}),
			store.RunCompleted, "Completed", 0},
		{"failed, never deleted", finishedPod(corev1.PodFailed, 1, start, finish, time.Time{}),
			store.RunFailed, "Error (exit code 1)", 1},
		{"SIGTERM exit after a deletion", finishedPod(corev1.PodFailed, 143, start, finish, finish.Add(-10*time.Second)),
			store.RunPreempted, "pod deleted", -1},
		{"clean exit after a deletion", finishedPod(corev1.PodSucceeded, 0, start, finish, finish.Add(-10*time.Second)),
			store.RunPreempted, "pod deleted", -1},
		{"deleted in the second it finished", finishedPod(corev1.PodSucceeded, 0, start, finish, finish),
			store.RunPreempted, "pod deleted", -1},
		{"deleted a minute after it succeeded", finishedPod(corev1.PodSucceeded, 0, start, finish, finish.Add(time.Minute)),
			store.RunCompleted, "Completed", 0},
		{"evicted with a disruption condition", evicted, store.RunPreempted, "EvictionByEvictionAPI", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := Judge(c.pod, NodeFacts{}, now, testLimits, time.Time{})

			if obs.Verdict != Ended {
				t.Fatalf("verdict %d, want Ended", obs.Verdict)
			}
			if obs.End.Status != c.wantStatus {
				t.Errorf("run ends %s, want %s", obs.End.Status, c.wantStatus)
			}
			if obs.End.Reason != c.wantReason {
				t.Errorf("reason %q, want %q", obs.End.Reason, c.wantReason)
			}
			gotExitCode := -1
			if obs.End.ExitCode != nil {
				gotExitCode = *obs.End.ExitCode
			}
			if gotExitCode != c.wantExitCode {
				t.Errorf("exit code %d, want %d (-1 for none)", gotExitCode, c.wantExitCode)
			}
			if !obs.End.EndedAt.Equal(finish) {
				t.Errorf("ended at %s, want the container's finish %s", obs.End.EndedAt, finish)
			}
		})
	}
}

// A stopped run whose pod is gone ends at the pod's deletion deadline at the latest, so a
// daemon that was down meanwhile does not charge its outage.
func TestStopEnded(t *testing.T) {
	requested := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	run := store.Run{StopRequestedAt: &requested}

	if got := stopEnded(run, requested.Add(10*time.Second)); !got.Equal(requested.Add(10 * time.Second)) {
		t.Errorf("seen gone 10 s after the stop: ended %s, want then", got)
	}
	if got := stopEnded(run, requested.Add(time.Hour)); !got.Equal(requested.Add(stopGrace)) {
		t.Errorf("seen gone an hour after the stop: ended %s, want the deadline %s", got, requested.Add(stopGrace))
	}
	if got := stopEnded(store.Run{}, requested); !got.Equal(requested) {
		t.Errorf("no stop time: ended %s, want now", got)
	}
}

// A container that an admission webhook added beside train (a service mesh proxy, say)
// does not change how the run is judged, also when its status comes first. The run waits
// while train waits, and ends with train's exit.
func TestJudgeIgnoresOtherContainers(t *testing.T) {
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	finish := start.Add(time.Hour)
	now := finish.Add(time.Minute)
	proxyStart := metav1.NewTime(start.Add(-time.Minute))

	proxyRunning := corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: proxyStart}}
	trainWaiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	pulling := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{
		Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "istio-proxy", State: proxyRunning}, {Name: TrainContainer, State: trainWaiting}}}}
	obs := Judge(pulling, NodeFacts{}, now, testLimits, time.Time{})
	if obs.Verdict != Waiting {
		t.Errorf("train not started: verdict %d, want Waiting", obs.Verdict)
	}
	if !obs.StartedAt.IsZero() {
		t.Errorf("train not started: started at %s, want zero", obs.StartedAt)
	}

	oom := finishedPod(corev1.PodFailed, 137, start, finish, time.Time{})
	oom.Status.ContainerStatuses[0].State.Terminated.Reason = "OOMKilled"
	proxyDone := &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: proxyStart,
		FinishedAt: metav1.NewTime(finish.Add(2 * time.Second))}
	proxy := corev1.ContainerStatus{Name: "istio-proxy", State: corev1.ContainerState{Terminated: proxyDone}}
	oom.Status.ContainerStatuses = append([]corev1.ContainerStatus{proxy}, oom.Status.ContainerStatuses...)
	obs = Judge(oom, NodeFacts{}, now, testLimits, time.Time{})
	if obs.Verdict != Ended {
		t.Fatalf("train OOMKilled: verdict %d, want Ended", obs.Verdict)
	}
	if obs.End.Status != store.RunFailed {
		t.Errorf("train OOMKilled: run ends %s, want failed", obs.End.Status)
	}
	if want := "OOMKilled (exit code 137)"; obs.End.Reason != want {
		t.Errorf("train OOMKilled: reason %q, want %q", obs.End.Reason, want)
	}
	if obs.End.ExitCode == nil || *obs.End.ExitCode != 137 {
		t.Errorf("train OOMKilled: exit code %v, want 137", obs.End.ExitCode)
	}
	if !obs.StartedAt.Equal(start) {
		t.Errorf("train OOMKilled: started at %s, want train's start %s", obs.StartedAt, start)
	}
	if !obs.End.EndedAt.Equal(finish) {
		t.Errorf("train OOMKilled: ended at %s, want train's finish %s", obs.End.EndedAt, finish)
	}
}

// A pod that the kubelet rejected because its node lacked a resource the pod was
// scheduled with never ran its program, so its run is preempted, not failed.
func TestJudgeKubeletRejection(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	pod := &corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{
		Phase: corev1.PodFailed, Reason: "OutOfnvidia.com/gpu",
		Message: "Pod was rejected: Node didn't have enough resource: nvidia.com/gpu, requested: 1, used: 8, capacity: 8"}}

	obs := Judge(pod, NodeFacts{}, now, testLimits, time.Time{})
	if obs.Verdict != Ended {
		t.Fatalf("verdict %d, want Ended", obs.Verdict)
	}
	if obs.End.Status != store.RunPreempted {
		t.Errorf("run ends %s, want preempted", obs.End.Status)
	}
	if want := "OutOfnvidia.com/gpu"; obs.End.Reason != want {
		t.Errorf("reason %q, want %q", obs.End.Reason, want)
	}
	if obs.End.ExitCode != nil {
		t.Errorf("exit code %d, want none", *obs.End.ExitCode)
	}
	if !obs.End.EndedAt.Equal(now) {
		t.Errorf("ended at %s, want now %s", obs.End.EndedAt, now)
	}
}

// waitingPod is a pending pod on node-1, started by its kubelet at start, whose train
// container waits with reason.
func waitingPod(reason string, start time.Time) *corev1.Pod {
	return waitingPodWithMessage(reason, "registry timed out", start)
}

func waitingPodWithMessage(reason, message string, start time.Time) *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{
		Phase: corev1.PodPending, StartTime: &metav1.Time{Time: start},
		ContainerStatuses: []corev1.ContainerStatus{{Name: TrainContainer, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}}}}
}

// A container that waits for a reason that may pass, in a run that records no start of the
// wait, fails its run only once the pod has waited the default grace since its start. Until
// then the pod waits. A config error
// passes when its Secret or ConfigMap appears: the messages are the kubelet's (1.37).
func TestJudgeTransientWaitAfterGrace(t *testing.T) {
	limits := withDefaults(Config{}).limits()
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

	cases := []struct{ reason, message string }{
		{"ErrImagePull", "registry timed out"},
		{"ImagePullBackOff", "registry timed out"},
		{"CreateContainerError", "registry timed out"},
		{"CreateContainerConfigError", `secret "s3-creds" not found`},
		{"CreateContainerConfigError", "couldn't find key secret-key in Secret vision/s3-creds"},
		{"CreateContainerConfigError", `configmap "trainer-settings" not found`},
		{"CreateContainerConfigError", "couldn't find key lr in ConfigMap vision/trainer-settings"},
		{"CreateContainerConfigError", "failed to sync secret cache: timed out waiting for the condition"},
	}
	for _, c := range cases {
		t.Run(c.reason+"/"+c.message, func(t *testing.T) {
			pod := waitingPodWithMessage(c.reason, c.message, start)

			before := Judge(pod, NodeFacts{}, start.Add(5*time.Minute-time.Second), limits, time.Time{})
			if before.Verdict != Waiting {
				t.Errorf("verdict %d a second before the grace, want Waiting", before.Verdict)
			}

			at := start.Add(5 * time.Minute)
			obs := Judge(pod, NodeFacts{}, at, limits, time.Time{})
			if obs.Verdict != Ended {
				t.Fatalf("verdict %d at the grace, want Ended", obs.Verdict)
			}
			if obs.End.Status != store.RunFailed {
				t.Errorf("run ends %s, want failed", obs.End.Status)
			}
			if obs.End.Retryable {
				t.Error("run end is retryable, want not")
			}
			if want := c.reason + " for 5m0s since 2026-12-05T10:00:00Z: " + c.message; obs.End.Reason != want {
				t.Errorf("reason %q, want %q", obs.End.Reason, want)
			}
			if !obs.End.EndedAt.Equal(at) {
				t.Errorf("ended at %s, want now %s", obs.End.EndedAt, at)
			}
		})
	}
}

// A container that waits for a reason no retry can fix fails its run at once.
func TestJudgePermanentWaitAtOnce(t *testing.T) {
	limits := withDefaults(Config{}).limits()
	start := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	now := start.Add(time.Second)

	cases := []struct{ reason, message string }{
		{"InvalidImageName", "registry timed out"},
		{"ErrImageNeverPull", "registry timed out"},
		{"CreateContainerConfigError", "container has runAsNonRoot and image will run as root"},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			obs := Judge(waitingPodWithMessage(c.reason, c.message, start), NodeFacts{}, now, limits, time.Time{})
			if obs.Verdict != Ended {
				t.Fatalf("verdict %d, want Ended", obs.Verdict)
			}
			if obs.End.Status != store.RunFailed {
				t.Errorf("run ends %s, want failed", obs.End.Status)
			}
			if want := c.reason + ": " + c.message; obs.End.Reason != want {
				t.Errorf("reason %q, want %q", obs.End.Reason, want)
			}
		})
	}

	// A permanent reason of train decides also when another container's transient
	// reason comes first.
	pod := waitingPod("InvalidImageName", start)
	sidecar := corev1.ContainerStatus{Name: "istio-proxy", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "rate limited"}}}
	pod.Status.ContainerStatuses = append([]corev1.ContainerStatus{sidecar}, pod.Status.ContainerStatuses...)
	obs := Judge(pod, NodeFacts{}, now, limits, time.Time{})
	if obs.Verdict != Ended {
		t.Fatalf("sidecar in back-off: verdict %d, want Ended", obs.Verdict)
	}
	if want := "InvalidImageName: registry timed out"; obs.End.Reason != want {
		t.Errorf("sidecar in back-off: reason %q, want %q", obs.End.Reason, want)
	}
}

// A pod without a start time, whose status no kubelet wrote, counts its wait from its
// binding, and without that from its creation.
func TestJudgeTransientWaitStartFallbacks(t *testing.T) {
	limits := withDefaults(Config{}).limits()
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	bound := created.Add(time.Minute)

	pod := waitingPod("ImagePullBackOff", time.Time{})
	pod.Status.StartTime = nil
	pod.CreationTimestamp = metav1.NewTime(created)
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(bound)}}
	if obs := Judge(pod, NodeFacts{}, bound.Add(5*time.Minute-time.Second), limits, time.Time{}); obs.Verdict != Waiting {
		t.Errorf("bound 5m less 1s ago: verdict %d, want Waiting", obs.Verdict)
	}
	if obs := Judge(pod, NodeFacts{}, bound.Add(5*time.Minute), limits, time.Time{}); obs.Verdict != Ended {
		t.Errorf("bound 5m ago: verdict %d, want Ended", obs.Verdict)
	}

	pod.Status.Conditions = nil
	if obs := Judge(pod, NodeFacts{}, created.Add(5*time.Minute-time.Second), limits, time.Time{}); obs.Verdict != Waiting {
		t.Errorf("created 5m less 1s ago, never bound: verdict %d, want Waiting", obs.Verdict)
	}
	obs := Judge(pod, NodeFacts{}, created.Add(5*time.Minute), limits, time.Time{})
	if obs.Verdict != Ended {
		t.Fatalf("created 5m ago, never bound: verdict %d, want Ended", obs.Verdict)
	}
	if want := "ImagePullBackOff for 5m0s since 2026-12-05T10:00:00Z: registry timed out"; obs.End.Reason != want {
		t.Errorf("created 5m ago, never bound: reason %q, want %q", obs.End.Reason, want)
	}
}

// The grace counts from the time the run records for the container's wait, not from the
// pod's start: a pod that started an hour ago, and whose pull failed only now, waits the
// whole grace from that failure. Without a recorded time it counts from the pod's start.
func TestJudgeTransientWaitFromRecordedStart(t *testing.T) {
	limits := withDefaults(Config{}).limits()
	podStarted := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	now := podStarted.Add(time.Hour)

	cases := []struct {
		name        string
		waitStarted time.Time
		wantVerdict Verdict
		wantReason  string
	}{
		{"began waiting a minute ago", now.Add(-time.Minute), Waiting, ""},
		{"began waiting the grace less 1s ago", now.Add(-5*time.Minute + time.Second), Waiting, ""},
		{"began waiting the grace ago", now.Add(-5 * time.Minute), Ended,
			"ErrImagePull for 5m0s since 2026-12-05T10:55:00Z: registry timed out"},
		{"began waiting 10 minutes ago", now.Add(-10 * time.Minute), Ended,
			"ErrImagePull for 10m0s since 2026-12-05T10:50:00Z: registry timed out"},
		{"no recorded start", time.Time{}, Ended,
			"ErrImagePull for 1h0m0s since 2026-12-05T10:00:00Z: registry timed out"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := Judge(waitingPod("ErrImagePull", podStarted), NodeFacts{}, now, limits, c.waitStarted)

			if obs.Verdict != c.wantVerdict {
				t.Fatalf("verdict %d, want %d", obs.Verdict, c.wantVerdict)
			}
			if obs.End.Reason != c.wantReason {
				t.Errorf("reason %q, want %q", obs.End.Reason, c.wantReason)
			}
			if c.wantVerdict == Ended && obs.End.Status != store.RunFailed {
				t.Errorf("run ends %s, want failed", obs.End.Status)
			}
		})
	}
}
