// Package pgtest gives tests a real PostgreSQL: the server named by
// SCHEDULERD_TEST_DATABASE_URL, or else a throwaway PostgreSQL 15 that it starts with
// scripts/pg-up.sh and stops by its PID when the test binary ends. The schema is migrated
// once into a template database, and each test gets a fresh copy of it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/proc"
	"github.com/schedulerd/schedulerd/migrations"
)

// EnvDatabaseURL names an existing server to use instead of starting one. Its user must be
// allowed to create databases.
const EnvDatabaseURL = "SCHEDULERD_TEST_DATABASE_URL"

// Server is a PostgreSQL server for one test binary.
type Server struct {
	// URL connects to the server's maintenance database.
	URL string

	dir          string // data directory of a server this package started; empty otherwise
	templateOnce sync.Once
	template     string
	templateErr  error
}

var (
	shared    *Server
	sharedErr error
)

// Main starts the server for a package's tests, runs them and stops it. Call it from
// TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run is Main without the exit: it returns the tests' exit code, so that a TestMain can
// also start other servers around it (see internal/s3test).
func Run(m *testing.M) int {
	shared, sharedErr = Start()
	code := m.Run()

	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// Start connects to EnvDatabaseURL or starts a throwaway server.
func Start() (*Server, error) {
	if envURL := os.Getenv(EnvDatabaseURL); envURL != "" {
		return &Server{URL: envURL}, nil
	}

	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "schedulerd-pgtest-")
	if err != nil {
		return nil, fmt.Errorf("create PostgreSQL directory: %w", err)
	}

	// --watch-pid stops the server even if this binary dies without calling Stop: on a
	// panic, a go test timeout or SIGINT.
	out, err := exec.Command("bash", filepath.Join(root, "scripts", "pg-up.sh"),
		"--watch-pid", strconv.Itoa(os.Getpid()), dir).CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start PostgreSQL with scripts/pg-up.sh: %w\n%s", err, out)
	}
	urlBytes, err := os.ReadFile(filepath.Join(dir, "url"))
	if err != nil {
		return nil, fmt.Errorf("read URL of the started PostgreSQL: %w", err)
	}
	return &Server{URL: strings.TrimSpace(string(urlBytes)), dir: dir}, nil
}

// Stop stops a server this package started, by its PID, and deletes its files. A server
// named by EnvDatabaseURL is left running.
func (s *Server) Stop() error {
	if s.dir == "" {
		return nil
	}

	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	script := filepath.Join(root, "scripts", "pg-down.sh")
	if out, err := exec.Command("bash", script, s.dir, "--purge").CombinedOutput(); err != nil {
		return fmt.Errorf("stop PostgreSQL in %s: %w\n%s", s.dir, err, out)
	}
	return nil
}

// Shared returns the server Main started, failing the test if it could not start.
func Shared(t testing.TB) *Server {
	t.Helper()
	if sharedErr != nil {
		t.Fatalf("PostgreSQL for tests: %v", sharedErr)
	}
	if shared == nil {
		t.Fatal("pgtest: call pgtest.Main from TestMain before using the shared server")
	}
	return shared
}

// NewDatabase creates a migrated database for one test, dropped when the test ends, and
// returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	ctx := context.Background()

	template, err := s.migratedTemplate(ctx)
	if err != nil {
		t.Fatalf("prepare template database: %v", err)
	}
	name := "test_" + randomSuffix()
	if err := s.exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", name)); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	return s.DatabaseURL(name)
}

// NewEmptyDatabase creates a database without any schema, for migration tests.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	s := Shared(t)
	ctx := context.Background()

	name := "empty_" + randomSuffix()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create empty database: %v", err)
	}
	t.Cleanup(func() {
		if err := s.exec(ctx, fmt.Sprintf("DROP DATABASE %s WITH (FORCE)", name)); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return s.DatabaseURL(name)
}

// NewPool returns a pool on a fresh migrated database, closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewDatabase(t))
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// NewPoolAt is NewPool on a database whose clock reads at: a now() function in a schema
// searched before pg_catalog shadows the real one on every connection. Tests use it to put
// the database's date apart from the host's. SQL and PL/pgSQL that call now() see at;
// column defaults keep the real clock, because they were bound to pg_catalog.now() when
// the migrations created them.
func NewPoolAt(t testing.TB, at time.Time) *pgxpool.Pool {
	t.Helper()
	databaseURL := NewDatabase(t)
	ctx := context.Background()

	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatalf("connect to set the clock: %v", err)
	}
	defer conn.Close(ctx)
	for _, sql := range []string{
		`CREATE SCHEMA test_clock`,
		fmt.Sprintf(`CREATE FUNCTION test_clock.now() RETURNS timestamptz LANGUAGE sql STABLE
			AS $$ SELECT '%s'::timestamptz $$`, at.UTC().Format(time.RFC3339Nano)),
		`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = test_clock, pg_catalog, "$user", public',
			current_database()); END $$`,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("set the database's clock to %s: %v", at, err)
		}
	}

	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// DatabaseURL returns the server's URL with its database replaced by name. The server
// URL must be a postgres:// URL, not a keyword/value string.
func (s *Server) DatabaseURL(name string) string {
	u, err := url.Parse(s.URL)
	if err != nil {
		panic(fmt.Sprintf("pgtest: %s is not a postgres:// URL: %v", EnvDatabaseURL, err))
	}
	u.Path = "/" + name
	return u.String()
}

// migratedTemplate creates and migrates the template database once per test binary. Test
// binaries that share a server each make their own template, so none waits on another.
func (s *Server) migratedTemplate(ctx context.Context) (string, error) {
	s.templateOnce.Do(func() {
		name := "template_" + randomSuffix()
		if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
			s.templateErr = err
			return
		}

		conn, err := pgx.Connect(ctx, s.DatabaseURL(name))
		if err != nil {
			s.templateErr = fmt.Errorf("connect to template %s: %w", name, err)
			return
		}
		defer conn.Close(ctx)

		if err := migrations.Up(ctx, conn); err != nil {
			s.templateErr = err
			return
		}
		if err := migrateRiver(ctx, s.DatabaseURL(name)); err != nil {
			s.templateErr = err
			return
		}
		s.template = name
	})
	return s.template, s.templateErr
}

// migrateRiver adds River's tables, which the cron service needs, as `schedulerd migrate up`
// does. The pool is closed before the template is copied, since PostgreSQL copies only a
// database that no one is connected to.
func migrateRiver(ctx context.Context, databaseURL string) error {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("open pool for River migrations: %w", err)
	}
	defer pool.Close()
	return cron.MigrateRiver(ctx, pool)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", redact(s.URL), err)
	}
	defer conn.Close(ctx)

	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// ModuleRoot returns the directory of the go.mod above the working directory, where the
// project's scripts are.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory; run tests from the repository")
		}
		dir = parent
	}
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redact(databaseURL string) string {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return "the configured URL"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}

// Restart stops a server this package started with `pg_ctl stop -m mode`, keeps it down
// for down, and starts it again on the same port and data. Mode fast cuts open
// connections and rolls back their transactions. Mode immediate stops the server as a
// crash does, so it replays its WAL at start. Restart records the new PID for pg-down.sh,
// and fails for a server named by EnvDatabaseURL.
func (s *Server) Restart(ctx context.Context, mode string, down time.Duration) error {
	if s.dir == "" {
		return fmt.Errorf("the server in %s was not started by this test; it cannot restart it", EnvDatabaseURL)
	}
	data := filepath.Join(s.dir, "data")
	// postmaster.opts holds the server's command line: the binary, then its options.
	opts, err := os.ReadFile(filepath.Join(data, "postmaster.opts"))
	if err != nil {
		return fmt.Errorf("read the server's options: %w", err)
	}
	_, options, _ := strings.Cut(strings.TrimSpace(string(opts)), " ")

	if err := s.pgCtl(ctx, "stop", "-w", "-t", "60", "-m", mode, "-D", data); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(down):
	}
	if err := s.pgCtl(ctx, "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(s.dir, "postgres.log"),
		"-o", options); err != nil {
		return err
	}

	pid, err := proc.ReadPIDFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		return fmt.Errorf("read the restarted server's PID: %w", err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the restarted server's PID: %w", err)
	}
	return nil
}

// pgCtl runs pg_ctl, as the postgres user when this process is root, since PostgreSQL
// refuses to run as root and pg-up.sh started it as postgres.
func (s *Server) pgCtl(ctx context.Context, args ...string) error {
	bindir := os.Getenv("SCHEDULERD_PG_BINDIR")
	if bindir == "" {
		bindir = "/usr/lib/postgresql/15/bin"
	}
	command := append([]string{filepath.Join(bindir, "pg_ctl")}, args...)
	if os.Geteuid() == 0 {
		command = append([]string{"runuser", "-u", "postgres", "--"}, command...)
	}
	if out, err := exec.CommandContext(ctx, command[0], command[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s in %s: %w\n%s", args[0], s.dir, err, out)
	}
	return nil
}

// WaitAdvisoryLocksReleased waits up to 10 seconds until the server process pid holds no
// advisory lock. pg_terminate_backend returns before the ended session's process has
// exited, and the process releases its locks after its client saw the connection close.
func WaitAdvisoryLocksReleased(t testing.TB, pool *pgxpool.Pool, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var held int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1`, pid).Scan(&held)
		if err != nil {
			t.Fatal(err)
		}
		if held == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server process %d still has %d advisory locks 10s after its termination", pid, held)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
