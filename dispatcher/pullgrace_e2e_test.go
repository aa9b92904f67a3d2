package dispatcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// pullGrace is the image pull grace of these tests: several resyncs of the harness (1 s).
const pullGrace = 5 * time.Second

// startWithPullGrace starts a daemon with pullGrace on store s, or on a fresh database when
// s is nil.
func startWithPullGrace(t *testing.T, s *store.Store) *daemontest.Harness {
	t.Helper()
	return daemontest.Start(t, daemontest.Options{Store: s, Configure: func(cfg *daemon.Config) {
		cfg.Dispatcher.ImagePullGrace = pullGrace
	}})
}

// setContainerWaiting writes the status a kubelet would for a pod on a node without one:
// pending since started, with its train container waiting for reason.
func setContainerWaiting(t *testing.T, run store.Run, started time.Time, reason, message string) {
	t.Helper()
	ctx := context.Background()
	pod, err := podOf(t, run)
	if err != nil {
		t.Fatal(err)
	}
	start := metav1.NewTime(started)
	pod.Status.Phase = corev1.PodPending
	pod.Status.StartTime = &start
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "train", Image: "trainer:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}}}
	if _, err := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// pendingRunOnNode submits a one-GPU job to a new node without a kubelet and returns its
// run once the pod is bound there.
func pendingRunOnNode(t *testing.T, h *daemontest.Harness) (store.Run, store.Job) {
	t.Helper()
	model := uniqueModel()
	node := unmanagedNode(t, model)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))
	run := waitRun(t, h, job.ID, 1, "pod created", func(r store.Run) bool { return r.PodCreatedAt != nil })
	waitBound(t, run, node)
	return run, job
}

// waitStartRecorded polls the job's first run until the dispatcher has stored when its
// container began to wait, and returns that time.
func waitStartRecorded(t *testing.T, h *daemontest.Harness, job store.Job) time.Time {
	t.Helper()
	run := waitRun(t, h, job.ID, 1, "container wait recorded",
		func(r store.Run) bool { return r.ContainerWaitStartedAt != nil })
	return *run.ContainerWaitStartedAt
}

// expectPullFailure checks that the job's run failed with reason for pullGrace or more since
// waitStarted, and not much later.
func expectPullFailure(t *testing.T, h *daemontest.Harness, job store.Job, reason string, waitStarted time.Time) {
	t.Helper()
	h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))
	ended := h.Runs(job.ID)[0]
	if ended.Status != store.RunFailed {
		t.Errorf("run %s, want failed", ended.Status)
	}
	wantPrefix := reason + " for "
	wantSince := " since " + waitStarted.UTC().Format(time.RFC3339) + ": "
	if ended.EndReason == nil {
		t.Errorf("run ended without a reason, want %q with %q", wantPrefix, wantSince)
	} else if !strings.HasPrefix(*ended.EndReason, wantPrefix) || !strings.Contains(*ended.EndReason, wantSince) {
		t.Errorf("run ended with reason %q, want %q with %q", *ended.EndReason, wantPrefix, wantSince)
	}
	if ended.CompletedAt == nil {
		t.Fatal("failed run has no end time")
	}
	waited := ended.CompletedAt.Sub(waitStarted)
	if waited < pullGrace {
		t.Errorf("run ended %s after its container began to wait, want %s or more", waited, pullGrace)
	}
	// The grace is counted once: resyncs and restarts do not push the end further out.
	if waited > pullGrace+20*time.Second {
		t.Errorf("run ended %s after its container began to wait, want about %s", waited, pullGrace)
	}
}

// A pod that started long ago and pulled its image for longer than the grace gets the whole
// grace from the first failed pull. Its run stays pending past the pod's start plus the
// grace, and fails once the container has waited the grace since the failed pull.
func TestImagePullGraceCountsFromFirstWait(t *testing.T) {
	h := startWithPullGrace(t, nil)
	run, job := pendingRunOnNode(t, h)
	podStarted := time.Now().Add(-time.Hour).Truncate(time.Second)

	// A pull in progress is no failure, so it starts no grace.
	setContainerWaiting(t, run, podStarted, "ContainerCreating", "")
	time.Sleep(3 * time.Second) // three resyncs
	if got := h.Runs(job.ID)[0]; got.Status != store.RunPending || got.ContainerWaitStartedAt != nil {
		t.Fatalf("while pulling: run %s with container wait start %v, want pending with none",
			got.Status, got.ContainerWaitStartedAt)
	}

	failedPull := time.Now()
	setContainerWaiting(t, run, podStarted, "ErrImagePull", "failed to pull image: i/o timeout")
	waitStarted := waitStartRecorded(t, h, job)
	if waitStarted.Before(failedPull.Truncate(time.Microsecond)) || waitStarted.After(time.Now()) {
		t.Errorf("container wait start %s, want between the failed pull %s and now", waitStarted, failedPull)
	}

	time.Sleep(time.Until(waitStarted.Add(pullGrace - time.Second)))
	if got := h.Runs(job.ID)[0]; got.Status != store.RunPending {
		t.Fatalf("%s after the failed pull, an hour after the pod's start: run %s (reason %q), want pending",
			pullGrace-time.Second, got.Status, endReason(got))
	}
	expectPullFailure(t, h, job, "ErrImagePull", waitStarted)
}

// The time a container began to wait survives a restart of the daemon. A daemon that starts
// once the grace has passed since that time fails the run at once, for the time since then:
// neither a whole grace after its own start nor for the time since the pod's start.
func TestImagePullGraceSurvivesRestart(t *testing.T) {
	h := startWithPullGrace(t, nil)
	run, job := pendingRunOnNode(t, h)

	setContainerWaiting(t, run, time.Now().Add(-time.Hour), "ImagePullBackOff", "Back-off pulling image")
	waitStarted := waitStartRecorded(t, h, job)
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if got := h.Runs(job.ID)[0]; got.Status != store.RunPending {
		t.Fatalf("run %s (reason %q) when the first daemon stopped, want pending", got.Status, endReason(got))
	}

	time.Sleep(time.Until(waitStarted.Add(pullGrace)))
	restarted := time.Now()
	again := startWithPullGrace(t, h.Store)
	expectPullFailure(t, again, job, "ImagePullBackOff", waitStarted)
	ended := again.Runs(job.ID)[0]
	if ended.ContainerWaitStartedAt == nil || !ended.ContainerWaitStartedAt.Equal(waitStarted) {
		t.Errorf("container wait start %v after the restart, want %s as stored before", ended.ContainerWaitStartedAt, waitStarted)
	}
	if ended.CompletedAt != nil && ended.CompletedAt.Sub(restarted) >= pullGrace {
		t.Errorf("run ended %s after the restart, want at once: the grace had passed", ended.CompletedAt.Sub(restarted))
	}
}

// A pod that already waits when the daemon starts, in a run without a stored time, counts
// the grace from the pod's start, and the daemon stores that time. Such a run was written by
// an older version, or its wait began while no daemon ran.
func TestImagePullGraceFromPodStartWhenUnrecorded(t *testing.T) {
	h := startWithPullGrace(t, nil)
	run, job := pendingRunOnNode(t, h)
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}

	podStarted := time.Now().Add(-time.Hour).Truncate(time.Second)
	setContainerWaiting(t, run, podStarted, "ErrImagePull", "failed to pull image: not found")
	again := startWithPullGrace(t, h.Store)
	again.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))

	ended := again.Runs(job.ID)[0]
	if ended.ContainerWaitStartedAt == nil || !ended.ContainerWaitStartedAt.Equal(podStarted) {
		t.Errorf("container wait start %v, want the pod's start %s", ended.ContainerWaitStartedAt, podStarted)
	}
	want := "ErrImagePull for 1h0m"
	if !strings.HasPrefix(endReason(ended), want) {
		t.Errorf("run ended with reason %q, want it to start with %q", endReason(ended), want)
	}
}
