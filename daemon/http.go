package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/migrations"
)

// readyTimeout bounds each readiness check, so that /readyz responds within a kubelet
// probe's timeout even when a dependency hangs.
const readyTimeout = 2 * time.Second

// Timeouts of the HTTP server. Each connection holds a goroutine and a file descriptor, so
// without them a client that sends or reads slowly, or not at all, holds both for ever.
const (
	// readHeaderTimeout bounds reading the request line and headers.
	readHeaderTimeout = 10 * time.Second
	// readTimeout bounds reading a whole request, body included. A body is at most 1 MiB
	// (api.DefaultMaxBodyBytes), which a client sends within it at 35 KiB/s or more. A body
	// that arrives too slowly fails to read, and the API rejects the request with 400.
	readTimeout = 30 * time.Second
	// writeTimeout runs from the end of the request headers to the end of the response, so
	// it bounds the handler and the writing together. A page of 500 jobs (api.MaxPageSize)
	// may carry 32 MiB of configs alone (64 KiB each, jobspec.MaxBytes), which a client
	// receives within it at 110 KiB/s or more. Past it, net/http cuts the response off, but
	// the handler runs on to its end.
	writeTimeout = 5 * time.Minute
	// idleTimeout bounds the wait for the next request on a keep-alive connection. AWS load
	// balancers close idle connections after 60 s by default and recommend a longer timeout
	// on the target, because a target that closes first can make the balancer return 502.
	// It is also longer than Prometheus's default scrape interval of 1 minute, so scrapes
	// reuse their connection.
	idleTimeout = 2 * time.Minute
)

func (d *Daemon) serveHTTP(ctx context.Context, wg *sync.WaitGroup) *http.Server {
	if d.cfg.Listener == nil {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if problem := d.ready(ctx, r.Context()); problem != nil {
			d.writeNotReady(w, *problem)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if d.cfg.Registry != nil {
		handler := metrics.Handler(d.cfg.Registry)
		if d.cfg.MetricsGuard != nil {
			handler = d.cfg.MetricsGuard(handler)
		}
		mux.Handle("GET /metrics", handler)
	}
	if d.cfg.Handler != nil {
		mux.Handle("/", d.cfg.Handler)
	}
	server := &http.Server{Handler: d.metrics.InstrumentHTTP(mux), ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout}
	wg.Go(func() {
		if err := server.Serve(d.cfg.Listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.cfg.Logger.Error("HTTP server failed", "err", err)
		}
	})
	return server
}

// notReady is why a replica should not receive traffic. /readyz needs no token,
// so its response gives only reason. err, which may name the database's host and user,
// goes to the log.
type notReady struct {
	reason string
	err    error
}

// ready returns why this replica should not receive traffic, or nil: it is stopping,
// the database does not respond, or the schema is not the one this binary was built for.
// Traffic is the admin API, which needs only the database. The Kubernetes API and the
// leader's dispatcher are left out: failing every replica while the cluster's API is down, or
// the leader until its dispatcher has synced, would take the admin API away for no reason.
// schedulerd_dispatcher_synced shows the dispatcher's state instead.
func (d *Daemon) ready(runCtx, reqCtx context.Context) *notReady {
	if runCtx.Err() != nil {
		return &notReady{reason: "shutting down"}
	}
	ctx, cancel := context.WithTimeout(reqCtx, readyTimeout)
	defer cancel()
	return d.checkDatabase(ctx)
}

// writeNotReady writes a 503 response with the problem's reason and logs the error behind it.
func (d *Daemon) writeNotReady(w http.ResponseWriter, problem notReady) {
	if problem.err != nil {
		d.cfg.Logger.Warn("replica not ready", "reason", problem.reason, "err", problem.err)
	}
	http.Error(w, problem.reason, http.StatusServiceUnavailable)
}

func (d *Daemon) checkDatabase(ctx context.Context) *notReady {
	conn, err := d.cfg.Store.Pool().Acquire(ctx)
	if err != nil {
		return &notReady{reason: "database unreachable", err: err}
	}
	defer conn.Release()
	status, err := migrations.CurrentStatus(ctx, conn.Conn())
	if err != nil {
		return &notReady{reason: "database schema version unreadable", err: err}
	}
	// A newer schema is fine: during a rolling upgrade the new pod's init container migrates
	// first, and the old replicas, which migrations keep working, stay in the Service until
	// they are replaced. Failing them would leave no endpoint if the new pod never became
	// ready.
	if status.Current < status.Latest {
		return &notReady{reason: fmt.Sprintf("database schema is at version %d, this binary needs %d",
			status.Current, status.Latest)}
	}
	return nil
}
