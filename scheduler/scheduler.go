// Package scheduler decides which queued jobs run next. Each dequeue is one PostgreSQL
// transaction: it locks the head of the queue with SKIP LOCKED, checks each job against its
// project's quota (drained, concurrency, GPU-hour budget) and the free GPU capacity of the
// models it may use, and admits the ones that fit by creating their runs. It never talks to
// Kubernetes: the dispatcher turns admitted runs into pods.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// Config tunes the loop. Zero values take the defaults in parentheses.
type Config struct {
	// Batch is the most jobs one transaction admits (32).
	Batch int
	// PollInterval is the longest wait between dequeues when nothing wakes the loop (1s).
	PollInterval time.Duration
	// Policy holds the admission rules; StarvationBound defaults to 10 minutes.
	Policy Policy
	// OnAdmitted receives each transaction's new runs, for the dispatcher. It must not block
	// for long: the loop waits for it.
	OnAdmitted func([]store.Admission)
	// Metrics receives admission decisions and dequeue durations; nil records nothing.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Scheduler is the dequeue loop.
type Scheduler struct {
	cfg   Config
	store *store.Store
	wake  chan struct{}
	// wide is set after a dequeue refused candidates: the next one reads four batches of
	// candidates, to look past the refused jobs at the head of the queue. Only the loop's
	// goroutine touches it.
	wide bool
}

// New returns a scheduler; Run starts it.
func New(s *store.Store, cfg Config) *Scheduler {
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Policy.StarvationBound <= 0 {
		cfg.Policy.StarvationBound = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.OnAdmitted == nil {
		cfg.OnAdmitted = func([]store.Admission) {}
	}
	return &Scheduler{cfg: cfg, store: s, wake: make(chan struct{}, 1)}
}

// Wake asks for a dequeue now, for example because a run ended and freed capacity. Calls
// while a wake-up is pending fold into it.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dequeues until ctx ends: after every wake-up, after every poll interval, and again at
// once while a full batch was admitted (more may be waiting).
func (s *Scheduler) Run(ctx context.Context) error {
	go s.listen(ctx)
	s.cfg.Logger.Debug("scheduler started", "batch", s.cfg.Batch, "poll_interval", s.cfg.PollInterval)
	defer s.cfg.Logger.Debug("scheduler stopped")

	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.wake:
		}

		admitted, err := s.RunOnce(ctx)
		next := s.cfg.PollInterval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.cfg.Metrics.LoopError(metrics.LoopDequeue)
			s.cfg.Logger.Error("dequeue failed", "err", err)
		case admitted == s.cfg.Batch:
			next = 0
		}
		timer.Reset(next)
	}
}

// RunOnce dequeues and returns how many jobs it admitted, at most one batch. A dequeue
// reads one batch of candidates while the head of the queue fits. When that read refused
// some and admitted less than a batch, a second transaction reads four batches to look
// past them, so that refused jobs at the head do not leave the batch short.
func (s *Scheduler) RunOnce(ctx context.Context) (int, error) {
	narrow := !s.wide
	admissions, err := s.dequeue(ctx, s.cfg.Batch)
	if err == nil && narrow && s.wide && len(admissions) < s.cfg.Batch {
		var more []store.Admission
		more, err = s.dequeue(ctx, s.cfg.Batch-len(admissions))
		admissions = append(admissions, more...)
	}
	s.admitted(admissions)
	if err != nil {
		return len(admissions), err
	}
	if len(admissions) < s.cfg.Batch {
		if err := s.explainWaits(ctx); err != nil {
			return len(admissions), err
		}
	}
	return len(admissions), nil
}

// candidateLimit returns how many candidates the next dequeue reads.
func (s *Scheduler) candidateLimit() int {
	if s.wide {
		return 4 * s.cfg.Batch
	}
	return s.cfg.Batch
}

// admitted logs admissions and hands them to the dispatcher.
func (s *Scheduler) admitted(admissions []store.Admission) {
	for _, a := range admissions {
		s.cfg.Logger.Info("job admitted", "job_id", a.Job.ID, "run", a.RunNumber, "project", a.ProjectID,
			"gpu_model", a.GPUModel, "gpu_milli", a.GPUMilli)
	}
	if len(admissions) > 0 {
		s.cfg.OnAdmitted(admissions)
	}
}

// explainWaits records why quota-held jobs wait, once the queue's admissible head is
// drained. It scans the whole queue, so it runs only when a dequeue came up short.
func (s *Scheduler) explainWaits(ctx context.Context) error {
	_, err := s.store.ExplainWaits(ctx, store.WaitReasons{
		Drained: ReasonDrained, Concurrency: ReasonConcurrency, Budget: ReasonBudget,
	})
	return err
}

// decide caps the policy's admissions at maxAdmit. A wide read has more candidates than a
// batch, so that jobs refused for capacity do not leave the batch short.
func (s *Scheduler) decide(snap store.Snapshot, maxAdmit int) ([]store.Decision, []store.Refusal) {
	decisions, refusals := s.cfg.Policy.Decide(snap)
	if len(decisions) > maxAdmit {
		decisions = decisions[:maxAdmit]
	}
	return decisions, refusals
}

// listen wakes the loop on every notification of newly queued jobs, reconnecting with
// back-off when the connection drops. Polling still runs, so a lost notification only
// delays a job by one poll interval.
func (s *Scheduler) listen(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("queue notifications lost; reconnecting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Scheduler) listenOnce(ctx context.Context) error {
	conn, err := s.store.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+store.QueueChannel); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it first.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
	}()

	for {
		_, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, pgx.ErrTxClosed) {
				return err
			}
			conn.Conn().Close(context.WithoutCancel(ctx))
			return err
		}
		s.Wake()
	}
}
