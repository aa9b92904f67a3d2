package dispatcher

import (
	"context"
	"sync"

	"github.com/google/uuid"
)

// createdMarks records pod creations in the database in batches, off the workers' path: a
// worker that created a pod hands the run over and takes the next one, instead of waiting
// for its own UPDATE. Losing a mark is safe. A crash before the flush, or a failed flush,
// leaves the run pending without pod_created_at, and its next reconcile finds the pod in
// the cache and marks it, or creates it again and gets AlreadyExists.
type createdMarks struct {
	mu      sync.Mutex
	pending []uuid.UUID
	wake    chan struct{}
}

func newCreatedMarks() *createdMarks {
	return &createdMarks{wake: make(chan struct{}, 1)}
}

// add queues the mark of run's pod.
func (m *createdMarks) add(run uuid.UUID) {
	m.mu.Lock()
	m.pending = append(m.pending, run)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// take returns the queued marks and empties the queue.
func (m *createdMarks) take() []uuid.UUID {
	m.mu.Lock()
	defer m.mu.Unlock()
	runs := m.pending
	m.pending = nil
	return runs
}

// loopMarks writes the queued marks until ctx ends. Marks queued while one UPDATE runs go
// into the next, so the batches grow with the rate of pod creation.
func (d *Dispatcher) loopMarks(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.marks.wake:
		}
		runs := d.marks.take()
		if len(runs) == 0 {
			continue
		}
		if err := d.store.MarkPodsCreated(ctx, runs); err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("recording pod creations failed, so the runs are reconciled again",
				"runs", len(runs), "err", err)
			for _, id := range runs {
				d.queue.AddRateLimited(id)
			}
		}
	}
}
