package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// PGBench runs pgbench's built-in "simple update" script (-N: one UPDATE of
// pgbench_accounts, one SELECT, one INSERT into pgbench_history per transaction) against
// its own database on the bench server: the ceiling of small write transactions there.
type PGBench struct {
	binary   string
	args     []string // connection flags
	database string
	Duration time.Duration
}

// NewPGBench initialises pgbench's tables at scale (100,000 accounts per unit) in a fresh
// database name on the bench server.
func NewPGBench(ctx context.Context, env *Env, name string, scale int, duration time.Duration) (*PGBench, error) {
	binary := filepath.Join(env.PGBinDir, "pgbench")
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("pgbench not found in %s (set -pg-bin): %w", env.PGBinDir, err)
	}
	u, err := url.Parse(env.ServerURL)
	if err != nil {
		return nil, fmt.Errorf("parse server URL: %w", err)
	}
	p := &PGBench{binary: binary, database: name, Duration: duration,
		args: []string{"-h", u.Hostname(), "-p", u.Port(), "-U", u.User.Username()}}

	if err := env.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if err := env.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return nil, err
	}
	args := append(append([]string{"-i", "-q", "-s", strconv.Itoa(scale)}, p.args...), name)
	if out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	return p, nil
}

var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// Measure runs pgbench -N with clients connections for the configured duration and
// returns its transactions per second. It vacuums the tables first (pgbench -n skips that),
// so that every run starts from the same state.
func (p *PGBench) Measure(ctx context.Context, clients int) (float64, error) {
	threads := min(clients, 2)
	args := append([]string{"-N", "-n", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(threads),
		"-T", strconv.Itoa(int(p.Duration.Seconds()))}, p.args...)
	args = append(args, p.database)

	psql := filepath.Join(filepath.Dir(p.binary), "psql")
	vacuumArgs := append(append([]string{}, p.args...), "-d", p.database, "-X", "-q",
		"-c", "VACUUM pgbench_accounts, pgbench_history")
	vacuum := exec.CommandContext(ctx, psql, vacuumArgs...)
	if out, err := vacuum.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("vacuum pgbench tables: %w\n%s", err, out)
	}

	out, err := exec.CommandContext(ctx, p.binary, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench -N -c %d: %w\n%s", clients, err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench -N -c %d: %w:\n%s", clients, errNoTPS, out)
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

var errNoTPS = errors.New("no tps line in pgbench's output")
