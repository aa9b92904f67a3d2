package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/config"
	"github.com/schedulerd/schedulerd/retention"
)

// runOnlySettings are the settings of run beside the core ones: leader election, cron, S3,
// retention and Temporal.
var runOnlySettings = []struct{ flag, env string }{
	{"leader-election", "SCHEDULERD_LEADER_ELECTION"},
	{"leader-election-namespace", "SCHEDULERD_LEADER_ELECTION_NAMESPACE"},
	{"cron-tz", "SCHEDULERD_CRON_TZ"},
	{"cron-partitions", "SCHEDULERD_CRON_PARTITIONS"},
	{"cron-retention", "SCHEDULERD_CRON_RETENTION"},
	{"cron-budgets", "SCHEDULERD_CRON_BUDGETS"},
	{"partition-months-ahead", "SCHEDULERD_PARTITION_MONTHS_AHEAD"},
	{"s3-endpoint", "SCHEDULERD_S3_ENDPOINT"},
	{"s3-region", "SCHEDULERD_S3_REGION"},
	{"s3-path-style", "SCHEDULERD_S3_PATH_STYLE"},
	{"retention-keep-latest", "SCHEDULERD_RETENTION_KEEP_LATEST"},
	{"retention-best-metric", "SCHEDULERD_RETENTION_BEST_METRIC"},
	{"retention-best-direction", "SCHEDULERD_RETENTION_BEST_DIRECTION"},
	{"retention-min-age", "SCHEDULERD_RETENTION_MIN_AGE"},
	{"retention-batch", "SCHEDULERD_RETENTION_BATCH"},
	{"temporal-address", "SCHEDULERD_TEMPORAL_ADDRESS"},
	{"temporal-namespace", "SCHEDULERD_TEMPORAL_NAMESPACE"},
}

// TestRunHelpListsEverySetting: run -h lists every setting that run reads, and not the
// CLI's, which run never uses.
func TestRunHelpListsEverySetting(t *testing.T) {
	code, stdout, stderr := run(t, nil, "run", "-h")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr %q", code, stderr)
	}
	for _, s := range runOnlySettings {
		if line := "  -" + s.flag + " (env " + s.env + ") = "; !strings.Contains(stderr, line) {
			t.Errorf("run -h does not list %q:\n%s", line, stderr)
		}
	}
	for _, flag := range []string{"-api-url", "-token"} {
		if strings.Contains(stderr, flag+" (env") {
			t.Errorf("run -h lists %s, which run never reads:\n%s", flag, stderr)
		}
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}

// TestRunSettingFlagWinsOverVariable gives each setting of run a bad value in one place
// and a good one in the other. A good flag over a bad variable passes the settings check,
// so run goes on to the missing kubeconfig and exits 1. A bad flag over a good variable
// stops run with exit 2 and the flag's name. No server is needed for either.
func TestRunSettingFlagWinsOverVariable(t *testing.T) {
	cases := []struct{ flag, env, good, bad, reason string }{
		{"leader-election", "SCHEDULERD_LEADER_ELECTION", "false", "maybe", `want true or false, got "maybe"`},
		{"cron-tz", "SCHEDULERD_CRON_TZ", "Europe/Paris", "Mars/Olympus", "unknown time zone Mars/Olympus"},
		{"cron-partitions", "SCHEDULERD_CRON_PARTITIONS", "off", "61 * * * *", `parse cron expression "61 * * * *"`},
		{"cron-retention", "SCHEDULERD_CRON_RETENTION", "@every 6h", "@fortnightly", `parse cron expression "@fortnightly"`},
		{"cron-budgets", "SCHEDULERD_CRON_BUDGETS", "5 * * * *", "5 * *", `parse cron expression "5 * *"`},
		{"partition-months-ahead", "SCHEDULERD_PARTITION_MONTHS_AHEAD", "6", "0", "want 1 to 120"},
		{"s3-path-style", "SCHEDULERD_S3_PATH_STYLE", "true", "yes", `want true or false, got "yes"`},
		{"retention-keep-latest", "SCHEDULERD_RETENTION_KEEP_LATEST", "0", "-1", `want an integer from 0 up, got "-1"`},
		{"retention-best-direction", "SCHEDULERD_RETENTION_BEST_DIRECTION", "max", "up", `want one of min, max, got "up"`},
		{"retention-min-age", "SCHEDULERD_RETENTION_MIN_AGE", "24h", "a week", `want a duration from 0 up`},
		{"retention-batch", "SCHEDULERD_RETENTION_BATCH", "500", "5000", "want 1 to 1000 objects"},
		{"temporal-address", "SCHEDULERD_TEMPORAL_ADDRESS", "127.0.0.1:7233", "temporal", "want host:port"},
	}
	for _, c := range cases {
		t.Run(c.flag, func(t *testing.T) {
			env := map[string]string{"SCHEDULERD_KUBECONFIG": "/nonexistent/kubeconfig", c.env: c.bad}
			code, _, stderr := run(t, env, "run", "-"+c.flag, c.good)
			if code != 1 || !strings.HasPrefix(stderr, "schedulerd run: load kubeconfig /nonexistent/kubeconfig") {
				t.Errorf("-%s %q over %s=%q: exit %d, stderr %q; want exit 1 at the kubeconfig",
					c.flag, c.good, c.env, c.bad, code, stderr)
			}

			env[c.env] = c.good
			code, _, stderr = run(t, env, "run", "-"+c.flag, c.bad)
			want := "schedulerd: invalid -" + c.flag + " (env " + c.env + "): "
			if code != 2 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, c.reason) {
				t.Errorf("-%s %q over %s=%q: exit %d, stderr %q; want exit 2, %q and %q",
					c.flag, c.bad, c.env, c.good, code, stderr, want, c.reason)
			}
			if lines := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); lines != 0 {
				t.Errorf("stderr has %d lines, want 1: %q", lines+1, stderr)
			}
		})
	}
}

// TestCronSettingsFromFlags checks that the cron settings that run and cron run use are
// the flags' values where flags and variables differ.
func TestCronSettingsFromFlags(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"SCHEDULERD_CRON_TZ": "Asia/Tokyo", "SCHEDULERD_CRON_RETENTION": "off",
			"SCHEDULERD_S3_ENDPOINT": "http://127.0.0.1:1", "SCHEDULERD_RETENTION_KEEP_LATEST": "9"}[name]
	}
	args := []string{"-cron-tz", "Europe/Paris", "-cron-retention", "0 4 * * *", "-cron-budgets", "off",
		"-partition-months-ahead", "6", "-s3-endpoint", "http://127.0.0.1:7070", "-s3-path-style", "true",
		"-retention-keep-latest", "2", "-retention-best-metric", "loss", "-retention-min-age", "1h",
		"-retention-batch", "100"}
	cfg, rest, err := config.LoadOnly("schedulerd run", commandSettings["run"], args, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 0 {
		t.Errorf("remaining args %q, want none", rest)
	}

	s := newCronSettings(cfg)
	if s.location == nil || s.location.String() != "Europe/Paris" {
		t.Errorf("time zone %v, want Europe/Paris", s.location)
	}
	if s.partitionsSchedule != "17 2 * * *" || s.retentionSchedule != "0 4 * * *" || s.budgetsSchedule != "off" {
		t.Errorf("schedules %q, %q, %q; want the default, 0 4 * * * and off",
			s.partitionsSchedule, s.retentionSchedule, s.budgetsSchedule)
	}
	if s.monthsAhead != 6 {
		t.Errorf("months ahead %d, want 6", s.monthsAhead)
	}
	if want := (retention.S3Config{Endpoint: "http://127.0.0.1:7070", PathStyle: true}); s.s3 != want {
		t.Errorf("S3 %+v, want %+v", s.s3, want)
	}
	want := retention.Policy{KeepLatest: 2, BestMetric: "loss", BestDirection: retention.Min, MinAge: time.Hour}
	if s.policy != want {
		t.Errorf("policy %+v, want %+v", s.policy, want)
	}
	if s.retentionBatchSize != 100 {
		t.Errorf("retention batch %d, want 100", s.retentionBatchSize)
	}
}

func TestDispatcherSettingsFromFlags(t *testing.T) {
	args := []string{"-unschedulable-timeout", "2m", "-gpu-wait-timeout", "20m", "-image-pull-grace", "3m"}
	cfg, _, err := config.LoadOnly("schedulerd run", commandSettings["run"], args,
		func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}

	got := dispatcherConfig(cfg)
	if got.UnschedulableTimeout != 2*time.Minute {
		t.Errorf("unschedulable timeout %v, want 2m", got.UnschedulableTimeout)
	}
	if got.GPUWaitTimeout != 20*time.Minute {
		t.Errorf("GPU wait timeout %v, want 20m", got.GPUWaitTimeout)
	}
	if got.ImagePullGrace != 3*time.Minute {
		t.Errorf("image pull grace %v, want 3m", got.ImagePullGrace)
	}
}

func TestLeaderElectionFromSettings(t *testing.T) {
	load := func(args ...string) config.Config {
		t.Helper()
		cfg, _, err := config.LoadOnly("schedulerd run", commandSettings["run"], args,
			func(name string) string {
				return map[string]string{"SCHEDULERD_LEADER_ELECTION_NAMESPACE": "env-ns"}[name]
			}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}

	election := leaderElection(load("-leader-election-namespace", "schedulerd"))
	if election == nil {
		t.Fatal("leader election off, want on by default")
	}
	if election.Namespace != "schedulerd" || election.Name != "schedulerd" {
		t.Errorf("Lease %s/%s, want schedulerd/schedulerd from the flag", election.Namespace, election.Name)
	}
	if election := leaderElection(load("-leader-election=false")); election != nil {
		t.Errorf("leader election %+v, want off after -leader-election=false", election)
	}
}

// TestCLIAPIFlags: the API commands take the API URL and token as flags, over the
// variables. The URL below is a closed port, so a connection error (exit 1) shows that the
// command got past the URL and token checks without a server.
func TestCLIAPIFlags(t *testing.T) {
	env := map[string]string{"SCHEDULERD_API_URL": "ftp://127.0.0.1:2"}
	code, _, stderr := run(t, env, "job", "get", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d",
		"-api-url", "http://127.0.0.1:1", "-token", "sdt_x")
	want := "schedulerd job: GET http://127.0.0.1:1/v1/jobs/0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d: " +
		"dial tcp 127.0.0.1:1: connect: connection refused; check -api-url or SCHEDULERD_API_URL\n"
	if code != 1 || stderr != want {
		t.Errorf("job get with -api-url and -token: exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
	}

	env = map[string]string{"SCHEDULERD_API_URL": "http://127.0.0.1:1", "SCHEDULERD_TOKEN": "sdt_x"}
	code, _, stderr = run(t, env, "queue", "list", "--api-url=127.0.0.1:1")
	want = `schedulerd queue: invalid -api-url (env SCHEDULERD_API_URL): want a URL such as http://127.0.0.1:8080, ` +
		`got "127.0.0.1:1"` + "\n"
	if code != 2 || stderr != want {
		t.Errorf("queue list with a bad -api-url: exit %d, stderr %q; want exit 2 and %q", code, stderr, want)
	}

	env = map[string]string{"SCHEDULERD_API_URL": "http://127.0.0.1:1"}
	code, _, stderr = run(t, env, "quota", "get", "vision", "-token", "")
	if code != 2 || !strings.Contains(stderr, "no API token: set SCHEDULERD_TOKEN or -token") {
		t.Errorf("quota get with an empty -token: exit %d, stderr %q; want exit 2 and no API token", code, stderr)
	}
}

// TestAPIClientTakesFlags checks the URL and token that the client sends with, where
// flags and variables differ.
func TestAPIClientTakesFlags(t *testing.T) {
	getenv := func(name string) string {
		return map[string]string{"SCHEDULERD_API_URL": "http://127.0.0.1:1", "SCHEDULERD_TOKEN": "sdt_env"}[name]
	}
	cfg, rest, err := config.LoadOnly("schedulerd job", commandSettings["job"],
		[]string{"list", "-api-url", "http://127.0.0.1:8081/", "-token", "sdt_flag"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rest, " ") != "list" {
		t.Errorf("remaining args %q, want [list]", rest)
	}
	client := newAPIClient(&environment{cfg: cfg})
	if client.base != "http://127.0.0.1:8081" {
		t.Errorf("API URL %q, want http://127.0.0.1:8081 from the flag", client.base)
	}
	if client.token != "sdt_flag" {
		t.Errorf("token %q, want sdt_flag from the flag", client.token)
	}
	if client.baseErr != nil {
		t.Errorf("URL error %v, want none", client.baseErr)
	}
}

// TestAPIHelpHidesToken: an API command's -h lists the URL and the token settings, and
// shows whether the token is set but not the token.
func TestAPIHelpHidesToken(t *testing.T) {
	env := map[string]string{"SCHEDULERD_TOKEN": "sdt_s3cret"}
	for _, args := range [][]string{{"job", "-h"}, {"job", "list", "-h"}, {"approval", "approve", "-h"}} {
		code, _, stderr := run(t, env, args...)
		if code != 0 {
			t.Errorf("%v: exit %d, want 0; stderr %q", args, code, stderr)
		}
		if !strings.Contains(stderr, `-api-url (env SCHEDULERD_API_URL) = ""`) {
			t.Errorf("%v: stderr does not list -api-url:\n%s", args, stderr)
		}
		if !strings.Contains(stderr, `-token (env SCHEDULERD_TOKEN) = "REDACTED"`) {
			t.Errorf("%v: stderr does not list -token as set:\n%s", args, stderr)
		}
		if strings.Contains(stderr, "s3cret") {
			t.Errorf("%v: stderr shows the token:\n%s", args, stderr)
		}
	}
}

// TestCommandsRejectUnusedSettingFlags: a command rejects the flag of a setting it never
// reads, as it rejects any flag it does not define.
func TestCommandsRejectUnusedSettingFlags(t *testing.T) {
	for name := range commands {
		if _, ok := commandSettings[name]; !ok {
			t.Errorf("command %s has no entry in commandSettings, so it would read every setting", name)
		}
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "status", "-cron-tz", "UTC"}, "schedulerd migrate: flag provided but not defined: -cron-tz\n"},
		{[]string{"report", "-token", "sdt_x"}, "schedulerd report: flag provided but not defined: -token\n"},
		{[]string{"cron", "run", "partitions", "-temporal-address", "127.0.0.1:7233"},
			"schedulerd cron: flag provided but not defined: -temporal-address\n"},
		{[]string{"cron", "run", "budgets", "-leader-election", "false"},
			"schedulerd cron: flag provided but not defined: -leader-election\n"},
		{[]string{"token", "list", "-token", "sdt_x"}, "schedulerd token: flag provided but not defined: -token\n"},
		{[]string{"job", "list", "-s3-region", "eu-west-3"}, "schedulerd job: flag provided but not defined: -s3-region\n"},
		{[]string{"run", "-api-url", "http://127.0.0.1:8080"},
			`schedulerd run: run takes only settings flags, not ["-api-url" "http://127.0.0.1:8080"]` + "\n"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, nil, c.args...)
		if code != 2 || stderr != c.want {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestS3Configured(t *testing.T) {
	cases := []struct {
		name      string
		settings  cronSettings
		awsRegion string
		want      bool
	}{
		{"nothing set", cronSettings{}, "", false},
		{"endpoint", cronSettings{s3: retention.S3Config{Endpoint: "http://127.0.0.1:7070"}}, "", true},
		{"region", cronSettings{s3: retention.S3Config{Region: "eu-west-1"}}, "", true},
		{"AWS_REGION", cronSettings{}, "us-east-1", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := &environment{getenv: func(name string) string {
				return map[string]string{"AWS_REGION": c.awsRegion}[name]
			}}
			if got := s3Configured(env, c.settings); got != c.want {
				t.Errorf("s3Configured %v, want %v", got, c.want)
			}
		})
	}
}
