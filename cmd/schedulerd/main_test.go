package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

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
		{"unreachable", "postgres://u@127.0.0.1:1/db?connect_timeout=2", 1, "schedulerd migrate: connect to database at 127.0.0.1:1:"},
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
	code, _, stderr := run(t, nil, "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestRunHelpDoesNotStart(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	for _, args := range [][]string{{"run", "-h"}, {"run", "-bogus-flag", "extra"}} {
		code, _, stderr := run(t, env, args...)
		if code != 2 || !strings.Contains(stderr, "run takes only settings flags") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming the arguments", args, code, stderr)
		}
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
		{[]string{"report", "-from", "2026-02-01", "-to", "2026-01-01"},
			"invalid period: -to 2026-01-01 must be after -from 2026-02-01"},
		{[]string{"report", "-from", "2026-02-01", "-to", "2026-02-01"},
			"invalid period: -to 2026-02-01 must be after -from 2026-02-01"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
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
