package dispatcher_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// A drain issued while no dispatcher runs (between leaders, say) meets a pending run whose
// container has already started. The run stays live until its pod is gone: it is charged
// from the container's start, and its job gets no second run while the first pod stops.
func TestDrainStopsStartedPendingRun(t *testing.T) {
	h, job, first := boundRunDaemonStopped(t)

	ctx := context.Background()
	started := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	setContainerRunning(t, first, started)
	drainedAt := time.Now()
	if _, err := h.Store.DrainQueue(ctx, "vision", drainedAt, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Store.UndrainQueue(ctx, "vision", nil); err != nil {
		t.Fatal(err)
	}

	again := daemontest.Start(t, daemontest.Options{Store: h.Store})
	waitPodDeleting(t, first)
	stopping := waitRun(t, again, job.ID, 1, "started", func(r store.Run) bool { return r.StartedAt != nil })
	if stopping.Status != store.RunRunning {
		t.Errorf("run 1 is %s while its pod stops, want running", stopping.Status)
	}
	if !stopping.StartedAt.Equal(started) {
		t.Errorf("run 1 started at %s, want the container's start %s", stopping.StartedAt, started)
	}
	if got := len(again.Runs(job.ID)); got != 1 {
		t.Errorf("job has %d runs while its first pod stops, want 1", got)
	}

	// No kubelet runs the unmanaged node, so the test removes the pod as one would.
	forceDeletePod(t, first)
	ended := waitRun(t, again, job.ID, 1, "preempted", runStatus(store.RunPreempted))
	if ended.EndReason == nil || *ended.EndReason != store.DrainReason {
		t.Errorf("run 1 ended with %v, want %q", ended.EndReason, store.DrainReason)
	}
	drained, err := again.Store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if drained.Preemptions != 0 {
		t.Errorf("job has %d preemptions, want 0: a drain does not count", drained.Preemptions)
	}
	// One GPU from the container's start to the drain, at least.
	if least := drainedAt.Sub(started).Hours(); ended.GPUHoursUsed < least {
		t.Errorf("run 1 used %.6f GPU-hours, want at least %.6f", ended.GPUHoursUsed, least)
	}
	quota, err := again.Store.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(quota.GPUHoursUsed-ended.GPUHoursUsed) > 1e-4 {
		t.Errorf("quota used %.4f GPU-hours, want run 1's %.4f", quota.GPUHoursUsed, ended.GPUHoursUsed)
	}
	waitRun(t, again, job.ID, 2, "admitted", func(store.Run) bool { return true })
}

// A running job whose queue's drain deadline passes is stopped and goes back to the queue
// with its preemption count unchanged, because the job did not cause the drain. Its next
// run, after the undrain, resumes from its checkpoint.
func TestDrainDeadlinePreemptionNotCounted(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	setCheckpoint(t, h, run, "s3://ckpt/job/step-100")

	ctx := context.Background()
	now := time.Now()
	if _, err := h.Store.DrainQueue(ctx, "vision", now, &now, nil); err != nil {
		t.Fatal(err)
	}
	ended := waitRun(t, h, job.ID, 1, "preempted", runStatus(store.RunPreempted))
	want := store.DrainReason + ": deadline passed"
	if ended.EndReason == nil || *ended.EndReason != want {
		t.Errorf("run 1 ended with %v, want %q", ended.EndReason, want)
	}
	got, err := h.Store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobQueued {
		t.Errorf("job is %s after the drain deadline, want queued", got.Status)
	}
	if got.Preemptions != 0 {
		t.Errorf("job has %d preemptions, want 0: a drain does not count", got.Preemptions)
	}

	if _, _, err := h.Store.UndrainQueue(ctx, "vision", nil); err != nil {
		t.Fatal(err)
	}
	second := waitRun(t, h, job.ID, 2, "running", runStatus(store.RunRunning))
	pod, err := podOf(t, second)
	if err != nil {
		t.Fatal(err)
	}
	if from := pod.Annotations[dispatcher.AnnotationResumeFrom]; from != "s3://ckpt/job/step-100" {
		t.Errorf("second pod resumes from %q, want s3://ckpt/job/step-100", from)
	}
}

// kubectl drain cordons the node and evicts its pods through the Eviction API. The job goes
// back to the queue with its preemption count unchanged, because the job did not cause the
// drain, and its run's end reason gives that cause. TestEvictionRequeuesFromCheckpoint checks that
// the same eviction on a schedulable node counts.
func TestNodeDrainEvictionNotCounted(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	node := gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)

	setCordoned(t, node, true)
	// Without the cordon in the capacity count, the job would be admitted again at once and
	// its next pod would wait on the cordoned node.
	waitCapacity(t, h, model, 0)
	evictPod(t, run)
	ended := waitRun(t, h, job.ID, 1, "preempted", runStatus(store.RunPreempted))
	want := "EvictionByEvictionAPI; not counted: node " + node + " is cordoned, so the eviction is part of a drain"
	if got := endReason(ended); got != want {
		t.Errorf("run 1 ended with reason %q, want %q", got, want)
	}
	queued := h.WaitJob(job.ID, wait, "queued", daemontest.Status(store.JobQueued))
	if queued.Preemptions != 0 {
		t.Errorf("job has %d preemptions after the drain, want 0", queued.Preemptions)
	}
	if queued.Attempts != 0 {
		t.Errorf("job used %d attempts after the drain, want 0", queued.Attempts)
	}

	setCordoned(t, node, false)
	waitRun(t, h, job.ID, 2, "running after the uncordon", runStatus(store.RunRunning))
}

// A node whose kubelet stopped reporting gets the unreachable taint, and the taint eviction
// controller deletes its pods. The node comes back before the pod is gone, and loses the
// taint before its kubelet stops the pod. The run keeps the judgement made while the node
// had the taint: its preemption does not count. The test cluster runs no controller manager
// and the node no kubelet, so the test writes what they would.
func TestUnreachableNodeEvictionNotCounted(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	node := unmanagedNode(t, model)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))
	run := waitRun(t, h, job.ID, 1, "admitted", func(store.Run) bool { return true })
	waitBound(t, run, node)
	setContainerRunning(t, run, time.Now().Add(-time.Minute).Truncate(time.Second))
	waitRun(t, h, job.ID, 1, "running", runStatus(store.RunRunning))

	setNodeReady(t, node, corev1.ConditionUnknown)
	setTaints(t, node, corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
		corev1.Taint{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptrTo(metav1.Now())})
	waitCapacity(t, h, model, 0) // the dispatcher's node cache has the taint
	taintEvict(t, run)
	d := h.Daemon.Dispatcher
	want := "DeletionByTaintManager; not counted: node " + node + " has the taint node.kubernetes.io/unreachable"
	deadline := time.Now().Add(wait)
	for end, ok := d.KeptDeletionEnd(run.ID); !ok || end.Reason != want; end, ok = d.KeptDeletionEnd(run.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatcher kept %q (found %v) for the terminating pod, want %q", end.Reason, ok, want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	setTaints(t, node)
	setNodeReady(t, node, corev1.ConditionTrue)
	waitCapacity(t, h, model, 8000) // the dispatcher's node cache has the node back
	stopContainer(t, run)
	forceDeletePod(t, run)

	ended := waitRun(t, h, job.ID, 1, "preempted", runStatus(store.RunPreempted))
	if got := endReason(ended); got != want {
		t.Errorf("run 1 ended with reason %q, want %q", got, want)
	}
	got, err := h.Store.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Preemptions != 0 {
		t.Errorf("job has %d preemptions after the node came back, want 0", got.Preemptions)
	}
}

func endReason(run store.Run) string {
	if run.EndReason == nil {
		return "(none)"
	}
	return *run.EndReason
}

func ptrTo[T any](v T) *T { return &v }

// setNodeReady sets the status of the node's Ready condition, as its kubelet (True, False)
// or the node lifecycle controller (Unknown) would.
func setNodeReady(t *testing.T, name string, status corev1.ConditionStatus) {
	t.Helper()
	ctx := context.Background()
	nodes := daemontest.Kube.Clientset.CoreV1().Nodes()
	node, err := nodes.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range node.Status.Conditions {
		if c := &node.Status.Conditions[i]; c.Type == corev1.NodeReady {
			c.Status, c.LastTransitionTime = status, metav1.Now()
		}
	}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// taintEvict deletes the run's pod as the taint eviction controller does: it adds the
// DisruptionTarget condition to the pod's status, then deletes the pod with its grace period.
func taintEvict(t *testing.T, run store.Run) {
	t.Helper()
	updatePodStatus(t, run, func(status *corev1.PodStatus) {
		status.Conditions = append(status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
			Status: corev1.ConditionTrue, Reason: "DeletionByTaintManager", LastTransitionTime: metav1.Now(),
			Message: "Taint manager: deleting due to NoExecute taint"})
	})
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	if err := pods.Delete(context.Background(), run.PodName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

// stopContainer sets the run's pod Failed with its container ended by SIGTERM, as a kubelet
// does for a pod deleted while it ran.
func stopContainer(t *testing.T, run store.Run) {
	t.Helper()
	updatePodStatus(t, run, func(status *corev1.PodStatus) {
		cs := &status.ContainerStatuses[0]
		cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error",
			StartedAt: cs.State.Running.StartedAt, FinishedAt: metav1.Now()}}
		cs.Ready = false
		status.Phase = corev1.PodFailed
	})
}

// updatePodStatus reads the run's pod, applies change to its status and writes the status
// back, as the component that owns the change would.
func updatePodStatus(t *testing.T, run store.Run, change func(*corev1.PodStatus)) {
	t.Helper()
	ctx := context.Background()
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	pod, err := pods.Get(ctx, run.PodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change(&pod.Status)
	if _, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// evictPod evicts the run's pod through the Eviction API, as kubectl drain does.
func evictPod(t *testing.T, run store.Run) {
	t.Helper()
	eviction := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: run.PodName, Namespace: run.Namespace}}
	if err := daemontest.Kube.Clientset.PolicyV1().Evictions(run.Namespace).Evict(context.Background(), eviction); err != nil {
		t.Fatal(err)
	}
}

// setContainerRunning sets the run's pod Running with its container started at started,
// as a kubelet would.
func setContainerRunning(t *testing.T, run store.Run, started time.Time) {
	t.Helper()
	pod, err := podOf(t, run)
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "train", Ready: true,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(started)}}}}
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	if _, err := pods.UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// forceDeletePod removes the run's pod at once, as a kubelet does once its container stopped.
func forceDeletePod(t *testing.T, run store.Run) {
	t.Helper()
	zero := int64(0)
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	if err := pods.Delete(context.Background(), run.PodName, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
}

// A pause that the dispatcher handles before its pod cache holds the run's pod stops that
// pod instead of ending the run as podless. The test hides the pod from the cache for good
// by removing the label that the dispatcher's pod watch selects. That simulates a cache
// that has not yet seen a pod created moments ago.
func TestPauseStopsPodMissingFromCache(t *testing.T) {
	h, job, first := boundRunDaemonStopped(t)

	hidePodFromCache(t, first)
	ctx := context.Background()
	ref := store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}
	if _, err := h.Store.SetJobStatus(ctx, ref, store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}

	again := daemontest.Start(t, daemontest.Options{Store: h.Store})
	waitPodDeleting(t, first)
	stopping := again.Runs(job.ID)[0]
	if stopping.Status != store.RunPending {
		t.Errorf("run 1 is %s while its pod stops, want pending", stopping.Status)
	}
	if stopping.StopStatus == nil || *stopping.StopStatus != store.RunCancelled {
		t.Errorf("run 1 has stop %v, want cancelled", stopping.StopStatus)
	}
	if _, err := again.Store.SetJobStatus(ctx, ref, store.JobPaused, store.JobQueued, time.Now(), nil); !errors.Is(err, store.ErrRunLive) {
		t.Errorf("resume while the pod stops: %v, want ErrRunLive", err)
	}

	forceDeletePod(t, first)
	waitRun(t, again, job.ID, 1, "cancelled", runStatus(store.RunCancelled))
	if _, err := again.Store.SetJobStatus(ctx, ref, store.JobPaused, store.JobQueued, time.Now(), nil); err != nil {
		t.Errorf("resume once the pod is gone: %v", err)
	}
}

// hidePodFromCache replaces the run's pod with a copy that lacks the label the dispatcher's
// pod watch selects, so that only a read from the API server finds it.
func hidePodFromCache(t *testing.T, run store.Run) {
	t.Helper()
	ctx := context.Background()
	pod, err := podOf(t, run)
	if err != nil {
		t.Fatal(err)
	}
	forceDeletePod(t, run)
	waitPodGone(t, run)

	hidden := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace,
		Labels: map[string]string{dispatcher.LabelRunID: run.ID.String()}}, Spec: pod.Spec}
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	if _, err := pods.Create(ctx, hidden, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// boundRunDaemonStopped starts a daemon, has it admit one GPU job whose pod kube-scheduler
// binds to a node that no simulated kubelet runs, and stops the daemon. It returns the
// stopped daemon's harness, the job and its first run.
func boundRunDaemonStopped(t *testing.T) (*daemontest.Harness, store.Job, store.Run) {
	t.Helper()
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	node := unmanagedNode(t, model)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))
	first := waitRun(t, h, job.ID, 1, "admitted", func(store.Run) bool { return true })
	waitBound(t, first, node)
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}
	return h, job, first
}
