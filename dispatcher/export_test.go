package dispatcher

import (
	"context"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
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

// RunReader lets the tests of package dispatcher_test use a run reader directly.
type RunReader = runReader

// NewRunReader returns a run reader on s.
func NewRunReader(s *store.Store) *RunReader { return newRunReader(s) }

// Get reads one run, as a reconcile does.
func (r *runReader) Get(ctx context.Context, id uuid.UUID) (store.Run, error) { return r.get(ctx, id) }

// Waiting returns how many requests wait for the next query.
func (r *runReader) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		return 0
	}
	return len(r.next.ids)
}

// KeptDeletionEnd returns the end that the dispatcher keeps for the run while someone else
// deletes its pod (keepDisruption).
func (d *Dispatcher) KeptDeletionEnd(runID uuid.UUID) (store.RunEnd, bool) {
	end, ok := d.terminating.Load(runID)
	if !ok {
		return store.RunEnd{}, false
	}
	return end.(store.RunEnd), true
}
