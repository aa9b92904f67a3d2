package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/migrations"
)

// flagSet reports whether the command line set the named flag, so that a value given on
// purpose is not mistaken for the default.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runMigrate applies, rolls back or reports the schema migrations.
func runMigrate(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 {
		return usageError{"want a subcommand: up, down or status"}
	}
	if isHelp(args[0]) {
		return helpText{"usage: schedulerd migrate up | down [-to VERSION] | status"}
	}
	fs := flag.NewFlagSet("migrate "+args[0], flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	to := fs.Int("to", -1, "with down: the version to roll back to (0 removes every table); default one step")
	if err := parseNoArgs(fs, args[1:]); err != nil {
		return err
	}
	if flagSet(fs, "to") {
		if err := checkTargetVersion(*to); err != nil {
			return err
		}
	}
	switch {
	case args[0] != "up" && args[0] != "down" && args[0] != "status":
		return usageError{fmt.Sprintf("unknown migrate subcommand %q: want up, down or status", args[0])}
	case args[0] != "down" && flagSet(fs, "to"):
		return usageError{fmt.Sprintf("-to applies only to migrate down, not to migrate %s", args[0])}
	}

	conn, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))

	switch args[0] {
	case "up":
		if err := migrations.Up(ctx, conn); err != nil {
			return err
		}
		if err := migrateRiver(ctx, env.cfg.DatabaseURL); err != nil {
			return err
		}
	case "down":
		if err := migrateDown(ctx, conn, *to); err != nil {
			return err
		}
	case "status":
	default:
		return usageError{fmt.Sprintf("unknown migrate subcommand %q: want up, down or status", args[0])}
	}

	status, err := migrations.CurrentStatus(ctx, conn)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "schema version %d of %d\n", status.Current, status.Latest)
	return nil
}

// checkTargetVersion rejects a -to outside the versions embedded in this binary. It runs
// before the version becomes tern's int32, which would wrap a larger value to a low version.
func checkTargetVersion(to int) error {
	latest, err := migrations.Latest()
	if err != nil {
		return err
	}
	if to < 0 || to > int(latest) {
		return usageError{fmt.Sprintf("invalid -to %d: want a version from 0 to %d", to, latest)}
	}
	return nil
}

// migrateDown rolls the schema back to version to, or one step without -to (to < 0). It
// rejects a version above the current one, because tern would apply migrations to reach it.
func migrateDown(ctx context.Context, conn *pgx.Conn, to int) error {
	status, err := migrations.CurrentStatus(ctx, conn)
	if err != nil {
		return err
	}
	if to < 0 {
		if status.Current == 0 {
			return nil
		}
		to = int(status.Current) - 1
	}
	if to > int(status.Current) {
		return fmt.Errorf("-to %d is above the schema's version %d, and migrate down only rolls back, "+
			"so run 'schedulerd migrate up' to apply migrations", to, status.Current)
	}
	return migrations.To(ctx, conn, int32(to))
}

// migrateRiver applies River's own migrations, which the cron service's durable jobs need.
// They live in the schema "river", so `migrate down` leaves them alone.
func migrateRiver(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return fmt.Errorf("open pool for River's migrations: %w", err)
	}
	defer pool.Close()
	return cron.MigrateRiver(ctx, pool)
}
