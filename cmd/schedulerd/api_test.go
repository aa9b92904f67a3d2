package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

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
	s := newProjectSession(t)
	quota := s.ok("quota", "get", "vision")
	if !strings.Contains(quota, "concurrency    0 of 0 jobs") {
		t.Errorf("quota get printed:\n%s", quota)
	}

	stdin = strings.NewReader(`{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`)
	var job api.Job
	submitted := s.ok("job", "submit", "-project", "vision", "-type", "fine_tune", "-config", "-",
		"-idempotency-key", "first", "-o", "json")
	if err := json.Unmarshal([]byte(submitted), &job); err != nil {
		t.Fatalf("job submit -o json printed %q: %v", submitted, err)
	}
	if !strings.HasSuffix(submitted, "}\n") {
		t.Errorf("job submit -o json printed %q, want it to end with one newline after the object", submitted)
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
			"missing -type, -config; usage: schedulerd job submit -project P -type T -config FILE"},
		{"bad role", []string{"token", "create", "-name", "x", "-role", "root"}, 2, `invalid role "root"`},
		{"unknown action", []string{"job", "frob"}, 2,
			"schedulerd job: unknown command 'frob'; want 'job submit|get|list|cancel|pause|resume|priority|explain'\n"},
		{"action typo", []string{"job", "lst"}, 2, "schedulerd job: unknown command 'lst' (did you mean 'job list'?); " +
			"want 'job submit|get|list|cancel|pause|resume|priority|explain'\n"},
		{"action typo of a swap", []string{"queue", "drian", "vision"}, 2,
			"unknown command 'drian' (did you mean 'queue drain'?)"},
		{"missing action", []string{"quota"}, 2, "schedulerd quota: want 'quota get|set'\n"},
		{"job id not a UUID", []string{"job", "cancel", "42"}, 2, `invalid job id "42": want a UUID`},
		{"explain id not a UUID", []string{"job", "explain", "job-1"}, 2, `invalid job id "job-1"`},
		{"parent not a UUID", []string{"job", "submit", "-project", "vision", "-type", "hpo", "-config", "trial.json",
			"-parent", "trial-7"}, 2, `-parent: invalid job id "trial-7": want a UUID`},
		{"limit too large", []string{"job", "list", "-limit", "501"}, 2, "invalid -limit 501: want 1 to 500"},
		{"limit zero", []string{"job", "list", "-limit", "0"}, 2, "invalid -limit 0"},
		{"no priority", []string{"job", "priority", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"}, 2,
			"schedulerd job: missing -priority; job priority needs -priority N, an integer from 0 to 100\n"},
		{"priority too large", []string{"job", "priority", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", "-priority", "101"}, 2,
			"schedulerd job: invalid -priority 101: want an integer from 0 to 100\n"},
		{"priority of an id not a UUID", []string{"job", "priority", "job-1", "-priority", "5"}, 2, `invalid job id "job-1"`},
		{"no delta", []string{"queue", "reprioritize", "vision"}, 2,
			"schedulerd queue: missing -delta; queue reprioritize needs -delta N, a non-zero integer from -100 to 100\n"},
		{"delta zero", []string{"queue", "reprioritize", "vision", "-delta", "0"}, 2,
			"schedulerd queue: invalid -delta 0: want a non-zero integer from -100 to 100\n"},
		{"delta too large", []string{"queue", "reprioritize", "vision", "-delta", "101"}, 2,
			"invalid -delta 101: want a non-zero integer from -100 to 100"},
		{"project without org", []string{"project", "create", "speech"}, 2, "project create needs -org ORG"},
		{"project update without a change", []string{"project", "update", "speech"}, 2, "project update needs at least one of"},
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

// A project without a quota gets a hint that names the CLI command that sets one, not the
// HTTP call that the API's own message names.
func TestNoQuotaHintNamesCommand(t *testing.T) {
	s := newProjectSession(t)
	s.ok("project", "create", "speech", "-org", "acme")
	want := `project "speech" has no quota; an admin sets one with 'schedulerd quota set speech ` +
		`-budget HOURS -max-concurrent N -tier PRIORITY -period-start YYYY-MM-DD -period-end YYYY-MM-DD'`
	for _, args := range [][]string{{"quota", "get", "speech"}, {"queue", "drain", "speech"}, {"queue", "undrain", "speech"}} {
		code, _, stderr := run(t, s.env, args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1", args, code)
		}
		wantLine := "schedulerd " + args[0] + ": " + want + "\n"
		if stderr != wantLine {
			t.Errorf("%v: stderr %q, want %q", args, stderr, wantLine)
		}
	}
}

// queue reprioritize prints one line when the queue is empty, and passes on the API's
// rejection of a delta that would move a job past priority 100.
func TestReprioritizeOutput(t *testing.T) {
	s := newProjectSession(t)
	if got, want := s.ok("queue", "reprioritize", "vision", "-delta", "5"),
		"no priority changed: project vision has no queued jobs\n"; got != want {
		t.Errorf("empty queue: printed %q, want %q", got, want)
	}

	job := s.submit("-priority", "98")
	code, _, stderr := run(t, s.env, "queue", "reprioritize", "vision", "-delta", "5")
	if code != 1 {
		t.Errorf("delta past the bound: exit %d, want 1", code)
	}
	want := "schedulerd queue: HTTP 422 request cannot be applied (delta): delta 5 would move 1 queued job " +
		"outside priorities 0 to 100, so no priority changed: " + job.ID.String() + " (98 to 103). " +
		"Give a delta from -98 to 2\n"
	if stderr != want {
		t.Errorf("delta past the bound: stderr %q, want %q", stderr, want)
	}

	changed := s.ok("queue", "reprioritize", "vision", "-delta", "2")
	if want := job.ID.String() + "  98      100\n"; !strings.Contains(changed, want) {
		t.Errorf("delta 2 printed:\n%s\nwant the line %q", changed, want)
	}
}

// TestJobPriorityCommand: job priority sets one queued job's priority through the API and
// prints the job, and the API's rejection for an ended job passes through.
func TestJobPriorityCommand(t *testing.T) {
	s := newProjectSession(t)
	job := s.submit("-priority", "10")

	var changed api.Job
	if err := json.Unmarshal([]byte(s.ok("job", "priority", job.ID.String(), "-priority", "70", "-o", "json")), &changed); err != nil {
		t.Fatal(err)
	}
	if changed.Priority != 70 {
		t.Errorf("printed priority %d, want 70", changed.Priority)
	}
	var stored api.Job
	if err := json.Unmarshal([]byte(s.ok("job", "get", job.ID.String(), "-o", "json")), &stored); err != nil {
		t.Fatal(err)
	}
	if stored.Priority != 70 {
		t.Errorf("stored priority %d, want 70", stored.Priority)
	}

	s.ok("job", "cancel", job.ID.String())
	code, _, stderr := run(t, s.env, "job", "priority", job.ID.String(), "-priority", "5")
	if code != 1 {
		t.Errorf("priority of a cancelled job: exit %d, want 1", code)
	}
	if want := "the priority of a finished job cannot change"; !strings.Contains(stderr, want) {
		t.Errorf("priority of a cancelled job: stderr %q, want it to contain %q", stderr, want)
	}
}

// newProjectSession is newAPISession with an admin token in SCHEDULERD_TOKEN and the
// project vision, whose quota admits no jobs, so that submitted jobs stay queued.
func newProjectSession(t *testing.T) *apiSession {
	t.Helper()
	s := newAPISession(t)
	var admin struct{ Secret string }
	if err := json.Unmarshal([]byte(s.ok("token", "create", "-name", "root", "-role", "admin", "-o", "json")), &admin); err != nil {
		t.Fatal(err)
	}
	s.env["SCHEDULERD_TOKEN"] = admin.Secret
	s.ok("project", "create", "vision", "-org", "acme")
	s.ok("quota", "set", "vision", "-budget", "100", "-max-concurrent", "0", "-tier", "50",
		"-period-start", "2026-01-01", "-period-end", "2100-01-01")
	return s
}

// submit submits a one-GPU fine_tune job to vision with the extra flags and returns it.
func (s *apiSession) submit(flags ...string) api.Job {
	s.t.Helper()
	config := filepath.Join(s.t.TempDir(), "job.json")
	err := os.WriteFile(config, []byte(`{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`), 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	args := append([]string{"job", "submit", "-project", "vision", "-type", "fine_tune", "-config", config, "-o", "json"}, flags...)
	var job api.Job
	if err := json.Unmarshal([]byte(s.ok(args...)), &job); err != nil {
		s.t.Fatalf("%v: %v", args, err)
	}
	return job
}

func TestSubmitPriorityGiven(t *testing.T) {
	s := newProjectSession(t)
	cases := []struct {
		flags []string
		want  int
	}{
		{nil, api.DefaultPriority},
		{[]string{"-priority", "0"}, 0},
		{[]string{"-priority", "100"}, 100},
	}
	for _, c := range cases {
		if job := s.submit(c.flags...); job.Priority != c.want {
			t.Errorf("job submit %v: priority %d, want %d", c.flags, job.Priority, c.want)
		}
	}
}

// TestSubmitPriorityOutOfRange needs no server: the CLI rejects the value itself.
func TestSubmitPriorityOutOfRange(t *testing.T) {
	for _, priority := range []string{"-1", "-2", "101"} {
		code, _, stderr := run(t, nil, "job", "submit", "-project", "vision", "-type", "fine_tune",
			"-config", "job.json", "-priority", priority)
		if code != 2 {
			t.Errorf("-priority %s: exit %d, want 2", priority, code)
		}
		if want := "schedulerd job: invalid -priority " + priority + ": want 0 to 100\n"; stderr != want {
			t.Errorf("-priority %s: stderr %q, want %q", priority, stderr, want)
		}
	}
}

// TestSubmitConfigInvalidJSON needs no server: the CLI reads the config file itself and
// names the line and column of the first syntax error.
func TestSubmitConfigInvalidJSON(t *testing.T) {
	cases := []struct {
		name, config, want string
	}{
		{"missing value", "{\n  \"image\": \"trainer:1\",\n  \"max_runtime_seconds\": ,\n}\n",
			"line 3, column 26: invalid character ',' looking for beginning of value"},
		{"characters before the error", "{\"image\": \"tränér\" \"x\"}",
			"line 1, column 20: invalid character '\"' after object key:value pair"},
		// A config that ends too early is at fault just past its last character.
		{"cut short", "{\n  \"image\": \"trainer:1\"\n", "line 2, column 23: unexpected end of JSON input"},
		{"empty", "", "line 1, column 1: unexpected end of JSON input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkConfigRejected(t, c.config, "is not valid JSON: "+c.want) })
	}
}

// checkConfigRejected submits config from a file and checks that the CLI rejects it before
// any call (exit 2) with the file's path followed by problem.
func checkConfigRejected(t *testing.T, config, problem string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, nil, "job", "submit", "-project", "vision", "-type", "fine_tune", "-config", path)
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if want := "schedulerd job: job config " + path + " " + problem + "\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestSubmitConfigNotUTF8 needs no server: the CLI rejects a config that is not UTF-8
// before it sends it, naming the file and the first byte at fault.
func TestSubmitConfigNotUTF8(t *testing.T) {
	cases := []struct {
		name, config, want string
	}{
		{"Latin-1 letter", "{\n  \"image\": \"tr\xe4iner:1\"}",
			"is not valid UTF-8 (byte 0xE4 at line 2, column 15); save it as UTF-8"},
		{"UTF-16", "\xff\xfe{\x00}\x00",
			"is UTF-16 (it starts with a UTF-16 byte order mark); save it as UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkConfigRejected(t, c.config, c.want) })
	}
}

// TestSubmitConfigWithBOM: a config saved with a UTF-8 byte order mark is submitted
// without it, as the same config saved without one.
func TestSubmitConfigWithBOM(t *testing.T) {
	s := newProjectSession(t)
	const config = `{"image":"trainer:1","max_runtime_seconds":3600,"resources":{"gpus":1,"gpu_models":["A10"]}}`
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, []byte("\xef\xbb\xbf"+config+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var job api.Job
	submitted := s.ok("job", "submit", "-project", "vision", "-type", "fine_tune", "-config", path, "-o", "json")
	if err := json.Unmarshal([]byte(submitted), &job); err != nil {
		t.Fatalf("job submit -o json printed %q: %v", submitted, err)
	}
	if job.Status != "queued" {
		t.Errorf("job status %q, want queued", job.Status)
	}
	var got, want any
	if err := json.Unmarshal(job.Config, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(config), &want); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored config %s, want %s", job.Config, config)
	}
}

// TestActionRejectsOtherActionFlags gives each queue, quota and token action a flag that
// only another action of the command has.
func TestActionRejectsOtherActionFlags(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"queue", "undrain", "vision", "-deadline", "5m"}, "schedulerd queue: flag provided but not defined: -deadline\n"},
		{[]string{"queue", "list", "-delta", "3"}, "schedulerd queue: flag provided but not defined: -delta\n"},
		{[]string{"queue", "drain", "vision", "-delta", "5"}, "schedulerd queue: flag provided but not defined: -delta\n"},
		{[]string{"queue", "reprioritize", "vision", "-deadline", "5m"}, "schedulerd queue: flag provided but not defined: -deadline\n"},
		{[]string{"quota", "get", "vision", "-budget", "5"}, "schedulerd quota: flag provided but not defined: -budget\n"},
		{[]string{"quota", "get", "vision", "-period-end", "2027-01-01"}, "schedulerd quota: flag provided but not defined: -period-end\n"},
		{[]string{"token", "list", "-role", "admin"}, "schedulerd token: flag provided but not defined: -role\n"},
		{[]string{"token", "revoke", "-ttl", "1h", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"},
			"schedulerd token: flag provided but not defined: -ttl\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, nil, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stderr != c.want {
				t.Errorf("stderr %q, want %q", stderr, c.want)
			}
		})
	}
}

// TestUnknownFlagSuggestsClose checks that an undefined flag one or two edits away from a
// defined one names it, for commands of both kinds: through the API and on the database.
func TestUnknownFlagSuggestsClose(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"token", "create", "-name", "ci", "-role", "submitter", "-project", "vision"},
			"schedulerd token: flag provided but not defined: -project; did you mean -projects?\n"},
		{[]string{"job", "list", "-projetc", "vision"},
			"schedulerd job: flag provided but not defined: -projetc; did you mean -project?\n"},
		{[]string{"queue", "drain", "vision", "--dead-line=5m"},
			"schedulerd queue: flag provided but not defined: -dead-line; did you mean -deadline?\n"},
		{[]string{"report", "-form", "2026-01-01"},
			"schedulerd report: flag provided but not defined: -form; did you mean -from?\n"},
		// Only the first undefined flag is reported.
		{[]string{"token", "create", "-nme", "ci", "-role", "admin", "-xyz"},
			"schedulerd token: flag provided but not defined: -nme; did you mean -name?\n"},
		// A one-letter name is too short to be a typo of -o, and -buy is three edits from -budget.
		{[]string{"job", "list", "-x"}, "schedulerd job: flag provided but not defined: -x\n"},
		{[]string{"quota", "set", "vision", "-tiers", "5", "-budgte", "9"},
			"schedulerd quota: flag provided but not defined: -tiers; did you mean -tier?\n"},
		{[]string{"quota", "set", "vision", "-buy", "9"}, "schedulerd quota: flag provided but not defined: -buy\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, nil, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stderr != c.want {
				t.Errorf("stderr %q, want %q", stderr, c.want)
			}
		})
	}
}

// TestActionHelpListsOwnFlags checks which of the action-specific flags each -h lists.
func TestActionHelpListsOwnFlags(t *testing.T) {
	cases := []struct {
		args     []string
		listed   []string
		unlisted []string
	}{
		{[]string{"queue", "list", "-h"}, nil, []string{"-deadline", "-delta"}},
		{[]string{"queue", "drain", "-h"}, []string{"-deadline"}, []string{"-delta"}},
		{[]string{"queue", "undrain", "-h"}, nil, []string{"-deadline", "-delta"}},
		{[]string{"queue", "reprioritize", "-h"}, []string{"-delta"}, []string{"-deadline"}},
		{[]string{"quota", "get", "-h"}, nil, []string{"-budget", "-max-concurrent", "-tier", "-period-start", "-period-end"}},
		{[]string{"quota", "set", "-h"}, []string{"-budget", "-max-concurrent", "-tier", "-period-start", "-period-end"}, nil},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, nil, c.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0", code)
			}
			for _, name := range c.listed {
				if !strings.Contains(stderr, "\n  "+name+" ") {
					t.Errorf("stderr does not list %s:\n%s", name, stderr)
				}
			}
			for _, name := range c.unlisted {
				if strings.Contains(stderr, "\n  "+name+" ") {
					t.Errorf("stderr lists %s:\n%s", name, stderr)
				}
			}
		})
	}
}

func TestQuotaGet(t *testing.T) {
	s := newProjectSession(t)
	got := s.ok("quota", "get", "vision")
	for _, want := range []string{"project        vision\n", "concurrency    0 of 0 jobs\n", "priority tier  50\n",
		"period         2026-01-01 to 2100-01-01\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("quota get printed:\n%s\nwant a line %q", got, want)
		}
	}
}

// quota set sends only the flags given, so the other limits stay as they are on the server.
func TestQuotaSetChangesOnlyGivenFlags(t *testing.T) {
	s := newProjectSession(t)
	s.ok("quota", "set", "vision", "-tier", "20")

	got := s.ok("quota", "get", "vision")
	for _, want := range []string{"priority tier  20\n", "period         2026-01-01 to 2100-01-01\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("quota get printed:\n%s\nwant a line %q", got, want)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"quota", "set", "vision"}, "quota set needs at least one of -budget"},
		{[]string{"quota", "set", "vision", "-budget", "NaN"}, "invalid -budget NaN: want a number of GPU-hours"},
		{[]string{"quota", "set", "vision", "-budget", "+Inf"}, "invalid -budget +Inf"},
	} {
		code, _, stderr := run(t, s.env, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestQuotaSetNeedsEveryFlagAtFirst: speech has no quota, so nothing fills in the flags
// that quota set leaves out, and the command names them instead of sending a request the
// server refuses field by field.
func TestQuotaSetNeedsEveryFlagAtFirst(t *testing.T) {
	s := newProjectSession(t)
	s.ok("project", "create", "speech", "-org", "acme")

	code, _, stderr := run(t, s.env, "quota", "set", "speech", "-budget", "5", "-tier", "10")
	want := `schedulerd quota: project "speech" has no quota yet, so quota set needs every flag; ` +
		"missing -max-concurrent, -period-start, -period-end\n"
	if code != 2 || stderr != want {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}
	s.ok("quota", "set", "speech", "-budget", "5", "-tier", "10", "-max-concurrent", "2",
		"-period-start", "2026-01-01", "-period-end", "2100-01-01")
}

// TestJobListAllOneDocument lists three jobs two to a page.
func TestJobListAllOneDocument(t *testing.T) {
	s := newProjectSession(t)
	var ids []string
	for range 3 {
		ids = append(ids, s.submit().ID.String())
	}
	slices.Sort(ids)

	stdout := s.ok("job", "list", "-all", "-limit", "2", "-o", "json")
	var list api.JobList
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatalf("job list -all -o json printed more or less than one JSON document: %v\n%s", err, stdout)
	}
	var listed []string
	for _, j := range list.Jobs {
		listed = append(listed, j.ID.String())
	}
	slices.Sort(listed)
	if !slices.Equal(listed, ids) {
		t.Errorf("job list -all -o json listed %v, want %v", listed, ids)
	}
	if strings.Contains(stdout, `"next_page"`) {
		t.Errorf("job list -all -o json has a next page:\n%s", stdout)
	}

	table := s.ok("job", "list", "-all", "-limit", "2")
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 4 {
		t.Errorf("job list -all printed %d lines, want a header and 3 jobs:\n%s", len(lines), table)
	}
	if headers := strings.Count(table, "ID  "); headers != 1 {
		t.Errorf("job list -all printed %d headers, want 1:\n%s", headers, table)
	}
	for _, id := range ids {
		if !strings.Contains(table, id) {
			t.Errorf("job list -all does not list job %s:\n%s", id, table)
		}
	}
}

func TestJobListPageAndNoJobs(t *testing.T) {
	s := newProjectSession(t)
	for range 3 {
		s.submit()
	}
	table := s.ok("job", "list", "-limit", "2")
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("job list -limit 2 printed %d lines, want a header, 2 jobs and the next page:\n%s", len(lines), table)
	}
	if !strings.HasPrefix(lines[3], "more jobs: repeat the command with -page-token ") {
		t.Errorf("last line %q, want the next page token", lines[3])
	}

	empty := s.ok("job", "list", "-all", "-status", "running", "-o", "json")
	if want := "{\n  \"jobs\": []\n}\n"; empty != want {
		t.Errorf("job list -all with no jobs printed %q, want %q", empty, want)
	}
}

// TestAPIURLWithoutScheme needs no server: each URL is rejected before any request.
func TestAPIURLWithoutScheme(t *testing.T) {
	for _, apiURL := range []string{"127.0.0.1:18471", "localhost:8080", "ftp://127.0.0.1:8080", "http://", "http:///v1"} {
		env := map[string]string{"SCHEDULERD_TOKEN": "sdt_x", "SCHEDULERD_API_URL": apiURL}
		code, _, stderr := run(t, env, "job", "get", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d")
		if code != 2 {
			t.Errorf("SCHEDULERD_API_URL %q: exit %d, want 2", apiURL, code)
		}
		want := "schedulerd job: invalid -api-url (env SCHEDULERD_API_URL): want a URL such as " +
			"http://127.0.0.1:8080, got \"" + apiURL + "\"\n"
		if stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	}

	env := map[string]string{"SCHEDULERD_API_URL": "127.0.0.1:18471"}
	code, _, stderr := run(t, env, "queue", "list", "-h")
	if code != 0 {
		t.Errorf("queue list -h: exit %d, want 0", code)
	}
	if want := `-api-url (env SCHEDULERD_API_URL) = "127.0.0.1:18471"`; !strings.Contains(stderr, want) {
		t.Errorf("queue list -h printed %q, want %q", stderr, want)
	}
}

func TestTokenCreateMissingProject(t *testing.T) {
	s := newProjectSession(t)
	code, _, stderr := run(t, s.env, "token", "create", "-name", "x", "-role", "submitter", "-projects", "vision,nosuchproj")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "schedulerd token: project \"nosuchproj\" does not exist; create it first with 'schedulerd project create'\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}

	var tokens []struct{ Name string }
	if err := json.Unmarshal([]byte(s.ok("token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || tokens[0].Name != "root" {
		t.Errorf("tokens %+v, want only root", tokens)
	}
}

// TestTokenOwner: -owner gives a token the owner of another, and a token created without
// it is owned by its name. token list prints both.
func TestTokenOwner(t *testing.T) {
	s := newProjectSession(t)
	var created struct{ Name, Owner string }
	out := s.ok("token", "create", "-name", "ana-laptop", "-owner", "ana", "-role", "operator", "-o", "json")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "ana-laptop" || created.Owner != "ana" {
		t.Errorf("token create printed name %q owner %q, want ana-laptop of owner ana", created.Name, created.Owner)
	}

	var tokens []struct{ Name, Owner string }
	if err := json.Unmarshal([]byte(s.ok("token", "list", "-o", "json")), &tokens); err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for _, token := range tokens {
		owners[token.Name] = token.Owner
	}
	if owners["root"] != "root" {
		t.Errorf("owner of root %q, want root", owners["root"])
	}
	if owners["ana-laptop"] != "ana" {
		t.Errorf("owner of ana-laptop %q, want ana", owners["ana-laptop"])
	}
	lines := strings.Split(s.ok("token", "list"), "\n")
	if header := strings.Fields(lines[0]); len(header) < 3 || header[2] != "OWNER" {
		t.Errorf("token list header %q, want OWNER third", lines[0])
	}

	code, _, stderr := run(t, s.env, "token", "create", "-name", "ci", "-owner", " ", "-role", "admin")
	if code != 2 || !strings.Contains(stderr, `invalid token owner " "`) {
		t.Errorf("blank -owner: exit %d, stderr %q; want exit 2 naming the owner", code, stderr)
	}
}

// TestTokenRevokeTwice: a second revoke exits 0 and reports on stderr that the token was
// already revoked, with the time of the first revoke, which the printed token keeps.
func TestTokenRevokeTwice(t *testing.T) {
	s := newAPISession(t)
	var token struct{ ID string }
	if err := json.Unmarshal([]byte(s.ok("token", "create", "-name", "ci", "-role", "admin", "-o", "json")), &token); err != nil {
		t.Fatal(err)
	}
	var first []struct {
		RevokedAt *time.Time `json:"revoked_at"`
	}
	if err := json.Unmarshal([]byte(s.ok("token", "revoke", token.ID, "-o", "json")), &first); err != nil {
		t.Fatal(err)
	}
	if len(first) != 1 || first[0].RevokedAt == nil {
		t.Fatalf("first revoke printed %+v, want one revoked token", first)
	}

	code, stdout, stderr := run(t, s.env, "token", "revoke", token.ID)
	if code != 0 {
		t.Errorf("second revoke: exit %d, want 0", code)
	}
	revokedAt := first[0].RevokedAt.UTC().Format(time.RFC3339)
	if want := "token " + token.ID + " was already revoked at " + revokedAt + "; nothing changed\n"; stderr != want {
		t.Errorf("second revoke: stderr %q, want %q", stderr, want)
	}
	if !strings.Contains(stdout, token.ID) || !strings.Contains(stdout, revokedAt) {
		t.Errorf("second revoke printed:\n%s\nwant token %s revoked at %s", stdout, token.ID, revokedAt)
	}
}

func TestExplanationCountsOneNode(t *testing.T) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printExplanation(tw, &api.Explanation{Status: "queued", GPUModels: []api.ModelState{
		{Model: "T4", Nodes: 1, CapacityMilli: 4000, FreeMilli: 4000, LargestNodeMilli: 4000}}})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "4 of 4 GPUs free on 1 node; the largest node has 4 in all"; !strings.Contains(b.String(), want) {
		t.Errorf("printed:\n%s\nwant a line with %q", b.String(), want)
	}
}

func TestExplanationListsNodeSizes(t *testing.T) {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printExplanation(tw, &api.Explanation{Status: "queued", GPUModels: []api.ModelState{
		{Model: "A10", Nodes: 2, CapacityMilli: 24000, FreeMilli: 24000, LargestNodeMilli: 16000,
			NodeSizes: []api.NodeSize{{GPUMilli: 16000, CPUMilli: 16000, MemoryMiB: 262144},
				{GPUMilli: 8000, CPUMilli: 64500, MemoryMiB: 262144}}}}})
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "24 of 24 GPUs free on 2 nodes; node sizes 16 GPUs, 16 cores, 256 GiB or 8 GPUs, 64.5 cores, 256 GiB"
	if !strings.Contains(b.String(), want) {
		t.Errorf("printed:\n%s\nwant a line with %q", b.String(), want)
	}
}

func TestExplanationShowsLiveRun(t *testing.T) {
	node := "a10-1"
	created := time.Now().Add(-90 * time.Second)
	cases := []struct {
		run  api.LiveRun
		want string
	}{
		{api.LiveRun{Number: 1, Status: "pending", Pod: "team/job-x-r1"}, "run          1, admitted; the pod team/job-x-r1 is not created yet"},
		{api.LiveRun{Number: 2, Status: "pending", Pod: "team/job-x-r2", PodCreatedAt: &created},
			"run          2, admitted; the pod team/job-x-r2 was created 1m30s ago and its container has not started"},
		{api.LiveRun{Number: 2, Status: "running", Pod: "team/job-x-r2", PodCreatedAt: &created, Node: &node},
			"run          2, running on node a10-1"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		run := c.run
		printExplanation(tw, &api.Explanation{Status: "running", Run: &run})
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(b.String(), c.want) {
			t.Errorf("printed:\n%s\nwant a line with %q", b.String(), c.want)
		}
	}
}

// A -parent in another form that uuid.Parse reads (32 hex digits) is sent as the
// 36-character form the API takes.
func TestSubmitParentShortForm(t *testing.T) {
	s := newProjectSession(t)
	parent := s.submit()
	child := s.submit("-parent", strings.ReplaceAll(parent.ID.String(), "-", ""))
	if child.ParentJobID == nil || *child.ParentJobID != parent.ID {
		t.Errorf("child's parent %v, want %s", child.ParentJobID, parent.ID)
	}
}

// Repeated -status flags filter by every status given, as GET /v1/jobs does.
func TestJobListRepeatedStatus(t *testing.T) {
	s := newProjectSession(t)
	for range 2 {
		s.submit()
	}
	stdout := s.ok("job", "list", "-status", "queued", "-status", "running", "-o", "json")
	var list api.JobList
	if err := json.Unmarshal([]byte(stdout), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Jobs) != 2 {
		t.Errorf("job list -status queued -status running listed %d jobs, want the 2 queued ones", len(list.Jobs))
	}
}

// project update changes the flags it is given and keeps the other fields.
func TestProjectUpdateKeepsOtherFields(t *testing.T) {
	s := newProjectSession(t)
	s.ok("project", "update", "vision", "-owner", "ana")

	var list api.ProjectList
	if err := json.Unmarshal([]byte(s.ok("project", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Projects) != 1 {
		t.Fatalf("%d projects listed, want 1", len(list.Projects))
	}
	got := list.Projects[0]
	if got.ID != "vision" {
		t.Errorf("project %q listed, want vision", got.ID)
	}
	if got.Org != "acme" {
		t.Errorf("org %q, want acme, kept from the create", got.Org)
	}
	if got.Namespace != "vision" {
		t.Errorf("namespace %q, want vision, kept from the create", got.Namespace)
	}
	if got.Owner != "ana" {
		t.Errorf("owner %q, want ana, set by the update", got.Owner)
	}
}

// project update never creates a project.
func TestProjectUpdateMissingProject(t *testing.T) {
	s := newProjectSession(t)
	code, _, stderr := run(t, s.env, "project", "update", "speech", "-org", "acme")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "schedulerd project: HTTP 404 not found: project \"speech\" does not exist; " +
		"create it with 'schedulerd project create speech -org ORG'\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
	if code, _, _ := run(t, s.env, "project", "get", "speech"); code != 1 {
		t.Errorf("project get speech after the update: exit %d, want 1", code)
	}
}

// project create leaves an existing project as it is.
func TestProjectCreateExistingProject(t *testing.T) {
	s := newProjectSession(t)
	code, _, stderr := run(t, s.env, "project", "create", "vision", "-org", "other")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "schedulerd project: project \"vision\" already exists, in org acme; change it with " +
		"'schedulerd project update vision'\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}

	var got api.Project
	if err := json.Unmarshal([]byte(s.ok("project", "get", "vision", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Org != "acme" {
		t.Errorf("org %q after the refused create, want acme", got.Org)
	}
}

// TestSubmitTagGivenTwice needs no server: a key given twice is rejected before any call,
// rather than the last value replacing the first without a word.
func TestSubmitTagGivenTwice(t *testing.T) {
	code, _, stderr := run(t, nil, "job", "submit", "-project", "vision", "-type", "fine_tune",
		"-config", "job.json", "-tag", "team=a", "-tag", "team=b")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	want := `schedulerd job: invalid value "team=b" for flag -tag: tag "team" is given twice ("a" and "b"); give each key once` + "\n"
	if stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}
