package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/migrations"
)

// Env is the pair of servers every measurement runs against: one PostgreSQL server, on
// which each measurement gets its own database, and one Kubernetes API server.
type Env struct {
	// ServerURL connects to the server's maintenance database as a user that may create
	// databases.
	ServerURL string
	// Kube is the client configuration of the local kube-apiserver, nil when the run
	// measures nothing on Kubernetes. Its QPS and Burst are the ones the daemon uses.
	Kube *rest.Config
	// PGBinDir contains pgbench.
	PGBinDir string
	// DaemonBinary is a built `schedulerd`, for the memory measurement.
	DaemonBinary string
	// DaemonLog is the file for that daemon's output; empty for a temporary file, deleted
	// after a clean stop.
	DaemonLog string
	// Runs is how often each measurement is repeated (3).
	Runs int
	Log  *slog.Logger

	template string
}

// DatabaseURL returns the server's URL with its database replaced by name.
func (e *Env) DatabaseURL(name string) (string, error) {
	u, err := url.Parse(e.ServerURL)
	if err != nil {
		return "", fmt.Errorf("parse server URL: %w", err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Exec runs one statement on the maintenance database.
func (e *Env) Exec(ctx context.Context, sql string) error {
	return e.onServer(ctx, sql, func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, sql)
		return err
	})
}

// QueryRow runs a query of one row on the maintenance database and scans it into dest.
func (e *Env) QueryRow(ctx context.Context, sql string, dest ...any) error {
	return e.onServer(ctx, sql, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, sql).Scan(dest...)
	})
}

// onServer calls fn on a new connection to the maintenance database, and wraps its error
// with the statement sql.
func (e *Env) onServer(ctx context.Context, sql string, fn func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, e.ServerURL)
	if err != nil {
		return fmt.Errorf("connect to the PostgreSQL server: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := fn(conn); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// FreshDatabase drops the database name if it exists and creates it again as a copy of a
// template migrated once per run with schedulerd's and River's migrations. It returns a
// pool of at most maxConns connections.
func (e *Env) FreshDatabase(ctx context.Context, name string, maxConns int32) (*pgxpool.Pool, error) {
	if e.template == "" {
		if err := e.migrateTemplate(ctx); err != nil {
			return nil, err
		}
	}
	if err := e.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return nil, err
	}
	if err := e.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, e.template)); err != nil {
		return nil, err
	}
	return e.Pool(ctx, name, maxConns)
}

// Pool opens a pool on the database name.
func (e *Env) Pool(ctx context.Context, name string, maxConns int32) (*pgxpool.Pool, error) {
	return e.TracedPool(ctx, name, maxConns, nil)
}

// TracedPool opens a pool on the database name whose statements go through tracer, which
// may be nil.
func (e *Env) TracedPool(ctx context.Context, name string, maxConns int32, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	dbURL, err := e.DatabaseURL(name)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("parse URL of database %s: %w", name, err)
	}
	cfg.MaxConns = maxConns
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool on database %s: %w", name, err)
	}
	return pool, nil
}

func (e *Env) migrateTemplate(ctx context.Context) error {
	const name = "bench_template"
	if err := e.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return err
	}
	if err := e.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return err
	}
	dbURL, err := e.DatabaseURL(name)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", name, err)
	}
	err = migrations.Up(ctx, conn)
	conn.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("migrate %s: %w", name, err)
	}

	// The pool must be closed before the template is copied: PostgreSQL copies only a
	// database that no one is connected to.
	pool, err := e.Pool(ctx, name, 2)
	if err != nil {
		return err
	}
	err = cron.MigrateRiver(ctx, pool)
	pool.Close()
	if err != nil {
		return err
	}
	e.template = name
	return nil
}

// KubeClient returns a clientset with the run's client configuration.
func (e *Env) KubeClient() (kubernetes.Interface, error) {
	if e.Kube == nil {
		return nil, fmt.Errorf("no Kubernetes API configured: pass -kubeconfig")
	}
	client, err := kubernetes.NewForConfig(e.Kube)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, nil
}

// timed returns how long fn took.
func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

// querier is the part of a pool or connection that waitCount uses.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
