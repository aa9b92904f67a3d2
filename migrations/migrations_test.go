package migrations_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func countTables(t *testing.T, conn *pgx.Conn) int {
	t.Helper()
	var n int
	err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		   AND c.relname <> 'schedulerd_schema_version'`).Scan(&n)
	if err != nil {
		t.Fatalf("count tables: %v", err)
	}
	return n
}

func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	latest, err := migrations.Latest()
	if err != nil {
		t.Fatal(err)
	}

	if err := migrations.Up(ctx, conn); err != nil {
		t.Fatalf("first up: %v", err)
	}
	status, err := migrations.CurrentStatus(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if status.Current != latest {
		t.Errorf("after up: version %d, want %d", status.Current, latest)
	}
	tablesAfterUp := countTables(t, conn)
	if tablesAfterUp < 12 {
		t.Errorf("after up: %d tables, want at least 12", tablesAfterUp)
	}

	if err := migrations.To(ctx, conn, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if n := countTables(t, conn); n != 0 {
		t.Errorf("after down: %d tables left, want 0", n)
	}

	if err := migrations.Up(ctx, conn); err != nil {
		t.Fatalf("second up: %v", err)
	}
	if n := countTables(t, conn); n != tablesAfterUp {
		t.Errorf("after second up: %d tables, want %d as after the first", n, tablesAfterUp)
	}
}

func TestConcurrentUpAppliesOnce(t *testing.T) {
	ctx := context.Background()
	url := pgtest.NewEmptyDatabase(t)
	conns := []*pgx.Conn{connect(t, url), connect(t, url), connect(t, url)}

	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	start := make(chan struct{})
	for i, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = migrations.Up(ctx, conn)
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	latest, _ := migrations.Latest()
	status, err := migrations.CurrentStatus(ctx, conns[0])
	if err != nil {
		t.Fatal(err)
	}
	if status.Current != latest {
		t.Errorf("version %d, want %d", status.Current, latest)
	}
	var versionRows int
	if err := conns[0].QueryRow(ctx, "SELECT count(*) FROM "+migrations.VersionTable).Scan(&versionRows); err != nil {
		t.Fatal(err)
	}
	if versionRows != 1 {
		t.Errorf("version table has %d rows, want 1", versionRows)
	}
}

// A quota with an infinite period, written by SQL before migration 11, stops that migration
// with an error that names the constraint, and the schema stays at version 10.
func TestInfinitePeriodStopsMigration11(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	if err := migrations.To(ctx, conn, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('vision', 'acme', 'vision');
		INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end)
		VALUES ('vision', 10, 1, '2026-01-01', 'infinity')`); err != nil {
		t.Fatal(err)
	}

	err := migrations.To(ctx, conn, 11)
	if err == nil || !strings.Contains(err.Error(), "quotas_period_finite") {
		t.Fatalf("migrate to 11 = %v, want an error naming quotas_period_finite", err)
	}
	status, err := migrations.CurrentStatus(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if status.Current != 10 {
		t.Errorf("version %d after the failed migration, want 10", status.Current)
	}
}
