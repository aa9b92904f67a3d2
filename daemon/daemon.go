// Package daemon assembles schedulerd's long-running parts (scheduler, dispatcher, GPU-hour
// accrual, HTTP endpoints, metrics) and runs them together until its context ends. It owns
// no decision; it only wires the parts so that each wakes the others: an admission queues
// pods, a run's end or a capacity change wakes the scheduler.
//
// With leader election on, every replica serves HTTP and metrics, and only the replica that
// holds the Lease runs the scheduler, dispatcher and accrual loops. A replica that loses the
// Lease stops its loops and Run returns ErrLeaseLost, so the process exits and its restart
// joins the election afresh.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// Config is what the daemon runs with.
type Config struct {
	Store      *store.Store
	Kube       kubernetes.Interface
	Scheduler  scheduler.Config
	Dispatcher dispatcher.Config
	// AccrualInterval is how often running runs' GPU-hours are brought up to date.
	AccrualInterval time.Duration
	// Listener serves /healthz, /readyz, /metrics and Handler; nil serves nothing.
	Listener net.Listener
	// Handler serves every other path on Listener (the admin API); nil serves none.
	Handler http.Handler
	// Registry receives every metric, and /metrics serves it; nil records no metrics.
	Registry *prometheus.Registry
	// MetricsGuard, when set, wraps the /metrics handler, such as with the API's token
	// check (api.Server.Guard); nil serves /metrics to anyone who reaches Listener.
	MetricsGuard func(http.Handler) http.Handler
	// LeaderElection, when set, runs the loops only while this replica holds its Lease. Nil
	// runs them at once, which is safe for a single replica only.
	LeaderElection *LeaderElection
	// Workflows, when set, runs the job workflows' Temporal worker and outbox sender on
	// this replica, leader or not: Temporal shares the work between replicas.
	Workflows *workflow.Runner
	// ShutdownTimeout bounds how long Run waits for the loops, and then for the HTTP
	// server, to stop once its context ends (20s).
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
}

// Daemon is one running schedulerd.
type Daemon struct {
	cfg        Config
	Scheduler  *scheduler.Scheduler
	Dispatcher *dispatcher.Dispatcher
	metrics    *metrics.Metrics
	// leading is true while the loops run: always without leader election, else while this
	// replica holds the Lease.
	leading atomic.Bool
	// election is the running leader election, nil without one.
	election atomic.Pointer[election]
}

// New wires the parts.
func New(cfg Config) *Daemon {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	d := &Daemon{cfg: cfg}
	if cfg.Registry != nil {
		d.metrics = metrics.New(cfg.Registry, metrics.Options{Tiers: priorityTiers()})
		d.metrics.CollectDatabase(cfg.Store.Pool(), cfg.Logger.With("component", "metrics"))
	}

	dc := cfg.Dispatcher
	if dc.Fence == nil {
		dc.Fence = d.CheckLease
	}
	dc.OnRunEnded = func(store.RunEndResult) { d.Scheduler.Wake() }
	dc.OnCapacityChanged = func() { d.Scheduler.Wake() }
	dc.Metrics = d.metrics
	dc.Logger = cfg.Logger.With("component", "dispatcher")
	d.Dispatcher = dispatcher.New(cfg.Kube, cfg.Store, dc)
	d.metrics.CollectPods(d.Dispatcher.PodsByPhase)
	d.metrics.CollectDispatcherSynced(func() bool { return d.Leading() && d.Dispatcher.Synced() })

	sc := cfg.Scheduler
	sc.OnAdmitted = d.Dispatcher.Enqueue
	sc.Metrics = d.metrics
	sc.Logger = cfg.Logger.With("component", "scheduler")
	if sc.RenewBudgets == nil {
		sc.RenewBudgets = func(ctx context.Context) error {
			_, err := accounting.RenewBudgets(ctx, cfg.Store, sc.Logger)
			return err
		}
	}
	d.Scheduler = scheduler.New(cfg.Store, sc)
	return d
}

// priorityTiers names the metrics' priority tiers after the dispatcher's priority classes.
func priorityTiers() []metrics.Tier {
	tiers := make([]metrics.Tier, len(dispatcher.PriorityClasses))
	for i, c := range dispatcher.PriorityClasses {
		tiers[i] = metrics.Tier{Name: strings.TrimPrefix(c.Name, "schedulerd-"), MinPriority: c.MinPriority}
	}
	return tiers
}

// Metrics returns the daemon's metrics, for parts started beside it (the cron tasks) to
// report to; nil without a Registry.
func (d *Daemon) Metrics() *metrics.Metrics { return d.metrics }

// Leading reports whether this replica runs the scheduler and dispatcher now.
func (d *Daemon) Leading() bool { return d.leading.Load() }

// Run serves HTTP and runs the loops until ctx ends, a loop fails or the Lease is lost.
// When ctx ends it stops in order: /readyz fails at once, the scheduler stops dequeuing (an
// open dequeue transaction rolls back, or commits if its COMMIT had already been sent),
// the dispatcher's workers finish or abandon their reconciles, the Lease is released, and
// the HTTP server drains. Work abandoned midway is safe: the next leader's first resync
// creates any pod that an admitted run lacks.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	server := d.serveHTTP(ctx, &wg)
	stoppingLogged := make(chan struct{})
	logStop := context.AfterFunc(ctx, func() {
		d.cfg.Logger.Info("schedulerd stopping", "cause", context.Cause(ctx))
		close(stoppingLogged)
	})

	if d.cfg.Workflows != nil {
		wg.Go(func() {
			if err := d.cfg.Workflows.Run(ctx); err != nil {
				cancel(fmt.Errorf("workflows: %w", err))
			}
		})
	}

	var err error
	if d.cfg.LeaderElection == nil {
		err = d.runLoops(ctx)
	} else {
		err = d.runElected(ctx)
	}
	if logStop() {
		// The loops stopped by themselves: a failure or a lost Lease.
		d.cfg.Logger.Info("schedulerd stopping", "cause", err)
	} else {
		<-stoppingLogged // so that the log shows "stopping" before the shutdown's lines
	}

	if server != nil {
		shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownTimeout)
		defer done()
		if shutdownErr := server.Shutdown(shutdownCtx); shutdownErr != nil {
			d.cfg.Logger.Warn("HTTP server did not drain in time", "err", shutdownErr)
		}
	}
	cancel(nil) // stops the workflow runner when the loops ended by themselves
	wg.Wait()
	d.cfg.Logger.Info("schedulerd stopped")
	return err
}

// runLoops runs the scheduler, dispatcher and accrual until ctx ends or the dispatcher
// fails, and returns once all three have stopped.
func (d *Daemon) runLoops(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	accruer := &accounting.Accruer{Store: d.cfg.Store, Interval: d.cfg.AccrualInterval,
		Metrics: d.metrics, Logger: d.cfg.Logger.With("component", "accounting")}

	d.leading.Store(true)
	d.metrics.SetLeader(true)
	defer func() {
		d.leading.Store(false)
		d.metrics.SetLeader(false)
	}()

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.Dispatcher.Run(ctx); err != nil {
			cancel(fmt.Errorf("dispatcher: %w", err))
		}
	})
	wg.Go(func() { _ = d.Scheduler.Run(ctx) })
	wg.Go(func() { accruer.Run(ctx) })
	<-ctx.Done()
	wg.Wait()

	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
