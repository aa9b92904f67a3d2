package dispatcher

import "context"

// NodeGone lets the tests of package dispatcher_test ask nodeGone directly.
func (d *Dispatcher) NodeGone(ctx context.Context, name string) (bool, error) {
	return d.nodeGone(ctx, name)
}
