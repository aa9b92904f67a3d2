package accounting_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/bench"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// BenchmarkAccrueRunning times one accrual pass, the statement the accruer runs every 30 s,
// over 10,000 running runs.
func BenchmarkAccrueRunning(b *testing.B) {
	const running = 10_000
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	if err := bench.SeedQueue(ctx, pool, running); err != nil {
		b.Fatal(err)
	}
	loop := scheduler.New(store.New(pool), scheduler.Config{Batch: 500})
	for {
		n, err := loop.RunOnce(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	_, err := pool.Exec(ctx, `UPDATE runs SET status = 'running', started_at = now() - interval '10 minutes'
		WHERE status = 'pending'`)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE runs`); err != nil {
		b.Fatal(err)
	}

	s := store.New(pool)
	now := time.Now()
	for b.Loop() {
		accrued, err := s.AccrueRunning(ctx, now)
		if err != nil {
			b.Fatal(err)
		}
		if accrued != running {
			b.Fatalf("accrued %d runs, want %d", accrued, running)
		}
	}
	var used float64
	if err := pool.QueryRow(ctx, `SELECT min(gpu_hours_used) FROM runs`).Scan(&used); err != nil {
		b.Fatal(err)
	}
	if used <= 0 {
		b.Fatalf("least GPU-hours accrued %v, want more than 0 after 10 minutes of running", used)
	}
}
