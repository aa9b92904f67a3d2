package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
		if problems := d.ready(ctx, r.Context()); len(problems) > 0 {
			d.writeNotReady(w, problems)
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

// notReady is one reason why a replica should not receive traffic. /readyz needs no token,
// so its response gives only reason. err, which may name the database's host and user,
// goes to the log.
type notReady struct {
	reason string
	err    error
}

// ready returns why this replica should not receive traffic, or nothing: it is stopping, the
// database or the Kubernetes API does not respond, the schema is not the one this binary
// was built for, or it leads and its dispatcher has not synced with the cluster yet.
// Replicas that do not lead are ready without a dispatcher: they serve the admin API.
func (d *Daemon) ready(runCtx, reqCtx context.Context) []notReady {
	if runCtx.Err() != nil {
		return []notReady{{reason: "shutting down"}}
	}
	ctx, cancel := context.WithTimeout(reqCtx, readyTimeout)
	defer cancel()

	var db, kube *notReady
	var wg sync.WaitGroup
	wg.Go(func() { db = d.checkDatabase(ctx) })
	wg.Go(func() { kube = d.checkKubernetes(ctx) })
	wg.Wait()
	var problems []notReady
	for _, p := range []*notReady{db, kube} {
		if p != nil {
			problems = append(problems, *p)
		}
	}
	if len(problems) == 0 && d.Leading() && !d.Dispatcher.Synced() {
		problems = append(problems, notReady{reason: "dispatcher has not synced with the cluster yet"})
	}
	return problems
}

// writeNotReady writes a 503 response with the problems' reasons and logs the errors behind them.
func (d *Daemon) writeNotReady(w http.ResponseWriter, problems []notReady) {
	reasons := make([]string, len(problems))
	for i, p := range problems {
		reasons[i] = p.reason
		if p.err != nil {
			d.cfg.Logger.Warn("replica not ready", "reason", p.reason, "err", p.err)
		}
	}
	http.Error(w, strings.Join(reasons, "; "), http.StatusServiceUnavailable)
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

// checkKubernetes requests the apiserver's /readyz, which every authenticated client may read.
func (d *Daemon) checkKubernetes(ctx context.Context) *notReady {
	err := d.cfg.Kube.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
	if err != nil {
		return &notReady{reason: "Kubernetes API unreachable", err: err}
	}
	return nil
}
