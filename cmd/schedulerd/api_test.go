package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// apiSession is a database with GPU capacity, the API on it, and the environment the
// API subcommands read.
type apiSession struct {
	t   *testing.T
	env map[string]string
}

func newAPISession(t *testing.T) *apiSession {
	t.Helper()
	databaseURL := pgtest.NewDatabase(t)
	db, err := store.Open(context.Background(), databaseURL, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	capacity := store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000, LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288}
	if err := db.SyncGPUCapacity(context.Background(), []store.ModelCapacity{capacity}); err != nil {
		t.Fatal(err)
	}
	server := httptest.NewServer(api.New(api.Config{Store: db, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}))
	t.Cleanup(server.Close)

	s := &apiSession{t: t, env: map[string]string{"SCHEDULERD_DATABASE_URL": databaseURL, "SCHEDULERD_API_URL": server.URL}}
	oldStdin := stdin
	t.Cleanup(func() { stdin = oldStdin })
	return s
}

// ok runs a command that must succeed and returns its standard output.
func (s *apiSession) ok(args ...string) string {
	s.t.Helper()
	code, stdout, stderr := run(s.t, s.env, args...)
	if code != 0 {
		s.t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
	}
	return stdout
}

func TestAPISession(t *testing.T) {
	s := newAPISession(t)

	var admin struct{ Secret string }
	if err := json.Unmarshal([]byte(s.ok("token", "create", "-name", "root", "-role", "admin", "-o", "json")), &admin); err != nil {
		t.Fatal(err)
	}
	s.env["SCHEDULERD_TOKEN"] = admin.Secret

	s.ok("project", "create", "vision", "-org", "acme")
	quota := s.ok("quota", "set", "vision", "-budget", "100", "-max-concurrent", "0", "-tier", "50",
		"-period-start", "2026-01-01", "-period-end", "2027-01-01")
	if !strings.Contains(quota, "concurrency    0 of 0 jobs") {
		t.Errorf("quota set printed:\n%s", quota)
	}

	stdin = strings.NewReader(`{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`)
	var job api.Job
	submitted := s.ok("job", "submit", "-project", "vision", "-type", "fine_tune", "-config", "-",
		"-idempotency-key", "first", "-o", "json")
	if err := json.Unmarshal([]byte(submitted), &job); err != nil {
		t.Fatalf("job submit -o json printed %q: %v", submitted, err)
	}

	stdin = strings.NewReader(`{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`)
	again := s.ok("job", "submit", "-project", "vision", "-type", "fine_tune", "-config", "-", "-idempotency-key", "first")
	if !strings.Contains(again, job.ID.String()) {
		t.Errorf("a repeated submit printed:\n%s\nwant job %s", again, job.ID)
	}

	explained := s.ok("job", "explain", job.ID.String())
	for _, want := range []string{"blockers     concurrency limit reached", "slots        0 of 0 free",
		"model A10    16 of 16 GPUs free on 2 nodes; the largest node has 8 in all"} {
		if !strings.Contains(explained, want) {
			t.Errorf("job explain printed:\n%s\nwant a line with %q", explained, want)
		}
	}

	s.ok("queue", "drain", "vision", "-deadline", "30m")
	queues := s.ok("queue", "list")
	if !strings.Contains(queues, "vision   1       0        0       yes") {
		t.Errorf("queue list printed:\n%s", queues)
	}
	s.ok("queue", "undrain", "vision")
	s.ok("queue", "reprioritize", "vision", "-delta", "5")

	list := s.ok("job", "list", "-project", "vision")
	if !strings.Contains(list, job.ID.String()) || !strings.Contains(list, "queued") {
		t.Errorf("job list printed:\n%s", list)
	}
	cancelled := s.ok("job", "cancel", job.ID.String())
	if !strings.Contains(cancelled, "status       cancelled") {
		t.Errorf("job cancel printed:\n%s", cancelled)
	}
}

func TestAPICommandErrors(t *testing.T) {
	s := newAPISession(t)
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no token", []string{"job", "get", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"}, 2, "no API token: set SCHEDULERD_TOKEN"},
		{"no token, missing flags", []string{"job", "submit", "-project", "vision"}, 2,
			"usage: schedulerd job submit -project P -type T -config FILE"},
		{"bad role", []string{"token", "create", "-name", "x", "-role", "root"}, 2, `invalid role "root"`},
		{"unknown action", []string{"job", "frob"}, 2, "want 'job submit|get|list|cancel|pause|resume|explain'"},
		{"job id not a UUID", []string{"job", "cancel", "42"}, 2, `invalid job id "42": want a UUID`},
		{"explain id not a UUID", []string{"job", "explain", "job-1"}, 2, `invalid job id "job-1"`},
		{"limit too large", []string{"job", "list", "-limit", "501"}, 2, "invalid -limit 501: want 1 to 500"},
		{"limit zero", []string{"job", "list", "-limit", "0"}, 2, "invalid -limit 0"},
		{"no delta", []string{"queue", "reprioritize", "vision"}, 2,
			"queue reprioritize needs -delta, a non-zero integer from -100 to 100; got 0"},
		{"delta too large", []string{"queue", "reprioritize", "vision", "-delta", "101"}, 2, "got 101"},
		{"project without org", []string{"project", "create", "speech"}, 2, "project create needs -org ORG"},
		{"negative deadline", []string{"queue", "drain", "vision", "-deadline", "-5m"}, 2,
			`invalid -deadline "-5m": a duration counts from now and cannot be negative`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, s.env, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, c.code, c.want)
			}
		})
	}

	s.env["SCHEDULERD_TOKEN"] = "sdt_wrong"
	code, _, stderr := run(t, s.env, "job", "get", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d")
	if code != 1 || !strings.Contains(stderr, "HTTP 401 missing or invalid credentials: the bearer token is unknown") {
		t.Errorf("exit %d, stderr %q; want a one-line 401", code, stderr)
	}
}
