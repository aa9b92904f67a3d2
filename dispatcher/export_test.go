package dispatcher

import "context"

// NodeGone lets the tests of package dispatcher_test ask nodeGone directly.
func (d *Dispatcher) NodeGone(ctx context.Context, name string) (bool, error) {
	return d.nodeGone(ctx, name)
}

// OnPodDelete hands a pod's deletion to a dispatcher whose informers never started.
func (d *Dispatcher) OnPodDelete(obj any) { d.onPodDelete(obj) }

// Reconcile lets the tests of package dispatcher_test reconcile one run directly.
var Reconcile = (*Dispatcher).reconcile
