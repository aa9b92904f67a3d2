package dashboards_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/dashboards"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/promtest"
	"github.com/schedulerd/schedulerd/internal/tracetest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

func TestFilesMatchDefinitions(t *testing.T) {
	for _, d := range dashboards.All() {
		want, err := dashboards.Render(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(d.File)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from its definition: run 'go generate ./dashboards'", d.File)
		}
	}
}

// A query that divides by a series, such as a budget or a capacity, divides only by its
// values above 0, so that a project with a budget of 0 draws no line rather than NaN or +Inf.
func TestDivisionsSkipZero(t *testing.T) {
	divisor := regexp.MustCompile(` / (\d|\(.*> 0\)$)`)
	for _, d := range dashboards.All() {
		for _, p := range d.Panels {
			for _, target := range p.Targets {
				if strings.Contains(target.Expr, " / ") && !divisor.MatchString(target.Expr) {
					t.Errorf("%s, panel %q: %s divides by a series that may be 0", d.File, p.Title, target.Expr)
				}
			}
		}
	}
}

// rateInterval replaces Grafana's $__rate_interval in the queries. It covers the whole test, so that
// every rate sees the replay's events.
const rateInterval = "5m"

// TestQueriesReturnDataFromReplay has a real Prometheus scrape a daemon every second while a
// few dozen trace tasks replay through it, then checks every dashboard query: it parses,
// selects only series the daemon exports, and returns data.
func TestQueriesReturnDataFromReplay(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A pod that no node can take is requeued after UnschedulableTimeout. Its default, 5
	// minutes, equals the replay's timeout, so a run that meets one would fail; 30 s leaves
	// the replay time to see such a job through.
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: 30 * time.Second, Configure: func(cfg *daemon.Config) {
		cfg.Listener = listener
		cfg.Registry = prometheus.NewRegistry()
	}})
	prom := promtest.Start(t, listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := prom.WaitForScrape(ctx, 1); err != nil {
		t.Fatal(err)
	}

	// The cron service does not run in this daemon, so this row takes the place of the
	// partition task's first success, which the health dashboard shows.
	_, err = h.Store.Pool().Exec(ctx, `INSERT INTO cron_task_status (task, last_scheduled_at,
		last_started_at, last_finished_at, last_success_at, last_duration_seconds)
		VALUES ('partitions', now(), now(), now(), now(), 0)`)
	if err != nil {
		t.Fatal(err)
	}

	dir := tracetest.Dir(t)
	r, err := replay.New(replay.Config{
		NodesFile: filepath.Join(dir, "openb_node_list_gpu_node.csv"),
		TasksFile: filepath.Join(dir, "openb_pod_list_default.csv"),
		Limit:     40, Mode: trace.ModePaced, Speedup: 200_000, Load: 50,
		BudgetScale: 1000, MaxConcurrent: 1000, ReportDir: t.TempDir(), Timeout: 5 * time.Minute,
	}, h.Store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	waitForEndedRuns(t, ctx, h, prom)

	exported, err := prom.MetricNames(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, d := range dashboards.All() {
		for _, panel := range d.Panels {
			for _, target := range panel.Targets {
				name := d.File + ": " + panel.Title + " " + target.RefID
				expr := strings.ReplaceAll(target.Expr, "$__rate_interval", rateInterval)
				checkQuery(t, ctx, prom, exported, name, expr)
				checked++
			}
		}
	}
	t.Logf("checked %d queries", checked)
}

// waitForEndedRuns waits until Prometheus has scraped the end of every run of the replay.
func waitForEndedRuns(t *testing.T, ctx context.Context, h *daemontest.Harness, prom *promtest.Server) {
	t.Helper()
	var ended float64
	err := h.Store.Pool().QueryRow(ctx,
		`SELECT count(*) FROM runs WHERE status NOT IN ('pending', 'running')`).Scan(&ended)
	if err != nil {
		t.Fatal(err)
	}
	for {
		samples, err := prom.Query(ctx, `sum(schedulerd_runs_ended_total)`)
		if err == nil && len(samples) == 1 && samples[0].Value == ended {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("Prometheus never saw %v ended runs (last: %v, %v)", ended, samples, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func checkQuery(t *testing.T, ctx context.Context, prom *promtest.Server, exported map[string]bool, name, expr string) {
	t.Helper()
	selectors, err := prom.Selectors(ctx, expr)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if len(selectors) == 0 {
		t.Errorf("%s: %q selects no series", name, expr)
	}
	for _, s := range selectors {
		if !strings.HasPrefix(s, "schedulerd_") || !exported[s] {
			t.Errorf("%s: %q selects %s, which the daemon does not export", name, expr, s)
		}
	}
	samples, err := prom.Query(ctx, expr)
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if len(samples) == 0 {
		t.Errorf("%s: %q returned no data", name, expr)
	}
}
