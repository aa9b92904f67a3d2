package dispatcher_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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
