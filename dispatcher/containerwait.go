package dispatcher

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/schedulerd/schedulerd/store"
)

// The image pull grace. A run fails once a container of its pod has waited
// Config.ImagePullGrace for a cause that mayPass (a failed image pull, a missing Secret).
// No pod field records when a container began to wait, and the pod's start can be much
// earlier: a large image may take longer than the grace to pull and then fail once. So the
// first reconcile that finds such a wait stores its time with the run, and a restarted
// daemon or the next leader counts from the same time.
//
// The grace counts from the first such wait of the run's pod and is never reset. The kubelet
// reports ErrImagePull after a failed pull and ImagePullBackOff while it waits to retry (the
// Kubernetes documentation's "Images" page), so the reason changes with every retry. It may
// also change to another reason that may pass (the image pulls, then its Secret is missing).
// A grace reset on each change would let a pod whose image never pulls hold its GPUs
// without end.
// Once the training container has started it never waits again, because BuildPod sets
// RestartPolicyNever. A later wait of another container, such as a sidecar's, counts from
// the same stored time, which is never before the pod's start.

// containerWaitStart returns when the image pull grace of the run's pod began to count, for
// Judge, or zero while no container of the pod waits for a cause that mayPass. It stores the
// time only while the run has none (ContainerWaitStartedAt), so the grace costs one UPDATE
// per run, whatever the number of resyncs.
// NOTE: some waits began while no dispatcher of this version followed the pod, because the
// daemon was down, an older version ran, or no replica held the Lease. Such a wait shows
// when this dispatcher's caches sync (waitingAtStart) and has no stored time. No field
// records when it began, so it counts from the pod's start, and a long pull that failed
// then may fail its run at once.
func (d *Dispatcher) containerWaitStart(ctx context.Context, run store.Run, pod *corev1.Pod, now time.Time) (time.Time, error) {
	if run.ContainerWaitStartedAt != nil {
		return *run.ContainerWaitStartedAt, nil
	}
	if podFinished(pod) || pod.DeletionTimestamp != nil {
		return time.Time{}, nil
	}
	wait := transientWait(pod)
	if wait == nil {
		return time.Time{}, nil
	}

	since := now
	_, waitedAtStart := d.waitingAtStart.Load(run.ID)
	if waitedAtStart {
		since = podStart(pod)
	}
	stored, err := d.store.RecordContainerWait(ctx, run.ID, since)
	if err != nil {
		return time.Time{}, err
	}
	d.waitingAtStart.Delete(run.ID)
	if stored {
		d.cfg.Logger.Info("container waiting, image pull grace started", "job_id", run.JobID, "run", run.RunNumber,
			"project", run.ProjectID, "pod", run.PodName, "node", pod.Spec.NodeName, "reason", wait.Reason,
			"since", since, "waited_at_start", waitedAtStart)
	}
	return since, nil
}

// noteWaitsAtStart records the runs whose pods already wait for a cause that mayPass once the
// caches have synced, before the first reconcile (containerWaitStart).
func (d *Dispatcher) noteWaitsAtStart() error {
	d.waitingAtStart.Clear()
	pods, err := d.pods.List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list cached pods: %w", err)
	}
	for _, pod := range pods {
		if id, ok := runIDOf(pod); ok && transientWait(pod) != nil {
			d.waitingAtStart.Store(id, struct{}{})
		}
	}
	return nil
}

// recordedWaitStart returns the run's stored ContainerWaitStartedAt, or zero.
func recordedWaitStart(run store.Run) time.Time {
	if run.ContainerWaitStartedAt == nil {
		return time.Time{}
	}
	return *run.ContainerWaitStartedAt
}
