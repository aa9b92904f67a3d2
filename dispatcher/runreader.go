package dispatcher

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// runReader batches the run reads of the reconcile workers. A worker whose request comes
// while a query runs joins the next batch, and one worker of that batch reads it for all.
// A lone request is read at once. At the rate of pod creation one query then serves many
// workers, so PostgreSQL parses, plans and starts one statement instead of one per run.
// It needs no goroutine of its own, so a dispatcher whose Run never started reconciles too.
type runReader struct {
	store *store.Store

	mu      sync.Mutex
	reading bool      // a query runs now
	next    *runBatch // the requests that the next query reads, nil when none waits
}

// runBatch is a set of requests that one query reads.
type runBatch struct {
	ids  []uuid.UUID
	lead chan struct{} // one token, once the batch's turn to be read comes
	done chan struct{} // closed once runs and err are set
	runs map[uuid.UUID]store.Run
	err  error
}

func newRunReader(s *store.Store) *runReader {
	return &runReader{store: s}
}

// get returns the run with id, or an error wrapping store.ErrNotFound when it does not
// exist. A batch's query runs with the context of the worker that reads it, so when that
// context ends, every request of the batch fails.
func (r *runReader) get(ctx context.Context, id uuid.UUID) (store.Run, error) {
	b, lead := r.join(id)
	if !lead {
		select {
		case <-b.done:
			return b.result(id)
		case <-b.lead:
			r.detach(b)
		}
	}
	r.read(ctx, b)
	return b.result(id)
}

// join adds id to the next batch. It reports true when no query runs, in which case the
// caller reads the batch now.
func (r *runReader) join(id uuid.UUID) (*runBatch, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.next = &runBatch{lead: make(chan struct{}, 1), done: make(chan struct{})}
	}
	b := r.next
	b.ids = append(b.ids, id)
	if r.reading {
		return b, false
	}
	r.reading, r.next = true, nil
	return b, true
}

// detach closes b to new requests, which start the batch after it.
func (r *runReader) detach(b *runBatch) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == b {
		r.next = nil
	}
}

// read queries the runs of b, then hands the turn to the batch that gathered meanwhile.
func (r *runReader) read(ctx context.Context, b *runBatch) {
	runs, err := r.store.GetRuns(ctx, b.ids)
	b.runs = make(map[uuid.UUID]store.Run, len(runs))
	for _, run := range runs {
		b.runs[run.ID] = run
	}
	b.err = err
	close(b.done)

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == nil {
		r.reading = false
		return
	}
	r.next.lead <- struct{}{}
}

// result returns the run with id as b read it.
func (b *runBatch) result(id uuid.UUID) (store.Run, error) {
	if b.err != nil {
		return store.Run{}, b.err
	}
	run, ok := b.runs[id]
	if !ok {
		return store.Run{}, fmt.Errorf("get run %s: %w", id, store.ErrNotFound)
	}
	return run, nil
}
