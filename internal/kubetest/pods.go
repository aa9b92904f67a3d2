package kubetest

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// ErrPodDeleted is returned by WaitPod when the pod is deleted while the
// condition is still false.
var ErrPodDeleted = errors.New("pod was deleted")

// WaitPod watches the pod namespace/name until condition returns true, and
// returns the pod at that point. It returns an error when ctx ends first,
// when condition returns an error, or ErrPodDeleted when the pod is deleted.
// The pod need not exist yet when WaitPod starts.
func (e *Env) WaitPod(ctx context.Context, namespace, name string, condition func(*corev1.Pod) (bool, error)) (*corev1.Pod, error) {
	lw := cache.NewListWatchFromClient(e.Clientset.CoreV1().RESTClient(), "pods", namespace,
		fields.OneTermEqualSelector("metadata.name", name))
	var last *corev1.Pod
	check := func(obj any) (bool, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok {
			return false, nil
		}
		last = pod
		return condition(pod)
	}

	precondition := func(store cache.Store) (bool, error) {
		obj, exists, err := store.GetByKey(namespace + "/" + name)
		if err != nil || !exists {
			return false, err
		}
		return check(obj)
	}
	onEvent := func(event watch.Event) (bool, error) {
		if event.Type == watch.Deleted {
			return false, ErrPodDeleted
		}
		return check(event.Object)
	}
	if _, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, precondition, onEvent); err != nil {
		err = contextError(ctx, err)
		return last, fmt.Errorf("wait for pod %s/%s (last seen: %s): %w", namespace, name, describePod(last), err)
	}
	return last, nil
}

// PodPhaseIs returns a WaitPod condition that is true once the pod is in
// phase. It returns an error when the pod reaches a different terminal
// phase, because a terminal phase never changes.
func PodPhaseIs(phase corev1.PodPhase) func(*corev1.Pod) (bool, error) {
	return func(pod *corev1.Pod) (bool, error) {
		switch pod.Status.Phase {
		case phase:
			return true, nil
		case corev1.PodSucceeded, corev1.PodFailed:
			return false, fmt.Errorf("pod reached phase %s, expected %s", pod.Status.Phase, phase)
		}
		return false, nil
	}
}

// PodUnschedulable is a WaitPod condition that is true once the scheduler
// has set PodScheduled=False with reason Unschedulable.
func PodUnschedulable(pod *corev1.Pod) (bool, error) {
	condition := PodCondition(pod, corev1.PodScheduled)
	return condition != nil && condition.Status == corev1.ConditionFalse &&
		condition.Reason == corev1.PodReasonUnschedulable, nil
}

// PodCondition returns the pod's condition of type conditionType, or nil.
func PodCondition(pod *corev1.Pod, conditionType corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == conditionType {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// contextError replaces the error that UntilWithSync returns when ctx ends,
// which does not wrap ctx.Err(), with ctx.Err(), so that callers can test it
// with errors.Is(err, context.DeadlineExceeded).
func contextError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && wait.Interrupted(err) {
		return ctxErr
	}
	return err
}

func describePod(pod *corev1.Pod) string {
	if pod == nil {
		return "never"
	}
	description := fmt.Sprintf("phase=%s node=%q", pod.Status.Phase, pod.Spec.NodeName)
	if condition := PodCondition(pod, corev1.PodScheduled); condition != nil && condition.Status != corev1.ConditionTrue {
		description += fmt.Sprintf(" PodScheduled=%s reason=%s message=%q", condition.Status, condition.Reason, condition.Message)
	}
	return description
}
