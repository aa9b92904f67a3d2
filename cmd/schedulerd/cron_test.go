package main

import (
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

func TestCronRunPartitions(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}

	code, stdout, stderr := run(t, env, "cron", "run", "partitions", "-partition-months-ahead", "5")
	if code != 0 {
		t.Fatalf("exit code %d, stderr %q", code, stderr)
	}
	// The migration made three months ahead, so two more are created.
	if !strings.HasPrefix(stdout, "created 2 jobs partitions;") || !strings.HasSuffix(stdout, "runway 6 months\n") {
		t.Errorf("stdout %q, want 2 partitions created and a runway of 6 months", stdout)
	}
}

func TestCronRunUsage(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": pgtest.NewDatabase(t)}
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no task", []string{"cron", "run"}, "schedulerd cron: want: cron run partitions|retention"},
		{"unknown task", []string{"cron", "run", "vacuum"}, `schedulerd cron: unknown cron task "vacuum"`},
		{"bad months", []string{"cron", "run", "partitions", "-partition-months-ahead", "x"}, "schedulerd cron: invalid SCHEDULERD_PARTITION_MONTHS_AHEAD"},
		{"bad direction", []string{"cron", "run", "retention", "-retention-best-metric", "loss", "-retention-best-direction", "up"}, "schedulerd cron: retention policy: best metric"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, env, c.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, c.want) {
				t.Errorf("stderr %q, want prefix %q", stderr, c.want)
			}
		})
	}
}
