package dispatcher

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ensurePriorityClasses creates the priority classes of the job tiers that do not exist.
func (d *Dispatcher) ensurePriorityClasses(ctx context.Context) error {
	for _, c := range PriorityClasses {
		_, err := d.client.SchedulingV1().PriorityClasses().Create(ctx, c.object(), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create priority class %s: %w", c.Name, err)
		}
	}
	return nil
}

// ensureNamespace creates a project's namespace the first time a pod goes into it.
func (d *Dispatcher) ensureNamespace(ctx context.Context, name string) error {
	if _, ok := d.namespaces.Load(name); ok {
		return nil
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{LabelManagedBy: ManagedByValue}}}
	_, err := d.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	d.namespaces.Store(name, true)
	return nil
}

// stopGrace is the grace period of a live pod that schedulerd deletes: the time its program
// has to save a checkpoint after SIGTERM.
const stopGrace = 30 * time.Second

// deletePod deletes a pod whose run has ended, if it still exists. A live pod gets a grace
// period to stop unless force is set; a finished one goes at once. The UID precondition
// keeps it from deleting a newer pod of the same name.
func (d *Dispatcher) deletePod(ctx context.Context, pod *corev1.Pod, why string, force bool) error {
	if pod == nil {
		return nil
	}
	live := pod.Status.Phase == corev1.PodRunning || pod.Status.Phase == corev1.PodPending
	if pod.DeletionTimestamp != nil && live && !force {
		return nil
	}
	grace := int64(0)
	if live && !force {
		grace = int64(stopGrace / time.Second)
	}
	err := d.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &pod.UID},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s (%s): %w", pod.Namespace, pod.Name, why, err)
	}
	return nil
}
