package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// RiverSchema is the PostgreSQL schema of River's tables. Keeping them out of public keeps
// them out of schedulerd's own migrations, which tern applies and rolls back.
const RiverSchema = "river"

// Service is one replica's cron: the scheduler loop that inserts a River job per firing and
// the River client that works them. Every replica may run one.
type Service struct {
	cfg       Config
	client    *river.Client[pgx.Tx]
	scheduler *scheduler

	mu       sync.Mutex
	stopLoop context.CancelFunc
	loopDone chan struct{}
}

// NewService checks cfg and builds the service. It connects to nothing until Start.
func NewService(pool *pgxpool.Pool, cfg Config) (*Service, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}

	tasks := make(map[string]Task, len(cfg.Tasks))
	for _, t := range cfg.Tasks {
		tasks[t.Name] = t
	}
	workers := river.NewWorkers()
	worker := &taskWorker{tasks: tasks, status: &statusWriter{pool: pool}, now: cfg.Now, log: cfg.Logger,
		onFinished: cfg.OnFinished}
	if err := river.AddWorkerSafely(workers, worker); err != nil {
		return nil, fmt.Errorf("register cron worker: %w", err)
	}

	// The caller's logger already has a component key, so River's lines get a key of
	// their own rather than a second "component".
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		ID:                   cfg.ClientID,
		Logger:               cfg.Logger.With("library", "river"),
		Queues:               map[string]river.QueueConfig{Queue: {MaxWorkers: cfg.Workers}},
		RescueStuckJobsAfter: cfg.RescueAfter,
		// The end of Start's context, which SIGTERM ends in `schedulerd run`, then stops as
		// Stop does. Without it, River would cancel running tasks at once.
		SoftStopTimeout: cfg.StopTimeout,
		JobTimeout:      -1, // each task sets its own in taskWorker.Timeout
		Schema:          RiverSchema,
		Workers:         workers,
	})
	if err != nil {
		return nil, fmt.Errorf("create River client: %w", err)
	}

	s := &Service{cfg: cfg, client: client}
	s.scheduler, err = newScheduler(cfg.Tasks, cfg.Location, s.insert, cfg.MaxLateness, cfg.Logger)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Start starts the River client, which works task runs, and the scheduler loop. It returns
// once both run. Stop, or the end of ctx, ends them, and either gives running tasks
// StopTimeout to finish.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLoop != nil {
		return errors.New("cron service already started")
	}

	if err := s.client.Start(ctx); err != nil {
		return fmt.Errorf("start River client: %w", err)
	}

	loopCtx, cancel := context.WithCancel(ctx)
	s.stopLoop, s.loopDone = cancel, make(chan struct{})
	go func() {
		defer close(s.loopDone)
		s.scheduler.loop(loopCtx, s.cfg.Now)
	}()
	s.cfg.Logger.Info("cron service started", "tasks", len(s.cfg.Tasks), "client_id", s.client.ID())
	return nil
}

// Stop ends the scheduler loop and stops the River client. Running tasks get StopTimeout to
// finish before River cancels them, and River retries a cancelled one while it has attempts
// left. Stop waits for them until ctx ends.
func (s *Service) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopLoop == nil {
		return nil
	}

	s.stopLoop()
	<-s.loopDone
	s.stopLoop = nil

	if err := s.client.Stop(ctx); err != nil {
		return fmt.Errorf("stop River client: %w", err)
	}
	s.cfg.Logger.Info("cron service stopped")
	return nil
}

// Tick inserts the jobs of the firings due at now; the scheduler loop calls it at each
// firing. Tests call it with made-up times to act as several replicas at chosen moments.
func (s *Service) Tick(ctx context.Context, now time.Time) (TickResult, error) {
	result, _, err := s.scheduler.tick(ctx, now)
	return result, err
}

func (s *Service) insert(ctx context.Context, args taskArgs, opts *river.InsertOpts) (bool, error) {
	res, err := s.client.Insert(ctx, args, opts)
	if err != nil {
		return false, err
	}
	return res.UniqueSkippedAsDuplicate, nil
}

// MigrateRiver creates or upgrades River's tables in RiverSchema. A session advisory lock
// makes replicas that start together apply each River migration once, as tern does for
// schedulerd's own migrations.
func MigrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate River tables: acquire connection: %w", err)
	}
	defer conn.Release()

	const lock = "SELECT pg_advisory_lock(hashtext('schedulerd.river_migrate'))"
	if _, err := conn.Exec(ctx, lock); err != nil {
		return fmt.Errorf("migrate River tables: take advisory lock: %w", err)
	}
	defer func() {
		unlock := "SELECT pg_advisory_unlock(hashtext('schedulerd.river_migrate'))"
		_, _ = conn.Exec(context.WithoutCancel(ctx), unlock)
	}()

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+RiverSchema); err != nil {
		return fmt.Errorf("migrate River tables: create schema %s: %w", RiverSchema, err)
	}
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{
		Schema: RiverSchema,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return fmt.Errorf("migrate River tables: %w", err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate River tables in schema %s: %w", RiverSchema, err)
	}
	return nil
}
