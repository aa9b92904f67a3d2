package dispatcher_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// heldReads counts the run reads of a pool and blocks the first one until release closes,
// so that a test can make requests wait behind a running query.
type heldReads struct {
	reads   atomic.Int32
	started chan struct{}
	release chan struct{}
}

func (h *heldReads) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(data.SQL, "r.id = ANY($1)") {
		return ctx
	}
	if h.reads.Add(1) == 1 {
		close(h.started)
		<-h.release
	}
	return ctx
}

func (h *heldReads) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// admitCPUJobs submits n CPU-only jobs of one project and admits them all, returning their
// run ids.
func admitCPUJobs(t *testing.T, s *store.Store, n int) []uuid.UUID {
	t.Helper()
	daemontest.CreateProject(t, s, "reader", 100, n)
	for range n {
		daemontest.SubmitJob(t, s, "reader", 5, jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 60})
	}
	admissions, err := s.Dequeue(context.Background(), store.CandidateWindow{Limit: n},
		func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
			decisions := make([]store.Decision, len(snap.Candidates))
			for i, c := range snap.Candidates {
				decisions[i] = store.Decision{Candidate: c}
			}
			return decisions, nil
		})
	if err != nil || len(admissions) != n {
		t.Fatalf("admit: %d of %d jobs, err %v", len(admissions), n, err)
	}
	ids := make([]uuid.UUID, n)
	for i, a := range admissions {
		ids[i] = a.RunID
	}
	return ids
}

// Requests that arrive while a read runs share the next query, and each request gets its
// own run, or not found for an id without a run.
func TestRunReaderBatchesWaitingRequests(t *testing.T) {
	tracer := &heldReads{started: make(chan struct{}), release: make(chan struct{})}
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s := store.New(pool)
	ids := append(admitCPUJobs(t, s, 20), uuid.New())
	r := dispatcher.NewRunReader(s)

	got := make([]store.Run, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	request := func(i int) {
		wg.Go(func() { got[i], errs[i] = r.Get(context.Background(), ids[i]) })
	}
	request(0)
	<-tracer.started
	for i := 1; i < len(ids); i++ {
		request(i)
	}
	waitRequests(t, r, len(ids)-1)
	close(tracer.release)
	wg.Wait()

	if n := tracer.reads.Load(); n != 2 {
		t.Errorf("%d queries for %d requests, want 2: the first request's and one for the %d that waited",
			n, len(ids), len(ids)-1)
	}
	for i, id := range ids[:len(ids)-1] {
		if errs[i] != nil || got[i].ID != id {
			t.Errorf("request %d: run %s, err %v, want run %s", i, got[i].ID, errs[i], id)
		}
	}
	if last := len(ids) - 1; !errors.Is(errs[last], store.ErrNotFound) {
		t.Errorf("request for a missing run: %v, want ErrNotFound", errs[last])
	}
}

// waitRequests waits until n requests wait for the reader's next query.
func waitRequests(t *testing.T, r *dispatcher.RunReader, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for the next query after 10s, want %d", r.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
