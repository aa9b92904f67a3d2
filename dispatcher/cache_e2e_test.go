package dispatcher_test

import (
	"context"
	"math"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// terminatedTrain is the status of a train container that ran from start to finish and
// exited with code 0.
func terminatedTrain(start, finish time.Time) []corev1.ContainerStatus {
	return []corev1.ContainerStatus{{Name: "train", Image: "trainer:1",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0,
			Reason: "Completed", StartedAt: metav1.NewTime(start), FinishedAt: metav1.NewTime(finish)}}}}
}

// A pod that succeeded and was deleted before its run was judged, as a cleanup during a
// database outage may do, ends its run as completed: the deletion carries the pod's last
// state. This dispatcher never starts its informers, so the test hands it the deletion.
func TestDeletedSucceededPodCompletes(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	last, err := pods.Get(ctx, run.PodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	finish := run.StartedAt.Add(time.Second)
	last.Status.Phase = corev1.PodSucceeded
	last.Status.ContainerStatuses = terminatedTrain(*run.StartedAt, finish)
	noGrace := int64(0)
	last.DeletionTimestamp, last.DeletionGracePeriodSeconds = &metav1.Time{Time: finish.Add(time.Minute)}, &noGrace
	if err := pods.Delete(ctx, run.PodName, metav1.DeleteOptions{GracePeriodSeconds: &noGrace}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(t, run)

	d := dispatcher.New(daemontest.Kube.Clientset, h.Store, dispatcher.Config{})
	d.OnPodDelete(last)
	if err := dispatcher.Reconcile(d, ctx, run.ID); err != nil {
		t.Fatal(err)
	}

	ended := h.Runs(job.ID)
	if len(ended) != 1 {
		t.Fatalf("%d runs, want 1", len(ended))
	}
	if ended[0].Status != store.RunCompleted {
		t.Errorf("run %s, want completed", ended[0].Status)
	}
	if ended[0].ExitCode == nil || *ended[0].ExitCode != 0 {
		t.Errorf("exit code %v, want 0", ended[0].ExitCode)
	}
	// One GPU for the container's 1 s.
	if want := 1.0 / 3600; math.Abs(ended[0].GPUHoursUsed-want) > 1e-6 {
		t.Errorf("run used %.6f GPU-hours, want %.6f", ended[0].GPUHoursUsed, want)
	}
	if got, _ := h.Store.GetJob(ctx, job.ID); got.Status != store.JobCompleted {
		t.Errorf("job %s, want completed", got.Status)
	}
	if d.KeepsFinishedPod(run.ID) {
		t.Error("the dispatcher still keeps the pod's state after its run ended")
	}
}

// A pod whose managed-by label was removed leaves the informer's cache, because the
// informer selects on that label, but it still runs the job. Its run follows the pod as
// the API server reports it, to its end, and the pod is deleted then.
func TestPodWithoutManagedByLabelFollowed(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	node := unmanagedNode(t, model)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))
	run := waitRun(t, h, job.ID, 1, "pod created", func(r store.Run) bool { return r.PodCreatedAt != nil })
	waitBound(t, run, node)

	ctx := context.Background()
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	unlabel := []byte(`{"metadata":{"labels":{"` + dispatcher.LabelManagedBy + `":null}}}`)
	if _, err := pods.Patch(ctx, run.PodName, types.MergePatchType, unlabel, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	finish := start.Add(5 * time.Second)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, run.PodName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodSucceeded
		pod.Status.ContainerStatuses = terminatedTrain(start, finish)
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	ended := h.Runs(job.ID)[0]
	if ended.Status != store.RunCompleted {
		t.Errorf("run %s, want completed", ended.Status)
	}
	if ended.StartedAt == nil || !ended.StartedAt.Equal(start) {
		t.Errorf("run started at %v, want the container's start %v", ended.StartedAt, start)
	}
	// One GPU for the container's 5 s.
	if want := 5.0 / 3600; math.Abs(ended.GPUHoursUsed-want) > 1e-6 {
		t.Errorf("run used %.6f GPU-hours, want %.6f", ended.GPUHoursUsed, want)
	}
	waitPodGone(t, ended)
}
