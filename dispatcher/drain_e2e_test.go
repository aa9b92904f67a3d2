package dispatcher_test

import (
	"context"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// A drain issued while no dispatcher runs (between leaders, say) meets a pending run whose
// container has already started. The run stays live until its pod is gone: it is charged
// from the container's start, and its job gets no second run while the first pod stops.
func TestDrainStopsStartedPendingRun(t *testing.T) {
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
