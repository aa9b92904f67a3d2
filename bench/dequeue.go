package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// DequeueBatch is the scheduler's default batch: the most jobs one dequeue admits.
const DequeueBatch = 64

// dequeueRun is one timed drain of the queue.
type dequeueRun struct {
	Admitted int
	Elapsed  time.Duration
}

// JobsPerSecond returns the run's throughput.
func (r dequeueRun) JobsPerSecond() float64 { return Rate(r.Admitted, r.Elapsed) }

// drainQueue moves every queued job to running with workers concurrent schedulers, as
// replicas of the daemon would without Kubernetes. Each calls the scheduler's own Drain,
// as its Run loop does: rounds of dequeues with scheduler.Policy and a batch of
// DequeueBatch, up to two transactions at a time, then the wait explanation when a round
// comes up short. A scheduler stops when a Drain admits nothing.
func drainQueue(ctx context.Context, pool *pgxpool.Pool, workers int) (dequeueRun, error) {
	s := store.New(pool)
	var admitted atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup

	start := time.Now()
	for range workers {
		loop := scheduler.New(s, scheduler.Config{Batch: DequeueBatch,
			Policy: scheduler.Policy{StarvationBound: 10 * time.Minute}})
		wg.Go(func() {
			for {
				n, err := loop.Drain(ctx)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if n == 0 {
					return
				}
				admitted.Add(int64(n))
			}
		})
	}
	wg.Wait()
	run := dequeueRun{Admitted: int(admitted.Load()), Elapsed: time.Since(start)}
	return run, firstErr
}

// checkDrained fails unless every one of want queued jobs was admitted once.
func checkDrained(ctx context.Context, pool *pgxpool.Pool, run dequeueRun, want int) error {
	var queued, pending int
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM job_queue),
		(SELECT count(*) FROM runs WHERE status = 'pending')`).Scan(&queued, &pending)
	if err != nil {
		return err
	}
	if run.Admitted != want || queued != 0 || pending != want {
		return fmt.Errorf("dequeue admitted %d jobs into %d runs and left %d queued, want %d admitted and none left",
			run.Admitted, pending, queued, want)
	}
	return nil
}

// DequeueSetup is a database with queued jobs ready to be drained, and reset between
// runs.
type DequeueSetup struct {
	Pool   *pgxpool.Pool
	Queued int
	// Calls, after Trace, times every statement of the following runs.
	Calls CallTimes
}

// Trace replaces the pool with one on database name whose statements are timed into Calls.
func (d *DequeueSetup) Trace(ctx context.Context, env *Env, name string) error {
	pool, err := env.TracedPool(ctx, name, 16, &d.Calls)
	if err != nil {
		return err
	}
	d.Pool.Close()
	d.Pool = pool
	return nil
}

// NewDequeueSetup creates database name with the bench projects, ample GPU capacity and
// queued jobs.
func NewDequeueSetup(ctx context.Context, env *Env, name string, queued int) (*DequeueSetup, error) {
	pool, err := env.FreshDatabase(ctx, name, 16)
	if err != nil {
		return nil, err
	}
	s := store.New(pool)
	if err := seedProjects(ctx, s, "bench-dequeue"); err != nil {
		return nil, err
	}
	if err := seedAmpleCapacity(ctx, s); err != nil {
		return nil, err
	}
	kinds, err := shapes(0)
	if err != nil {
		return nil, err
	}
	if err := seedQueued(ctx, pool, queued, kinds); err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return nil, err
	}
	return &DequeueSetup{Pool: pool, Queued: queued}, nil
}

// Measure drains the queue once with workers loops, checks that every job was admitted,
// and puts the jobs back in the queue for the next run.
func (d *DequeueSetup) Measure(ctx context.Context, workers int) (float64, error) {
	run, err := drainQueue(ctx, d.Pool, workers)
	if err != nil {
		return 0, err
	}
	if err := checkDrained(ctx, d.Pool, run, d.Queued); err != nil {
		return 0, err
	}
	if _, err := requeue(ctx, d.Pool); err != nil {
		return 0, err
	}
	return run.JobsPerSecond(), nil
}
