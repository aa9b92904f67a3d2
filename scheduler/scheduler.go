// Package scheduler decides which queued jobs run next. Each dequeue is one PostgreSQL
// transaction: it locks the head of the queue with SKIP LOCKED, checks each job against its
// project's quota (drained, budget period, concurrency, GPU-hour budget) and the free GPU
// capacity of the models it may use, and admits the ones that fit by creating their runs.
// It never talks to Kubernetes: the dispatcher turns admitted runs into pods.
package scheduler

import (
	"context"
	"log/slog"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// Config tunes the loop. Zero values take the defaults in parentheses.
type Config struct {
	// Batch is the most jobs one transaction admits (64).
	Batch int
	// PollInterval is the longest wait between dequeues when nothing wakes the loop (1s).
	PollInterval time.Duration
	// Policy holds the admission rules; StarvationBound defaults to 10 minutes.
	Policy Policy
	// OnAdmitted receives each transaction's new runs, for the dispatcher. It must not block
	// for long: the loop waits for it.
	OnAdmitted func([]store.Admission)
	// RenewBudgets starts new budget periods for the quotas whose period ended by the
	// database's date (store.RenewBudgets). The loop calls it before a dequeue once
	// RenewInterval has passed since the last call, so that an ended period is renewed
	// within seconds rather than at the next run of the budgets cron task.
	RenewBudgets func(ctx context.Context) error
	// RenewInterval is the time between two calls of RenewBudgets (10s).
	RenewInterval time.Duration
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
	// goroutine touches it, as it does renewedAt, the time of the last RenewBudgets call.
	wide      bool
	renewedAt time.Time
}

// New returns a scheduler; Run starts it.
func New(s *store.Store, cfg Config) *Scheduler {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
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
	if cfg.RenewBudgets == nil {
		cfg.RenewBudgets = func(ctx context.Context) error {
			_, err := s.RenewBudgets(ctx)
			return err
		}
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = 10 * time.Second
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
	// Polling still runs, so a notification lost while reconnecting only delays a job by
	// one poll interval.
	go s.store.Listen(ctx, store.QueueChannel, s.Wake, s.cfg.Logger)
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

// RunOnce renews ended budget periods when due, then dequeues and returns how many jobs
// it admitted, at most one batch. A dequeue reads one batch of candidates while the head
// of the queue fits. When that read refused some and admitted less than a batch, a second
// transaction reads four batches to look past them, so that refused jobs at the head do
// not leave the batch short.
func (s *Scheduler) RunOnce(ctx context.Context) (int, error) {
	s.renewEndedPeriods(ctx)

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
		PeriodEnded: ReasonPeriodEnded, PeriodNotStarted: ReasonPeriodNotStarted,
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
