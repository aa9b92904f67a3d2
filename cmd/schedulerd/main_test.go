package main

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/config"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func run(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = realMain(args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadConfigurationIsOneLine(t *testing.T) {
	cases := []struct {
		name string
		url  string
		code int
		want string
	}{
		{"malformed URL", "postgres://u@host:port/db", 2, "schedulerd: invalid -database-url (env SCHEDULERD_DATABASE_URL): cannot parse the URL"},
		{"not postgres", "mysql://u@h/db", 2, "schedulerd: invalid -database-url (env SCHEDULERD_DATABASE_URL): must start with postgres://"},
		{"unreachable", "postgres://u@127.0.0.1:1/db?connect_timeout=2", 1,
			"schedulerd migrate: connect to database at 127.0.0.1:1: failed to connect to `user=u database=db`: " +
				"127.0.0.1:1 (127.0.0.1): dial error: dial tcp 127.0.0.1:1: connect: connection refused; " +
				"check -database-url or SCHEDULERD_DATABASE_URL\n"},
		{"missing", "", 2, "schedulerd migrate: no database configured: set SCHEDULERD_DATABASE_URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, map[string]string{"SCHEDULERD_DATABASE_URL": c.url}, "migrate", "status")
			if code != c.code {
				t.Errorf("exit code %d, want %d", code, c.code)
			}
			if !strings.HasPrefix(stderr, c.want) {
				t.Errorf("stderr %q, want prefix %q", stderr, c.want)
			}
			if lines := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); lines != 0 {
				t.Errorf("stderr has %d lines, want 1: %q", lines+1, stderr)
			}
		})
	}
}

func TestOneLine(t *testing.T) {
	err := fmt.Errorf("open: %w", errors.New("failed to connect:\n\thost a: refused\n\thost a: refused\n\thost b:  timed   out\n"))
	if got, want := oneLine(err), "open: failed to connect: host a: refused; host b: timed out"; got != want {
		t.Errorf("oneLine = %q, want %q", got, want)
	}
}

func TestMigrateUpDownStatus(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewEmptyDatabase(t)}
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	version := func(v int32) string { return fmt.Sprintf("schema version %d of %d\n", v, latest) }

	steps := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "status"}, version(0)},
		{[]string{"migrate", "up"}, version(latest)},
		{[]string{"migrate", "down"}, version(latest - 1)},
		{[]string{"migrate", "down", "-to", "0"}, version(0)},
		{[]string{"migrate", "up"}, version(latest)},
	}
	for _, step := range steps {
		code, stdout, stderr := run(t, env, step.args...)
		if code != 0 || stdout != step.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 and %q", step.args, code, stdout, stderr, step.want)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	cases := []struct{ command, want string }{
		{"frobnicate", "schedulerd: unknown command 'frobnicate'; run 'schedulerd help' for the list\n"},
		{"jbo", "schedulerd: unknown command 'jbo' (did you mean 'job'?); run 'schedulerd help' for the list\n"},
		{"qouta", "schedulerd: unknown command 'qouta' (did you mean 'quota'?); run 'schedulerd help' for the list\n"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, nil, c.command)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2", c.command, code)
		}
		if stderr != c.want {
			t.Errorf("%s: stderr %q, want %q", c.command, stderr, c.want)
		}
	}
}

// A typo of a settings flag reaches the command as an unknown flag. The error names the
// closest setting, whether the command has flags of its own or, like run, has none.
func TestSettingsFlagTypoHint(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-databse-url", "postgres://x"},
			`schedulerd run: run takes only settings flags, not ["-databse-url" "postgres://x"]; did you mean -database-url?` + "\n"},
		{[]string{"run", "--log-levl=debug"},
			`schedulerd run: run takes only settings flags, not ["--log-levl=debug"]; did you mean -log-level?` + "\n"},
		{[]string{"migrate", "up", "-databse-url", "postgres://x"},
			"schedulerd migrate: flag provided but not defined: -databse-url; did you mean -database-url?\n"},
		{[]string{"cron", "run", "partitions", "-dry-rn"},
			"schedulerd cron: flag provided but not defined: -dry-rn; did you mean -dry-run?\n"},
		// token reads only the database URL, so log-level is no setting of it.
		{[]string{"token", "list", "-log-levl", "debug"},
			"schedulerd token: flag provided but not defined: -log-levl\n"},
		{[]string{"run", "extra"}, `schedulerd run: run takes only settings flags, not ["extra"]` + "\n"},
	}
	for _, c := range cases {
		code, _, stderr := run(t, nil, c.args...)
		if code != 2 || stderr != c.want {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestRunHelpDoesNotStart(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	code, _, stderr := run(t, env, "run", "-h")
	if code != 0 || !strings.Contains(stderr, "Settings of schedulerd run") || strings.Contains(stderr, `"msg"`) {
		t.Errorf("run -h: exit %d, stderr %q; want exit 0, the settings and no log line", code, stderr)
	}
	code, _, stderr = run(t, env, "run", "-bogus-flag", "extra")
	if code != 2 || !strings.Contains(stderr, `run takes only settings flags, not ["-bogus-flag" "extra"]`) {
		t.Errorf("run -bogus-flag extra: exit %d, stderr %q; want exit 2 naming the arguments", code, stderr)
	}
}

// TestHelpNeedsNoSettings runs each command with -h and no database URL or API token set.
// The command's own flags follow the settings, and the exit code is 0. The commands that
// call the API list the API's two variables, not the daemon's settings.
func TestHelpNeedsNoSettings(t *testing.T) {
	apiCommands := map[string]bool{"job": true, "queue": true, "quota": true, "project": true, "approval": true,
		"artifact": true, "model": true}
	cases := []struct {
		args []string
		want string // a line of the command's own flags
	}{
		{[]string{"report", "-h"}, "first day of the period"},
		{[]string{"migrate", "down", "-h"}, "the version to roll back to"},
		{[]string{"cron", "run", "retention", "-h"}, "print what would be deleted"},
		{[]string{"replay", "-h"}, "replay only the first N GPU tasks"},
		{[]string{"token", "create", "-h"}, "who holds the token"},
		{[]string{"job", "submit", "-h"}, "file holding the job config as JSON"},
		{[]string{"queue", "drain", "-h"}, "when running jobs are preempted"},
		{[]string{"quota", "set", "-h"}, "GPU-hour budget of the period"},
		{[]string{"project", "create", "-h"}, "organisation the project belongs to"},
		{[]string{"approval", "approve", "-h"}, "why, for the requester and the audit log"},
		{[]string{"artifact", "record", "-h"}, "size of the object in bytes"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, stdout, stderr := run(t, nil, c.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr %q", code, stderr)
			}
			settings := strings.Index(stderr, "Settings of schedulerd "+c.args[0])
			own := strings.Index(stderr, c.want)
			if settings < 0 || own < settings {
				t.Errorf("stderr %q: want the settings, then %q", stderr, c.want)
			}
			if strings.Contains(stderr, "no database configured") || strings.Contains(stderr, "no API token") {
				t.Errorf("stderr %q asks for a setting", stderr)
			}
			if n := strings.Count(stderr, "Usage of "); n != 1 {
				t.Errorf("stderr has %d flag lists, want 1", n)
			}
			api := apiCommands[c.args[0]]
			if got := strings.Contains(stderr, "-api-url (env SCHEDULERD_API_URL) = "); got != api {
				t.Errorf("stderr lists SCHEDULERD_API_URL: %t, want %t", got, api)
			}
			if got := strings.Contains(stderr, "-database-url (env SCHEDULERD_DATABASE_URL)"); got == api {
				t.Errorf("stderr lists the database URL setting: %t, want %t", got, !api)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestTokenHelpListsDatabaseOnly: token reads only the database URL, so its -h lists only
// that setting, a bad value of another setting does not stop it, and another setting's
// flag is rejected.
func TestTokenHelpListsDatabaseOnly(t *testing.T) {
	env := map[string]string{"SCHEDULERD_LOG_FORMAT": "xml"}
	for _, args := range [][]string{{"token", "-h"}, {"token", "create", "-h"}, {"token", "list", "-h"},
		{"token", "revoke", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := run(t, env, args...)
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr %q", code, stderr)
			}
			if !strings.Contains(stderr, "-database-url (env SCHEDULERD_DATABASE_URL)") {
				t.Errorf("stderr %q, want the database URL setting", stderr)
			}
			if n := strings.Count(stderr, "(env SCHEDULERD_"); n != 1 {
				t.Errorf("stderr lists %d settings, want 1: %q", n, stderr)
			}
		})
	}

	code, _, stderr := run(t, nil, "token", "list", "-http-addr", "127.0.0.1:1")
	if code != 2 {
		t.Errorf("token list -http-addr: exit %d, want 2", code)
	}
	if want := "schedulerd token: flag provided but not defined: -http-addr\n"; stderr != want {
		t.Errorf("token list -http-addr: stderr %q, want %q", stderr, want)
	}
}

// TestReportEmptyPeriod: -to is the first day not included, so a period of one day given
// as the same day twice is empty, and the error gives the command for that day.
func TestReportEmptyPeriod(t *testing.T) {
	cases := []struct {
		name, from, to, want string
	}{
		{"same day", "2026-05-01", "2026-05-01", "schedulerd report: invalid period: -to is the first day not " +
			"included, so -to 2026-05-01 must be after -from 2026-05-01; " +
			"for 2026-05-01 alone, run 'schedulerd report -from 2026-05-01 -to 2026-05-02'\n"},
		{"same day at a month's end", "2026-02-28", "2026-02-28", "schedulerd report: invalid period: -to is the " +
			"first day not included, so -to 2026-02-28 must be after -from 2026-02-28; " +
			"for 2026-02-28 alone, run 'schedulerd report -from 2026-02-28 -to 2026-03-01'\n"},
		{"end before start", "2026-05-03", "2026-05-01", "schedulerd report: invalid period: -to is the first " +
			"day not included, so -to 2026-05-01 must be after -from 2026-05-03\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, nil, "report", "-from", c.from, "-to", c.to)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stderr != c.want {
				t.Errorf("stderr %q, want %q", stderr, c.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestHelpListsSubcommands passes -h in place of a command's subcommand.
func TestHelpListsSubcommands(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "-h"}, "usage: schedulerd migrate up | down [-to VERSION] | status"},
		{[]string{"cron", "-h"}, "usage: schedulerd cron run partitions|retention|budgets"},
		{[]string{"cron", "run", "--help"}, "usage: schedulerd cron run partitions|retention|budgets"},
		{[]string{"job", "-h"}, "usage: schedulerd job submit|get|list|cancel|pause|resume|priority|explain [flags]"},
		{[]string{"token", "-help"}, "usage: schedulerd token create|list|revoke [flags]"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, nil, c.args...)
			if code != 0 {
				t.Errorf("exit %d, want 0; stderr %q", code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.want)
			}
		})
	}
}

// TestFlagErrorIsOneLine checks that a bad flag value gives one line naming it, not the
// flag list that the flag package prints after the message.
func TestFlagErrorIsOneLine(t *testing.T) {
	code, _, stderr := run(t, nil, "job", "submit", "-project", "p", "-type", "t", "-config", "f", "-priority", "abc")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if want := "schedulerd job: invalid value \"abc\" for flag -priority: parse error\n"; stderr != want {
		t.Errorf("stderr %q, want %q", stderr, want)
	}
}

// TestUnreachableAPINamesSetting points the CLI at a closed port, through
// SCHEDULERD_API_URL or, without it, the daemon's own SCHEDULERD_HTTP_ADDR. The hint names
// the setting that gave the URL.
func TestUnreachableAPINamesSetting(t *testing.T) {
	connectionRefused := "schedulerd job: GET http://127.0.0.1:1/v1/jobs/0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d: " +
		"dial tcp 127.0.0.1:1: connect: connection refused; "
	cases := []struct {
		name, setting, hint string
	}{
		{"API URL", "SCHEDULERD_API_URL", "check -api-url or SCHEDULERD_API_URL"},
		{"HTTP address", "SCHEDULERD_HTTP_ADDR", "-api-url (env SCHEDULERD_API_URL) is not set, so the CLI used " +
			"-http-addr (env SCHEDULERD_HTTP_ADDR, 127.0.0.1:1); set -api-url or SCHEDULERD_API_URL to the daemon's URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			value := "127.0.0.1:1"
			if c.setting == "SCHEDULERD_API_URL" {
				value = "http://" + value
			}
			env := map[string]string{"SCHEDULERD_TOKEN": "sdt_x", c.setting: value}
			code, _, stderr := run(t, env, "job", "get", "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if want := connectionRefused + c.hint + "\n"; stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
		})
	}
}

func TestHelpCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}, {"--help"}} {
		code, _, stderr := run(t, nil, args...)
		if code != 0 || !strings.Contains(stderr, "usage: schedulerd COMMAND") {
			t.Errorf("%v: exit %d, stderr %q; want exit 0 and the usage", args, code, stderr)
		}
	}
	code, _, stderr := run(t, nil)
	if code != 2 || !strings.Contains(stderr, "usage: schedulerd COMMAND") {
		t.Errorf("no arguments: exit %d, stderr %q; want exit 2 and the usage", code, stderr)
	}
}

func TestMigrateDownRejectsNegativeVersion(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	code, _, stderr := run(t, env, "migrate", "down", "-to", "-3")
	if code != 2 || !strings.Contains(stderr, "invalid -to -3") {
		t.Errorf("exit %d, stderr %q; want exit 2 and invalid -to -3", code, stderr)
	}
	latest, _ := migrations.Latest()
	_, stdout, _ := run(t, env, "migrate", "status")
	if want := fmt.Sprintf("schema version %d of %d\n", latest, latest); stdout != want {
		t.Errorf("status %q after the rejected rollback, want %q", stdout, want)
	}
}

// A -to above the binary's versions is rejected before it reaches tern, which takes an
// int32: 4294967297 would wrap to version 1 and drop almost every table.
func TestMigrateDownRejectsVersionAboveLatest(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("schema version %d of %d\n", latest, latest)
	for _, to := range []string{fmt.Sprint(latest + 1), "4294967297"} {
		code, _, stderr := run(t, env, "migrate", "down", "-to", to)
		if code != 2 {
			t.Errorf("-to %s: exit %d, want 2; stderr %q", to, code, stderr)
		}
		wantErr := fmt.Sprintf("invalid -to %s: want a version from 0 to %d", to, latest)
		if !strings.Contains(stderr, wantErr) {
			t.Errorf("-to %s: stderr %q, want it to contain %q", to, stderr, wantErr)
		}
		if _, stdout, _ := run(t, env, "migrate", "status"); stdout != want {
			t.Errorf("-to %s: status %q after the rejected rollback, want %q", to, stdout, want)
		}
	}
}

// migrate down never applies migrations: a -to above the current version is rejected and
// the schema stays where it is.
func TestMigrateDownRejectsVersionAboveCurrent(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, env, "migrate", "down", "-to", fmt.Sprint(latest-2)); code != 0 {
		t.Fatalf("migrate down -to %d: exit %d, stderr %q", latest-2, code, stderr)
	}

	code, _, stderr := run(t, env, "migrate", "down", "-to", fmt.Sprint(latest))
	if code != 1 {
		t.Errorf("exit %d, want 1; stderr %q", code, stderr)
	}
	wantErr := fmt.Sprintf("-to %d is above the schema's version %d", latest, latest-2)
	if !strings.Contains(stderr, wantErr) {
		t.Errorf("stderr %q, want it to contain %q", stderr, wantErr)
	}
	if !strings.Contains(stderr, "schedulerd migrate up") {
		t.Errorf("stderr %q, want it to name schedulerd migrate up", stderr)
	}
	_, stdout, _ := run(t, env, "migrate", "status")
	if want := fmt.Sprintf("schema version %d of %d\n", latest-2, latest); stdout != want {
		t.Errorf("status %q after the rejected rollback, want %q", stdout, want)
	}
}

// TestBadCronSettingsRejectedBeforeConnecting: a bad cron time zone or schedule in the
// environment stops run and cron run with exit 2, before they connect to the closed port.
func TestBadCronSettingsRejectedBeforeConnecting(t *testing.T) {
	cases := []struct {
		name, variable, value string
		args                  []string
		want                  string
	}{
		{"run, time zone", "SCHEDULERD_CRON_TZ", "Mars/Olympus", []string{"run"},
			"invalid -cron-tz (env SCHEDULERD_CRON_TZ): unknown time zone Mars/Olympus; " +
				"want an IANA time zone name such as Europe/Paris"},
		{"run, partition schedule", "SCHEDULERD_CRON_PARTITIONS", "61 * * * *", []string{"run"},
			`invalid -cron-partitions (env SCHEDULERD_CRON_PARTITIONS): parse cron expression "61 * * * *": ` +
				"end of range (61) above maximum (59): 61; write off to disable the task"},
		{"cron run, retention schedule", "SCHEDULERD_CRON_RETENTION", "@fortnightly",
			[]string{"cron", "run", "partitions", "-dry-run"},
			`invalid -cron-retention (env SCHEDULERD_CRON_RETENTION): parse cron expression "@fortnightly"`},
		{"run, schedule zone", "SCHEDULERD_CRON_RETENTION", "CRON_TZ=Nowhere/City 0 3 * * *", []string{"run"},
			`unknown time zone "Nowhere/City"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://u@127.0.0.1:1/db?connect_timeout=2",
				c.variable: c.value}
			code, _, stderr := run(t, env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr %q", code, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.want)
			}
		})
	}
}

// The database URL below points at a closed port, so exit code 2 and the message show that
// each of these inputs is rejected before the command connects (a connection error exits 1).
func TestInvalidArgumentsRejectedBeforeConnecting(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": "postgres://u@127.0.0.1:1/db?connect_timeout=2"}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"migrate", "sideways"}, `unknown migrate subcommand "sideways": want up, down or status`},
		{[]string{"migrate", "up", "-to", "3"}, "-to applies only to migrate down, not to migrate up"},
		{[]string{"migrate", "status", "-to", "0"}, "-to applies only to migrate down, not to migrate status"},
		{[]string{"report", "-o", "yaml"}, `invalid -o "yaml": want table or json`},
		{[]string{"cron", "run", "vacuum"}, `unknown cron task "vacuum": want partitions, retention or budgets`},
		{[]string{"token", "revoke", "x"}, `invalid token id "x": want a UUID`},
		{[]string{"report", "extra", "-o", "json"}, `unexpected arguments ["extra"]: report takes flags only`},
		{[]string{"cron", "run", "partitions", "extra", "-dry-run"},
			`unexpected arguments ["extra"]: cron run partitions takes flags only`},
		{[]string{"replay", "-trace-dir", "traces", "extra", "-limit", "1"},
			`unexpected arguments ["extra"]: replay takes flags only`},
		{[]string{"replay", "-trace-dir", "traces", "-speedup", "0"}, "invalid speedup 0: must be positive"},
		{[]string{"replay", "-trace-dir", "traces", "-mode", "fast"}, `invalid mode "fast": want paced or fill`},
		{[]string{"replay", "-trace-dir", "traces", "-limit", "-3"}, "invalid limit -3"},
		{[]string{"migrate", "up", "extra"}, `unexpected arguments ["extra"]: migrate up takes flags only`},
		{[]string{"migrate", "down", "-to", "-1"}, "invalid -to -1: want a version from 0 to "},
		{[]string{"token", "list", "extra"}, "usage: schedulerd token list"},
		{[]string{"token", "create", "-name", "ana", "-role", "root"}, `invalid role "root"`},
		{[]string{"report", "-from", "2026-02-01", "-to", "2026-01-01"},
			"invalid period: -to is the first day not included, so -to 2026-01-01 must be after -from 2026-02-01"},
		{[]string{"report", "-from", "2026-02-01", "-to", "2026-02-01"},
			"invalid period: -to is the first day not included, so -to 2026-02-01 must be after -from 2026-02-01"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr %q", code, stderr)
			}
			if lines := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); lines != 0 {
				t.Errorf("stderr has %d lines, want 1: %q", lines+1, stderr)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr %q, want it to contain %q", stderr, c.want)
			}
		})
	}
}

// TestRunMissingKubeconfigNamesSetting: a kubeconfig path that does not exist fails the
// start with the setting to check.
func TestRunMissingKubeconfigNamesSetting(t *testing.T) {
	env := map[string]string{"SCHEDULERD_KUBECONFIG": "/nonexistent/kubeconfig", "SCHEDULERD_LEADER_ELECTION": "false"}
	code, _, stderr := run(t, env, "run")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := "schedulerd run: load kubeconfig /nonexistent/kubeconfig (check SCHEDULERD_KUBECONFIG): "
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr %q, want prefix %q", stderr, want)
	}
}

// TestJSONLogDurationAsText: the JSON log writes durations as text, such as the back-off of
// a retry, not as integer nanoseconds.
func TestJSONLogDurationAsText(t *testing.T) {
	var b bytes.Buffer
	log := newLogger(config.Config{LogFormat: "json"}, &b)
	log.Info("retrying", "retry_in", 1500*time.Millisecond, "attempt", 2)

	if want := `"retry_in":"1.5s","attempt":2}`; !strings.Contains(b.String(), want) {
		t.Errorf("log line %q, want it to contain %q", b.String(), want)
	}
}

// TestAPICommandsIgnoreDaemonSettings: the API commands read only the API address, so a
// bad value of a daemon setting in the environment does not stop them, and a daemon
// setting's flag is rejected as it is by token.
func TestAPICommandsIgnoreDaemonSettings(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": "host=db password=x", "SCHEDULERD_KUBE_QPS": "-1",
		"SCHEDULERD_API_URL": "http://127.0.0.1:1", "SCHEDULERD_TOKEN": "sdt_x"}
	for _, name := range []string{"job", "queue", "quota", "project", "approval", "artifact", "model"} {
		if got, want := commandSettings[name], []string{"http-addr", "api-url", "token"}; !slices.Equal(got, want) {
			t.Errorf("API command %s reads the settings %q, want %q", name, got, want)
		}
	}
	for _, args := range [][]string{{"job", "list"}, {"queue", "list"}, {"quota", "get"}, {"project", "list"},
		{"approval", "list"}, {"artifact", "record"}, {"model", "versions"}} {
		code, _, stderr := run(t, env, append(args, "-h")...)
		if code != 0 {
			t.Errorf("%v -h: exit %d, want 0; stderr %q", args, code, stderr)
		}
	}

	code, _, stderr := run(t, env, "job", "get", "not-a-uuid")
	if code != 2 {
		t.Errorf("job get: exit %d, want 2", code)
	}
	if want := "schedulerd job: invalid job id \"not-a-uuid\": want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d\n"; stderr != want {
		t.Errorf("job get: stderr %q, want %q", stderr, want)
	}

	code, _, stderr = run(t, env, "queue", "list", "-log-level", "debug")
	if code != 2 {
		t.Errorf("queue list -log-level: exit %d, want 2", code)
	}
	if want := "schedulerd queue: flag provided but not defined: -log-level\n"; stderr != want {
		t.Errorf("queue list -log-level: stderr %q, want %q", stderr, want)
	}
}
