package bench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/schedulerd/schedulerd/cron"
)

// noopArgs is the River job of the reference: its worker does nothing.
type noopArgs struct {
	Seq int `json:"seq"`
}

func (noopArgs) Kind() string { return "bench_noop" }

// RiverReference works no-op jobs with River on the same server, as the reference for the
// dequeue. It uses only River's public API at the version in go.mod.
type RiverReference struct {
	pool *pgxpool.Pool
	jobs int
}

// NewRiverReference creates database name with River's tables.
func NewRiverReference(ctx context.Context, env *Env, name string, jobs int) (*RiverReference, error) {
	pool, err := env.FreshDatabase(ctx, name, 40)
	if err != nil {
		return nil, err
	}
	return &RiverReference{pool: pool, jobs: jobs}, nil
}

// Close closes the database pool.
func (r *RiverReference) Close() { r.pool.Close() }

// Measure starts clients River clients that each work DequeueBatch jobs at a time, inserts
// the jobs in one transaction, and returns the jobs completed per second from that commit
// until the last completion. The clients fetch as often as River allows
// (FetchCooldownMin), so that River's default 100 ms between fetches does not decide the
// result.
func (r *RiverReference) Measure(ctx context.Context, clients int) (float64, error) {
	if _, err := r.pool.Exec(ctx, `TRUNCATE `+cron.RiverSchema+`.river_job`); err != nil {
		return 0, fmt.Errorf("empty River's job table: %w", err)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(context.Context, *river.Job[noopArgs]) error { return nil }))

	completed := make(chan *river.Event, r.jobs+1)
	var started []*river.Client[pgx.Tx]
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, c := range started {
			_ = c.Stop(stopCtx)
		}
	}()
	for range clients {
		client, err := river.NewClient(riverpgxv5.New(r.pool), &river.Config{
			Logger:            slog.New(slog.DiscardHandler),
			Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DequeueBatch}},
			FetchCooldown:     river.FetchCooldownMin,
			FetchPollInterval: 50 * time.Millisecond,
			Schema:            cron.RiverSchema,
			Workers:           workers,
		})
		if err != nil {
			return 0, fmt.Errorf("create River client: %w", err)
		}
		events, _ := client.SubscribeConfig(&river.SubscribeConfig{ChanSize: r.jobs + 1,
			Kinds: []river.EventKind{river.EventKindJobCompleted}})
		go forward(events, completed)
		if err := client.Start(ctx); err != nil {
			return 0, fmt.Errorf("start River client: %w", err)
		}
		started = append(started, client)
	}

	params := make([]river.InsertManyParams, r.jobs)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{Seq: i}}
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	if _, err := started[0].InsertManyFastTx(ctx, tx, params); err != nil {
		_ = tx.Rollback(ctx)
		return 0, fmt.Errorf("insert River jobs: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}

	start := time.Now()
	deadline := time.After(10 * time.Minute)
	for done := 0; done < r.jobs; done++ {
		select {
		case <-completed:
		case <-deadline:
			return 0, fmt.Errorf("timed out after 10 minutes with %d of %d River jobs completed", done, r.jobs)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return Rate(r.jobs, time.Since(start)), nil
}

func forward(from <-chan *river.Event, to chan<- *river.Event) {
	for e := range from {
		to <- e
	}
}
