package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PlanRecorder is a one-connection pool whose session runs PostgreSQL's auto_explain
// module with ANALYZE and BUFFERS on every statement, at NOTICE level, so that the plans of
// the statements the store itself sends reach the client. The bench never copies the
// store's SQL: it runs the real code on this pool and keeps the plans.
type PlanRecorder struct {
	Pool *pgxpool.Pool

	mu    sync.Mutex
	plans []string
}

// autoExplainSettings make auto_explain report every statement's actual plan to the client.
// auto_explain ships with PostgreSQL's server package; LOAD needs a superuser.
var autoExplainSettings = []string{
	`LOAD 'auto_explain'`,
	`SET auto_explain.log_min_duration = 0`,
	`SET auto_explain.log_analyze = on`,
	`SET auto_explain.log_buffers = on`,
	`SET auto_explain.log_timing = on`,
	`SET auto_explain.log_nested_statements = on`,
	`SET auto_explain.log_level = notice`,
	`SET client_min_messages = notice`,
}

// NewPlanRecorder opens the recording pool on the database name.
func NewPlanRecorder(ctx context.Context, env *Env, name string) (*PlanRecorder, error) {
	dbURL, err := env.DatabaseURL(name)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	r := &PlanRecorder{}
	cfg.MaxConns = 1
	cfg.ConnConfig.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "plan:") {
			r.mu.Lock()
			r.plans = append(r.plans, n.Message)
			r.mu.Unlock()
		}
	}
	cfg.AfterConnect = func(ctx context.Context, conn *pgx.Conn) error {
		for _, stmt := range autoExplainSettings {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("turn on auto_explain: %s: %w", stmt, err)
			}
		}
		return nil
	}
	r.Pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open plan-recording pool on %s: %w", name, err)
	}
	return r, nil
}

// Find returns the recorded plans whose text contains every one of fragments.
func (r *PlanRecorder) Find(fragments ...string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []string
	for _, p := range r.plans {
		all := true
		for _, f := range fragments {
			all = all && strings.Contains(p, f)
		}
		if all {
			found = append(found, p)
		}
	}
	return found
}

// Close closes the pool.
func (r *PlanRecorder) Close() { r.Pool.Close() }

// firstPlan returns the first of plans, or a line saying none was recorded.
func firstPlan(plans []string, what string) string {
	if len(plans) == 0 {
		return "(no plan of " + what + " was recorded)"
	}
	return plans[0]
}
