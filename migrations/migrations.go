// Package migrations owns the schedulerd schema: numbered SQL files embedded in the binary,
// each with its down step, applied by tern under a PostgreSQL advisory lock so that replicas
// starting at the same moment apply each migration once. It decides nothing about jobs.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// VersionTable records the applied schema version. tern keeps one row in it.
const VersionTable = "public.schedulerd_schema_version"

//go:embed *.sql
var files embed.FS

// Status is where a database stands against the migrations in this binary.
type Status struct {
	Current int32 // version applied to the database
	Latest  int32 // highest version this binary knows
}

// Pending reports whether the database lacks migrations this binary has.
func (s Status) Pending() bool { return s.Current < s.Latest }

// Up applies every migration the database lacks.
func Up(ctx context.Context, conn *pgx.Conn) error {
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return err
	}

	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// To moves the database to version target, up or down. Version 0 is an empty schema.
func To(ctx context.Context, conn *pgx.Conn, target int32) error {
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return err
	}

	if err := m.MigrateTo(ctx, target); err != nil {
		return fmt.Errorf("migrate to version %d: %w", target, err)
	}
	return nil
}

// CurrentStatus reads the applied version. A database never migrated is at version 0.
func CurrentStatus(ctx context.Context, conn *pgx.Conn) (Status, error) {
	m, err := newMigrator(ctx, conn)
	if err != nil {
		return Status{}, err
	}

	current, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("read schema version from %s: %w", VersionTable, err)
	}
	return Status{Current: current, Latest: int32(len(m.Migrations))}, nil
}

// Latest returns the highest migration version embedded in this binary.
func Latest() (int32, error) {
	names, err := migrate.FindMigrations(files)
	if err != nil {
		return 0, fmt.Errorf("list embedded migrations: %w", err)
	}
	return int32(len(names)), nil
}

func newMigrator(ctx context.Context, conn *pgx.Conn) (*migrate.Migrator, error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return nil, fmt.Errorf("prepare schema version table %s: %w", VersionTable, err)
	}

	sub, err := fs.Sub(files, ".")
	if err != nil {
		return nil, fmt.Errorf("open embedded migrations: %w", err)
	}
	if err := m.LoadMigrations(sub); err != nil {
		var noMigrations migrate.NoMigrationsFoundError
		if errors.As(err, &noMigrations) {
			return nil, errors.New("no migrations embedded in this binary")
		}
		return nil, fmt.Errorf("load embedded migrations: %w", err)
	}
	return m, nil
}
