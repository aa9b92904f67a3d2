package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// reconcile brings one run and its pod into agreement.
func (d *Dispatcher) reconcile(ctx context.Context, runID uuid.UUID) error {
	run, err := d.runs.get(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		d.forgetPod(runID)
		return nil
	}
	if err != nil {
		return err
	}
	pod, err := d.cachedPod(run)
	if err != nil {
		return err
	}

	if run.Status != store.RunPending && run.Status != store.RunRunning {
		d.forgetPod(run.ID)
		return d.deletePod(ctx, pod, "run already ended", false)
	}
	if pod == nil {
		pod = d.deletedFinishedPod(run.ID)
	}
	// A container that started counts from its start, also when the run is about to stop.
	if err := d.recordStart(ctx, &run, pod); err != nil {
		return err
	}
	if stop, ok := run.StopEnd(); ok {
		return d.finishStop(ctx, run, pod, stop)
	}
	if podFinished(pod) {
		// The run ends as its pod did, even when its job was paused or cancelled, or its
		// queue's drain deadline passed, before the dispatcher saw the pod finish: the work
		// is over, and its GPU-hours stop at the container's end.
		return d.reconcilePod(ctx, run, pod)
	}
	if run.JobStatus != store.JobRunning {
		// The job was cancelled or paused while this run was live.
		return d.stopRun(ctx, run, pod, store.RunEnd{Status: store.RunCancelled, Reason: jobStopReason(run.JobStatus)})
	}
	if d.drainDeadlinePassed(run) {
		return d.stopRun(ctx, run, pod, store.RunEnd{Status: store.RunPreempted, Reason: drainDeadlineReason,
			NotCounted: true})
	}
	if pod == nil {
		return d.reconcileMissingPod(ctx, run)
	}
	return d.reconcilePod(ctx, run, pod)
}

// nodeGone reports whether the named node is gone. An empty name means an unbound pod,
// which is never on a lost node. A node missing from the informer cache is confirmed with
// the API, because the node watch may lag behind the pod watch (for a node that has just
// joined, say) and a run judged lost has its pod force-deleted.
func (d *Dispatcher) nodeGone(ctx context.Context, name string) (bool, error) {
	if name == "" {
		return false, nil
	}
	if _, err := d.nodes.Get(name); !apierrors.IsNotFound(err) {
		return false, nil
	}
	_, err := d.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsNotFound(err):
		return true, nil
	}
	return false, fmt.Errorf("confirm node %s is gone: %w", name, err)
}

// endLostRun ends a run whose node is gone and force-deletes its pod. A preemption this
// way does not count toward the job's max_preemptions, because the job did not cause the
// loss. The node's capacity leaves the database first: the end of the run requeues its job
// and wakes the scheduler, which would otherwise admit the job again on the lost node's
// GPUs before the capacity loop's next count.
func (d *Dispatcher) endLostRun(ctx context.Context, run store.Run, pod *corev1.Pod, end store.RunEnd) error {
	if err := d.syncCapacity(ctx); err != nil {
		return fmt.Errorf("count GPU capacity without the lost node: %w", err)
	}
	end.NotCounted = true
	return d.endRun(ctx, run, pod, end, true)
}

// forgetPod drops what the dispatcher kept of the run's pod, once the run has ended or is
// gone.
func (d *Dispatcher) forgetPod(runID uuid.UUID) {
	d.terminating.Delete(runID)
	d.finished.Delete(runID)
	d.deletedUnfinished.Delete(runID)
	d.waitingAtStart.Delete(runID)
}

// podFinished reports whether pod exists and its containers have ended, in success or
// failure.
func podFinished(pod *corev1.Pod) bool {
	return pod != nil && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed)
}

func (d *Dispatcher) cachedPod(run store.Run) (*corev1.Pod, error) {
	pod, err := d.pods.Pods(run.Namespace).Get(run.PodName)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return pod, err
}

// deletedFinishedPod returns the last state of the run's pod if the pod had finished when
// its deletion reached the cache (onPodDelete), or nil.
func (d *Dispatcher) deletedFinishedPod(runID uuid.UUID) *corev1.Pod {
	if pod, ok := d.finished.Load(runID); ok {
		return pod.(*corev1.Pod)
	}
	return nil
}

// reconcileMissingPod creates the pod of a new run, or judges a pod that the informer
// cache lacks as the API server has it, or ends the run whose pod vanished. The cache may
// lag behind a pod just created, and it never holds a pod whose managed-by label was
// removed, because the informer selects on that label. No watch event comes for such a
// pod, so the periodic resync judges it again until its run ends.
func (d *Dispatcher) reconcileMissingPod(ctx context.Context, run store.Run) error {
	if run.Status == store.RunPending && run.PodCreatedAt == nil {
		return d.createPod(ctx, run)
	}
	pod, err := d.podFromAPI(ctx, run)
	if err != nil {
		return err
	}
	if pod != nil {
		if err := d.recordStart(ctx, &run, pod); err != nil {
			return err
		}
		return d.reconcilePod(ctx, run, pod)
	}
	end, err := d.deletedPodEnd(ctx, run.ID)
	if err != nil {
		return err
	}
	d.terminating.Delete(run.ID)
	end.EndedAt = d.cfg.Now()
	return d.endRun(ctx, run, nil, end, false)
}

// reconcilePod acts on what a live run's pod shows. reconcile has recorded the container's
// start (recordStart) before it calls this.
func (d *Dispatcher) reconcilePod(ctx context.Context, run store.Run, pod *corev1.Pod) error {
	now := d.cfg.Now()
	node, err := d.podNodeFacts(ctx, pod)
	if err != nil {
		return err
	}
	waitStarted, err := d.containerWaitStart(ctx, run, pod, now)
	if err != nil {
		return err
	}
	obs := Judge(pod, node, now, d.cfg.limits(), waitStarted)
	if obs.Verdict != Ended {
		gone, err := d.nodeGone(ctx, obs.Node)
		if err != nil {
			return err
		}
		if gone {
			// Nothing runs a pod bound to a deleted node: end the run now and force the
			// pod's deletion, since no kubelet will confirm it.
			end := store.RunEnd{Status: store.RunPreempted, EndedAt: now, Reason: "node " + obs.Node + " lost"}
			return d.endLostRun(ctx, run, pod, end)
		}
	}

	if obs.Verdict == Stuck {
		wait, note, err := d.waitsForGPUs(ctx, run, pod, now)
		if err != nil {
			return err
		}
		if wait {
			obs.Verdict = Waiting
		}
		obs.End.Reason += note
	}

	switch obs.Verdict {
	case Waiting:
		if run.PodCreatedAt == nil {
			return d.store.MarkPodCreated(ctx, run.ID)
		}
	case Started:
		return d.enforceDeadline(ctx, run, pod, now)
	case Ended, Stuck:
		return d.endRun(ctx, run, pod, d.keptDisruption(run.ID, obs.End), false)
	case Terminating:
		d.keepDisruption(run.ID, obs.End)
	}
	return nil
}

// recordStart records the start of a pending run whose pod's container has started, and
// updates run to match.
func (d *Dispatcher) recordStart(ctx context.Context, run *store.Run, pod *corev1.Pod) error {
	if pod == nil || run.Status != store.RunPending {
		return nil
	}
	started := containerStart(pod)
	if started.IsZero() {
		return nil
	}
	if err := d.startRun(ctx, *run, Observation{StartedAt: started, Node: pod.Spec.NodeName}); err != nil {
		return err
	}
	run.Status, run.StartedAt = store.RunRunning, &started
	return nil
}

func (d *Dispatcher) startRun(ctx context.Context, run store.Run, obs Observation) error {
	err := d.store.StartRun(ctx, run.ID, obs.StartedAt, obs.Node)
	if errors.Is(err, store.ErrStaleStatus) {
		return nil // another reconcile recorded the start
	}
	if err != nil {
		return err
	}
	if run.JobStartedAt == nil {
		// The job's first start, whichever run it is: a job whose earlier runs never
		// started (requeued as unschedulable, or from a lost node) waited the longest.
		d.cfg.Metrics.ObserveSubmitToRunning(run.JobPriority, obs.StartedAt.Sub(run.JobCreatedAt))
	}
	d.cfg.Logger.Info("run started", "job_id", run.JobID, "run", run.RunNumber, "project", run.ProjectID,
		"pod", run.PodName, "node", obs.Node)
	return nil
}

// enforceDeadline stops a run that has run past its maximum run time.
func (d *Dispatcher) enforceDeadline(ctx context.Context, run store.Run, pod *corev1.Pod, now time.Time) error {
	spec, err := jobspec.Decode(run.ConfigJSON)
	if err != nil || run.StartedAt == nil {
		return nil
	}
	limit := time.Duration(spec.MaxRuntimeSeconds)*time.Second + d.cfg.DeadlineGrace
	if now.Sub(*run.StartedAt) < limit {
		return nil
	}
	return d.stopRun(ctx, run, pod, store.RunEnd{Status: store.RunFailed, Retryable: true,
		Reason: "DeadlineExceeded: ran past max_runtime_seconds"})
}

// stopRun ends a live run with end. A run whose pod the API server lacks too ends at once.
// Otherwise the stop is recorded in the database first, so that a restart finishes it with
// the same end, and then the pod is deleted with its grace period. The run stays live meanwhile: it accepts
// the checkpoint its program saves on SIGTERM, its job cannot start another run, and its
// hours run until the container stops. finishStop ends it once the pod is gone.
func (d *Dispatcher) stopRun(ctx context.Context, run store.Run, pod *corev1.Pod, end store.RunEnd) error {
	end.RunID = run.ID
	if pod == nil {
		var err error
		if pod, err = d.podFromAPI(ctx, run); err != nil {
			return err
		}
	}
	if pod == nil {
		end.EndedAt = d.cfg.Now()
		return d.endRun(ctx, run, nil, end, false)
	}

	err := d.store.RequestStop(ctx, end, d.cfg.Now())
	if errors.Is(err, store.ErrStaleStatus) {
		// The run ended meanwhile (a drain, another reconcile), so its pod goes too.
		return d.deletePod(ctx, pod, "run already ended", false)
	}
	if err != nil {
		return err
	}
	d.cfg.Logger.Info("stopping run", "job_id", run.JobID, "run", run.RunNumber, "project", run.ProjectID,
		"pod", run.PodName, "outcome", end.Status, "reason", end.Reason)
	return d.deletePod(ctx, pod, "stop: "+end.Reason, false)
}

// finishStop ends a run whose stop was requested, once its pod is gone, has finished, or is
// stuck terminating on an unreachable node. Until then it makes sure the pod is
// being deleted, which a crash right after RequestStop may have left undone. A pod that
// finished before its deletion was requested ends its run as it finished instead: the
// stop came too late to change anything.
func (d *Dispatcher) finishStop(ctx context.Context, run store.Run, pod *corev1.Pod, stop store.RunEnd) error {
	now := d.cfg.Now()
	stop.NotCounted = drainStop(stop)
	if pod == nil {
		var err error
		if pod, err = d.podFromAPI(ctx, run); err != nil {
			return err
		}
	}
	if pod == nil {
		// The stop's end replaces what reconcilePod and onPodDelete kept.
		d.terminating.Delete(run.ID)
		d.deletedUnfinished.Delete(run.ID)
		stop.EndedAt = stopEnded(run, now)
		return d.endRun(ctx, run, nil, stop, false)
	}
	if podFinished(pod) && !deletedBeforeFinish(pod, now) {
		return d.reconcilePod(ctx, run, pod)
	}
	if pod.DeletionTimestamp == nil {
		return d.deletePod(ctx, pod, "stop: "+stop.Reason, false)
	}

	obs := Judge(pod, d.nodeFacts(pod.Spec.NodeName), now, d.cfg.limits(), recordedWaitStart(run))
	gone, err := d.nodeGone(ctx, obs.Node)
	switch {
	case err != nil:
		return err
	case gone:
		// No kubelet will stop the pod: end the run now and force the pod's deletion.
		stop.EndedAt = now
		return d.endLostRun(ctx, run, pod, stop)
	case obs.Verdict == Ended:
		stop.EndedAt = obs.End.EndedAt
		return d.endRun(ctx, run, pod, stop, false)
	}
	return nil // the pod is still stopping; its deletion or its end wakes this run again
}

// podFromAPI reads the run's pod from the API server, or returns nil when it does not exist.
// A stop checks there before it ends a run whose pod the informer cache lacks, because the
// cache may not yet hold a pod created moments ago. Ending the run would let its job be
// admitted again while that pod still runs.
func (d *Dispatcher) podFromAPI(ctx context.Context, run store.Run) (*corev1.Pod, error) {
	pod, err := d.client.CoreV1().Pods(run.Namespace).Get(ctx, run.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("confirm pod %s/%s is gone: %w", run.Namespace, run.PodName, err)
	}
	return pod, nil
}

// stopEnded returns when the container of a stopped run whose pod is gone stopped, at the latest:
// the pod's deletion deadline, one grace period after the stop was requested. A daemon that
// was down while the pod went would otherwise charge the whole outage.
func stopEnded(run store.Run, now time.Time) time.Time {
	if run.StopRequestedAt == nil {
		return now
	}
	if deadline := run.StopRequestedAt.Add(stopGrace); deadline.Before(now) {
		return deadline
	}
	return now
}

// endRun records a run's end once, then deletes its pod, which is no longer needed and
// costs apiserver memory. It drops the pod's state that onPodDelete kept, since no event
// of that pod may come again to drop it.
func (d *Dispatcher) endRun(ctx context.Context, run store.Run, pod *corev1.Pod, end store.RunEnd, force bool) error {
	end.RunID = run.ID
	result, err := d.store.EndRun(ctx, end)
	switch {
	case errors.Is(err, store.ErrStaleStatus):
	case err != nil:
		return err
	default:
		d.cfg.Logger.Info("run ended", "job_id", run.JobID, "run", run.RunNumber, "project", run.ProjectID,
			"pod", run.PodName, "outcome", end.Status, "reason", end.Reason, "gpu_hours", result.GPUHoursUsed,
			"job_status", result.JobStatus)
		d.cfg.Metrics.RunEnded(runEndCause(end, result), result.ProjectID, result.GPUHoursUsed)
		d.cfg.OnRunEnded(result)
	}
	// The run has ended: a deleted pod's kept state is not needed.
	d.finished.Delete(run.ID)
	d.deletedUnfinished.Delete(run.ID)
	return d.deletePod(ctx, pod, string(end.Status), force)
}

// createPod creates the pod of a pending run. AlreadyExists means an earlier attempt (before
// a crash, say) created it, which is what we want.
func (d *Dispatcher) createPod(ctx context.Context, run store.Run) error {
	spec, err := jobspec.Decode(run.ConfigJSON)
	if err != nil {
		return d.endRun(ctx, run, nil, store.RunEnd{Status: store.RunFailed, EndedAt: d.cfg.Now(),
			Reason: "invalid job config: " + err.Error()}, false)
	}
	resume := ""
	if run.RunNumber > 1 { // a first run has no earlier checkpoint to resume from
		resume, err = d.store.LastCheckpoint(ctx, run.Job())
		if err != nil {
			return err
		}
	}
	if err := d.ensureNamespace(ctx, run.Namespace); err != nil {
		return err
	}

	model := ""
	if run.GPUModel != nil {
		model = *run.GPUModel
	}
	pod := BuildPod(PodInput{JobID: run.JobID, JobCreatedAt: run.JobCreatedAt, RunID: run.ID,
		RunNumber: run.RunNumber, ProjectID: run.ProjectID, Namespace: run.Namespace, PodName: run.PodName,
		Priority: run.JobPriority, GPUMilli: run.GPUMilli, GPUModel: model, ResumeFrom: resume, Spec: spec,
		Tolerations: d.cfg.PodTolerations})

	if err := d.cfg.Fence(); err != nil {
		return fmt.Errorf("create pod %s/%s: %w", run.Namespace, run.PodName, err)
	}
	_, err = d.client.CoreV1().Pods(run.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
	case namespaceGone(err):
		// Someone deleted the namespace after this dispatcher made or saw it. Forgetting it
		// makes a later try create it again, once a terminating namespace is gone.
		d.namespaces.Delete(run.Namespace)
		return fmt.Errorf("create pod %s/%s: its namespace is gone or being deleted, so a later try creates it again: %w",
			run.Namespace, run.PodName, err)
	case apierrors.IsInvalid(err), apierrors.IsForbidden(err) && !apierrors.IsTimeout(err):
		return d.endRun(ctx, run, nil, store.RunEnd{Status: store.RunFailed, EndedAt: d.cfg.Now(),
			Reason: "pod rejected: " + err.Error()}, false)
	default:
		return fmt.Errorf("create pod %s/%s: %w", run.Namespace, run.PodName, err)
	}
	if err == nil {
		d.cfg.Metrics.ObserveDispatch(d.cfg.Now().Sub(run.CreatedAt))
	}
	d.cfg.Logger.Debug("pod created", "job_id", run.JobID, "run", run.RunNumber, "pod", run.PodName)
	d.marks.add(run.ID)
	return nil
}

// namespaceGone reports whether a pod creation failed because its namespace does not exist
// or is being deleted. The API server rejects the second with Forbidden, which would
// otherwise fail the run as a pod that can never be created.
func namespaceGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}

// The drain deadline. An operator who drains a queue may give a deadline. Once it passes,
// the queue's live runs end as preempted and their jobs go back to the queue, which admits
// none of them while it stays drained. The check runs on every reconcile of a live run, so
// it takes effect within one ResyncInterval of the deadline.

// drainDeadlineReason is the end reason of runs preempted at a drain deadline.
const drainDeadlineReason = store.DrainReason + ": deadline passed"

// drainStop reports whether a stop recorded in the database is a drain's. Such a
// preemption does not count toward the job's max_preemptions, because the job did not
// cause it. The database keeps only a stop's status and reason, and only schedulerd writes
// stop reasons, so the reason identifies the drain.
func drainStop(stop store.RunEnd) bool {
	return stop.Status == store.RunPreempted && (stop.Reason == store.DrainReason || stop.Reason == drainDeadlineReason)
}

// drainDeadlinePassed reports whether the run's queue is drained with a deadline that has
// passed. store.GetRun reads the deadline with the run.
func (d *Dispatcher) drainDeadlinePassed(run store.Run) bool {
	return run.DrainDeadline != nil && !d.cfg.Now().Before(*run.DrainDeadline)
}
