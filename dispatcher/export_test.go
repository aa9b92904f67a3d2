package dispatcher

import (
	"context"

	"github.com/google/uuid"
)

// NodeGone lets the tests of package dispatcher_test ask nodeGone directly.
func (d *Dispatcher) NodeGone(ctx context.Context, name string) (bool, error) {
	return d.nodeGone(ctx, name)
}

// OnPodDelete hands a pod's deletion to a dispatcher whose informers never started.
func (d *Dispatcher) OnPodDelete(obj any) { d.onPodDelete(obj) }

// Reconcile lets the tests of package dispatcher_test reconcile one run directly.
var Reconcile = (*Dispatcher).reconcile

// KeepsFinishedPod reports whether the dispatcher still holds the last state of the run's
// deleted, finished pod.
func (d *Dispatcher) KeepsFinishedPod(runID uuid.UUID) bool {
	_, ok := d.finished.Load(runID)
	return ok
}
