// Package daemon assembles schedulerd's long-running parts (scheduler, dispatcher, GPU-hour
// accrual, HTTP endpoints) and runs them together until its context ends. It owns no
// decision; it only wires the parts so that each wakes the others: an admission queues pods,
// a run's end or a capacity change wakes the scheduler.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// Config is what the daemon runs with.
type Config struct {
	Store      *store.Store
	Kube       kubernetes.Interface
	Scheduler  scheduler.Config
	Dispatcher dispatcher.Config
	// AccrualInterval is how often running runs' GPU-hours are brought up to date.
	AccrualInterval time.Duration
	// Listener serves /healthz, /readyz and Handler; nil serves nothing.
	Listener net.Listener
	// Handler serves every other path on Listener (the admin API); nil serves none.
	Handler http.Handler
	Logger   *slog.Logger
}

// Daemon is one running schedulerd.
type Daemon struct {
	cfg        Config
	Scheduler  *scheduler.Scheduler
	Dispatcher *dispatcher.Dispatcher
}

// New wires the parts.
func New(cfg Config) *Daemon {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{cfg: cfg}

	dc := cfg.Dispatcher
	dc.OnRunEnded = func(store.RunEndResult) { d.Scheduler.Wake() }
	dc.OnCapacityChanged = func() { d.Scheduler.Wake() }
	dc.Logger = cfg.Logger.With("component", "dispatcher")
	d.Dispatcher = dispatcher.New(cfg.Kube, cfg.Store, dc)

	sc := cfg.Scheduler
	sc.OnAdmitted = d.Dispatcher.Enqueue
	sc.Logger = cfg.Logger.With("component", "scheduler")
	d.Scheduler = scheduler.New(cfg.Store, sc)
	return d
}

// Run runs every part until ctx ends or one of them fails, then stops them all.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	accruer := &accounting.Accruer{Store: d.cfg.Store, Interval: d.cfg.AccrualInterval,
		Logger: d.cfg.Logger.With("component", "accounting")}

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := d.Dispatcher.Run(ctx); err != nil {
			cancel(fmt.Errorf("dispatcher: %w", err))
		}
	})
	wg.Go(func() { _ = d.Scheduler.Run(ctx) })
	wg.Go(func() { accruer.Run(ctx) })
	server := d.serveHTTP(&wg)

	<-ctx.Done()
	d.cfg.Logger.Info("schedulerd stopping", "cause", context.Cause(ctx))
	if server != nil {
		shutdownCtx, done := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer done()
		_ = server.Shutdown(shutdownCtx)
	}
	wg.Wait()

	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (d *Daemon) serveHTTP(wg *sync.WaitGroup) *http.Server {
	if d.cfg.Listener == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.Dispatcher.Synced() {
			http.Error(w, "dispatcher has not synced with the cluster yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if d.cfg.Handler != nil {
		mux.Handle("/", d.cfg.Handler)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	wg.Go(func() { _ = server.Serve(d.cfg.Listener) })
	return server
}
