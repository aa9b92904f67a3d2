package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/store"
)

// databaseHint is the last line of the error of a failed connection. The usual cause is a
// wrong URL, so the line names the two places the URL is set. oneLine joins the lines.
const databaseHint = "\ncheck -database-url or SCHEDULERD_DATABASE_URL"

// openStore connects a pool of at most maxConns connections to the configured database.
// Commands call it only once their own flags and arguments have passed their checks, so
// that -h and a bad argument need no database.
func openStore(ctx context.Context, env *environment, maxConns int32) (*store.Store, error) {
	if err := env.cfg.RequireDatabase(); err != nil {
		return nil, usageError{err.Error()}
	}
	db, err := store.Open(ctx, env.cfg.DatabaseURL, store.Options{MaxConns: maxConns})
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w%s", err, databaseHint)
	}
	if err != nil {
		return nil, err // interrupted: the URL is not to blame
	}
	return db, nil
}

// connect opens one connection to the configured database, with a deadline so that an
// unreachable server fails in seconds rather than hanging.
func connect(ctx context.Context, env *environment) (*pgx.Conn, error) {
	if err := env.cfg.RequireDatabase(); err != nil {
		return nil, usageError{err.Error()}
	}
	cfg, err := pgx.ParseConfig(env.cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	conn, err := pgx.ConnectConfig(dialCtx, cfg)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("connect to database at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to database at %s:%d: %w%s", cfg.Host, cfg.Port, err, databaseHint)
	}
	return conn, nil
}
