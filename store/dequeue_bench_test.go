package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/bench"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// BenchmarkDequeue times one admission transaction of the scheduler's default batch, with
// ample capacity and budgets, so that every dequeue admits a full batch. scripts/bench.sh
// compares the same path with pgbench and River.
func BenchmarkDequeue(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	const batch = bench.DequeueBatch
	// Each iteration admits one batch; b.N is unknown until the loop runs, so the queue is
	// refilled whenever it runs low.
	if err := bench.SeedQueue(ctx, pool, 10*batch); err != nil {
		b.Fatal(err)
	}
	s := store.New(pool)
	policy := scheduler.Policy{StarvationBound: 10 * time.Minute}
	decide := func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		decisions, refusals := policy.Decide(snap)
		return decisions[:min(len(decisions), batch)], refusals
	}

	queued, admitted := 10*batch, 0
	for b.Loop() {
		if queued < 4*batch {
			b.StopTimer()
			if err := bench.SeedQueue(ctx, pool, 10*batch); err != nil {
				b.Fatal(err)
			}
			queued += 10 * batch
			b.StartTimer()
		}
		admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 4 * batch}, decide)
		if err != nil {
			b.Fatal(err)
		}
		if len(admissions) != batch {
			b.Fatalf("dequeue admitted %d jobs, want a full batch of %d", len(admissions), batch)
		}
		queued -= len(admissions)
		admitted += len(admissions)
	}
	b.ReportMetric(float64(admitted)/b.Elapsed().Seconds(), "jobs/s")
}
