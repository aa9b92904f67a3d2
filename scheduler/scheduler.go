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
	// Policy holds the admission rules; StarvationBound defaults to DefaultStarvationBound.
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
	// wide is set after a dequeue refused candidates: the next round's first dequeue reads
	// four batches of candidates, to look past the refused jobs at the head of the queue.
	// Only the loop's goroutine touches it, as it does renewedAt and explainedAt, the times
	// of the last RenewBudgets and ExplainWaits calls.
	wide        bool
	renewedAt   time.Time
	explainedAt time.Time
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
		cfg.Policy.StarvationBound = DefaultStarvationBound
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
	// The first wait explanation comes from a short round or after explainInterval, not at
	// once: the reasons stored before a restart are as good as they were.
	return &Scheduler{cfg: cfg, store: s, wake: make(chan struct{}, 1), explainedAt: time.Now()}
}

// Wake asks for a dequeue now, for example because a run ended and freed capacity. Calls
// while a wake-up is pending fold into it.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run dequeues until ctx ends. After every wake-up and every poll interval it calls Drain.
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

		_, err := s.Drain(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.cfg.Metrics.LoopError(metrics.LoopDequeue)
			s.cfg.Logger.Error("dequeue failed", "err", err)
		}
		timer.Reset(s.cfg.PollInterval)
	}
}

// maxPages bounds the dequeues of one round, and with it the candidates one round reads:
// at the default batch of 64, 64 + 7*256 = 1,856, or 8*256 = 2,048 when the first page is
// wide.
const maxPages = 8

// RunOnce renews ended budget periods when due, then runs one round of dequeues and
// returns how many jobs it admitted, at most one batch. When the round came up short, or
// explainInterval has passed, it stores why the jobs no dequeue read wait.
func (s *Scheduler) RunOnce(ctx context.Context) (int, error) {
	p := &pipeline{s: s}
	_, err := s.round(ctx, p)
	if werr := p.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return p.admitted, err
	}
	return p.admitted, s.explainIfDue(ctx, p.admitted < s.cfg.Batch)
}

// Drain runs rounds until one admits less than a full batch, and returns how many jobs
// they admitted. A round that admitted every candidate of its one page lets the next round
// read, decide and write while its writes run (see pipeline): the rows that the next read
// skips because those writes hold them are all admitted. Only the scheduler that holds the
// overlap lock (store.OverlapLock) overlaps its rounds. Others, such as the replicas of a
// benchmark, keep their rounds apart. After a round that refused candidates, the next one
// waits for its writes, so that it reads the refused jobs again, with what a starving one
// among them holds back.
//
// NOTE: a round that reads while the writes before it run reads the quota and model rows
// as they were before those writes. Near a limit its guard may then fail, and it decides again on
// locked rows once those writes have committed.
func (s *Scheduler) Drain(ctx context.Context) (int, error) {
	p := &pipeline{s: s}
	var err error
	for {
		var res roundResult
		if res, err = s.round(ctx, p); err != nil || res.decided < s.cfg.Batch {
			break
		}
		// An explanation waits for the writes too, so that it counts them.
		due := time.Since(s.explainedAt) >= explainInterval
		if !res.overlap || due || !p.mayOverlap(ctx) {
			if err = p.wait(); err != nil {
				break
			}
		}
		if due {
			if err = s.explainWaits(ctx); err != nil {
				break
			}
		}
	}
	if werr := p.wait(); err == nil {
		err = werr
	}
	p.release(ctx)
	if err != nil {
		return p.admitted, err
	}
	return p.admitted, s.explainIfDue(ctx, true)
}

// roundResult describes the end of a round.
type roundResult struct {
	// decided counts the jobs the round admitted, those of a page whose writes still run
	// included.
	decided int
	// overlap is set when the round's one page admitted every candidate it read, none of
	// them a starving GPU job, so the next round may read before the page's writes end. A
	// candidate left undecided because the batch was full stays locked by those writes, and
	// the next round would read past it. So would it read past a starving job that the
	// page admitted first and then refused on locked rows, after its guard failed, and
	// backfill the capacity that job holds.
	overlap bool
}

// round renews ended budget periods when due, then runs one round of dequeues through p.
// Its last page's writes may still run when it returns. A round reads the queue page by
// page. The first page has one batch of candidates, or four after a round that refused
// some. While a page was full but the batch is not, the next dequeue reads four batches
// behind it, once the page before has committed. Jobs refused at the head (held for a
// starving job, too large for any real node, of a project that one admission filled)
// therefore do not keep the jobs behind them waiting.
// NOTE: a queue whose head holds more than maxPages pages of refused jobs still keeps
// the jobs behind them waiting until the head moves.
func (s *Scheduler) round(ctx context.Context, p *pipeline) (roundResult, error) {
	s.renewEndedPeriods(ctx)

	r := &round{limit: s.candidateLimit(), held: NewHolds(), more: true}
	admitted := 0
	for n := 0; n < maxPages; n++ {
		pg, first, err := p.dequeue(ctx, r, s.cfg.Batch-admitted)
		if err != nil {
			return roundResult{decided: admitted}, err
		}
		if admitted+first.admit == s.cfg.Batch {
			// NOTE: a job that passes the starvation bound between the first decision and a
			// retry on locked rows can still be refused there while the next round reads.
			overlap := n == 0 && first.admit == first.read && !first.starving
			return roundResult{decided: s.cfg.Batch, overlap: overlap}, nil
		}

		// The batch is not full: read on behind this page once it has committed.
		if err := p.wait(); err != nil {
			return roundResult{decided: admitted}, err
		}
		admitted += len(pg.admissions)
		r.moveOn(pg.held, pg.read, s.cfg.Batch)
		if admitted == s.cfg.Batch || !r.more {
			break
		}
	}
	return roundResult{decided: admitted}, nil
}

// explainInterval is the longest time between two explainWaits calls while every round
// admits a full batch, so that jobs the dequeues leave out get their wait reasons in a
// busy queue too.
const explainInterval = 10 * time.Second

// round is the progress of one RunOnce's dequeues through the queue.
type round struct {
	limit int             // candidates the next dequeue reads
	after *store.QueueKey // the last candidate read, or nil before the first dequeue
	held  Holds           // the models and quota shares that starving jobs of earlier pages hold back
	more  bool            // whether the queue may have candidates behind after
}

// moveOn records a committed dequeue: the candidates it read, and what starving jobs hold
// back once it decided.
func (r *round) moveOn(held Holds, read []store.Candidate, batch int) {
	r.held = held
	r.more = len(read) == r.limit
	if len(read) > 0 {
		last := read[len(read)-1].Key()
		r.after = &last
	}
	r.limit = 4 * batch
}

// candidateLimit returns how many candidates the first dequeue of a round reads.
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

// explainIfDue calls explainWaits after a round that came up short, or when explainInterval
// has passed since the last call.
func (s *Scheduler) explainIfDue(ctx context.Context, short bool) error {
	if !short && time.Since(s.explainedAt) < explainInterval {
		return nil
	}
	return s.explainWaits(ctx)
}

// explainWaits records why the jobs that no dequeue read wait: their quota, or no allowed
// model that could run them or has room. It scans the whole queue, so it runs only when a
// round came up short or explainInterval has passed.
func (s *Scheduler) explainWaits(ctx context.Context) error {
	s.explainedAt = time.Now()
	_, err := s.store.ExplainWaits(ctx, store.WaitReasons{
		Drained: ReasonDrained, Concurrency: ReasonConcurrency, Budget: ReasonBudget,
		PeriodEnded: ReasonPeriodEnded, PeriodNotStarted: ReasonPeriodNotStarted,
		NoModel: ReasonNoModel, TooLarge: ReasonTooLarge, NoCapacity: ReasonNoCapacity,
		StarvationBound: s.cfg.Policy.StarvationBound, BudgetTooSmall: ReasonBudgetTooSmall,
	})
	return err
}
