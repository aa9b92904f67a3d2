package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// TestNotReadyHidesErrors: /readyz, which needs no token, responds with the reason only. The
// error behind it, which may name the database's host and user, goes to the log.
func TestNotReadyHidesErrors(t *testing.T) {
	var logs bytes.Buffer
	d := &Daemon{cfg: Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
	dbErr := errors.New("failed to connect to `user=alice database=prod`: 10.0.0.5:5432 (db.internal): dial error")

	w := httptest.NewRecorder()
	d.writeNotReady(w, notReady{reason: "database unreachable", err: dbErr})

	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
	if body, want := w.Body.String(), "database unreachable\n"; body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if !strings.Contains(logs.String(), "user=alice") {
		t.Errorf("log %q lacks the database error", logs.String())
	}
}

// TestReadyWithoutKubernetes: a leader whose Kubernetes API is unreachable, so that its
// dispatcher never syncs, still serves the admin API and is ready. The gauge
// schedulerd_dispatcher_synced shows the missing sync instead.
func TestReadyWithoutKubernetes(t *testing.T) {
	// Port 1 on loopback refuses connections.
	kube, err := kubernetes.NewForConfig(&rest.Config{Host: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	registry := prometheus.NewRegistry()
	d := New(Config{Store: store.New(pgtest.NewPool(t)), Kube: kube, Registry: registry,
		Logger: slog.New(slog.DiscardHandler)})
	d.leading.Store(true)

	ctx := context.Background()
	if problem := d.ready(ctx, ctx); problem != nil {
		t.Errorf("leader without a Kubernetes API is not ready: %q (%v)", problem.reason, problem.err)
	}
	if got := gaugeValue(t, registry, "schedulerd_dispatcher_synced"); got != 0 {
		t.Errorf("schedulerd_dispatcher_synced = %v, want 0", got)
	}

	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if problem := d.ready(stopped, ctx); problem == nil || problem.reason != "shutting down" {
		t.Errorf("stopping replica: problem %+v, want shutting down", problem)
	}
}

// gaugeValue returns the value of the unlabelled gauge name in registry.
func gaugeValue(t *testing.T, registry *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("registry has no single series %s", name)
	return 0
}
