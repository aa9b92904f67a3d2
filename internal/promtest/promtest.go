// Package promtest gives tests promtool and a throwaway Prometheus on loopback, both built
// from the Go module proxy by scripts/prom-tools.sh on first use and cached after that.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// Tools returns the directory that holds promtool and prometheus, building them if needed.
// The first build takes many minutes, so a test binary using it needs a long -timeout.
func Tools(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("bash", script(t, "prom-tools.sh")).Output()
	if err != nil {
		t.Fatalf("scripts/prom-tools.sh: %v\n%s", err, stderrOf(err))
	}
	return strings.TrimSpace(string(out))
}

// CheckMetrics runs `promtool check metrics` on a scrape in the text format and fails the
// test with promtool's findings if it reports any.
func CheckMetrics(t testing.TB, scrape []byte) {
	t.Helper()
	cmd := exec.Command(filepath.Join(Tools(t), "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(scrape)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// Server is a running Prometheus that scrapes its targets every second.
type Server struct {
	URL string
	dir string
}

// Start runs Prometheus scraping targets (host:port on loopback) and stops it, by its PID,
// when the test ends.
func Start(t testing.TB, targets ...string) *Server {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{script(t, "prom-up.sh"), dir}, targets...)
	out, err := exec.Command("bash", args...).Output()
	if err != nil {
		t.Fatalf("scripts/prom-up.sh: %v\n%s", err, stderrOf(err))
	}
	s := &Server{URL: strings.TrimSpace(string(out)), dir: dir}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", script(t, "prom-down.sh"), dir).CombinedOutput(); err != nil {
			t.Errorf("scripts/prom-down.sh: %v\n%s", err, out)
		}
	})
	return s
}

// Sample is one series of an instant query's result.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query evaluates expr at the current time through the HTTP API. It returns an error for an
// expression that Prometheus rejects, with Prometheus's message.
func (s *Server) Query(ctx context.Context, expr string) ([]Sample, error) {
	var body struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		ErrorType string `json:"errorType"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", expr, body.ErrorType, body.Error)
	}
	if body.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q returned a %s, want a vector", expr, body.Data.ResultType)
	}
	samples := make([]Sample, len(body.Data.Result))
	for i, r := range body.Data.Result {
		text, _ := r.Value[1].(string)
		var v float64
		if _, err := fmt.Sscan(text, &v); err != nil && text != "NaN" {
			return nil, fmt.Errorf("query %q: value %q is not a number", expr, text)
		}
		samples[i] = Sample{Metric: r.Metric, Value: v}
	}
	return samples, nil
}

// Selectors parses expr with Prometheus's parser (the /api/v1/parse_query endpoint) and
// returns the metric names of its vector and range selectors. It returns an error for an
// expression that does not parse, with Prometheus's message.
func (s *Server) Selectors(ctx context.Context, expr string) ([]string, error) {
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   any    `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/parse_query?query="+url.QueryEscape(expr), &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("parse %q: %s", expr, body.Error)
	}
	var names []string
	collectSelectorNames(body.Data, &names)
	return names, nil
}

// collectSelectorNames walks the JSON form of a PromQL syntax tree and appends the metric
// name of every selector node.
func collectSelectorNames(node any, names *[]string) {
	switch n := node.(type) {
	case map[string]any:
		if typ, _ := n["type"].(string); typ == "vectorSelector" || typ == "matrixSelector" {
			if name, _ := n["name"].(string); name != "" {
				*names = append(*names, name)
			}
		}
		for _, child := range n {
			collectSelectorNames(child, names)
		}
	case []any:
		for _, child := range n {
			collectSelectorNames(child, names)
		}
	}
}

// MetricNames returns the names of every series Prometheus has stored.
func (s *Server) MetricNames(ctx context.Context) (map[string]bool, error) {
	var body struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	if err := s.get(ctx, "/api/v1/label/__name__/values", &body); err != nil {
		return nil, err
	}
	names := make(map[string]bool, len(body.Data))
	for _, n := range body.Data {
		names[n] = true
	}
	return names, nil
}

// WaitForScrape waits until Prometheus has scraped every target successfully at least once.
func (s *Server) WaitForScrape(ctx context.Context, targets int) error {
	var last []Sample
	for {
		samples, err := s.Query(ctx, `up == 1`)
		if err == nil && len(samples) == targets {
			return nil
		}
		last = samples
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d healthy targets (last: %v, %v): %w", targets, last, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Server) get(ctx context.Context, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Prometheus responds to a bad query with 400 and a JSON body that gives the reason.
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("GET %s: status %s, body not JSON: %w", path, resp.Status, err)
	}
	return nil
}

func script(t testing.TB, name string) string {
	t.Helper()
	root, err := pgtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "scripts", name)
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func stderrOf(err error) string {
	if exitErr, ok := err.(*exec.ExitError); ok {
		return string(exitErr.Stderr)
	}
	return ""
}
