package cron_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// assertCovered checks that a jobs partition takes a row created at each instant.
func assertCovered(t *testing.T, pool *pgxpool.Pool, instants ...time.Time) {
	t.Helper()
	for _, at := range instants {
		var covered bool
		err := pool.QueryRow(context.Background(), `
			SELECT EXISTS (
			    SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			    WHERE i.inhparent = 'jobs'::regclass
			      AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz <= $1
			      AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz > $1)`,
			at).Scan(&covered)
		if err != nil {
			t.Fatalf("check the partition of %s: %v", at, err)
		}
		if !covered {
			t.Errorf("no jobs partition covers %s", at.Format(time.RFC3339))
		}
	}
}

func TestPartitionsAroundHandMadeQuarter(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE jobs_2031_q2 PARTITION OF jobs
		FOR VALUES FROM ('2031-04-01 00:00:00+00') TO ('2031-07-01 00:00:00+00')`); err != nil {
		t.Fatal(err)
	}

	report, err := cron.EnsurePartitions(ctx, pool, time.Date(2031, 3, 15, 0, 0, 0, 0, time.UTC), 5)
	if err != nil {
		t.Fatalf("ensure partitions March to August 2031: %v", err)
	}
	if report.Created != 3 {
		t.Errorf("created %d partitions, want 3 (March, July, August)", report.Created)
	}
	assertCovered(t, pool,
		time.Date(2031, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2031, 5, 20, 0, 0, 0, 0, time.UTC),
		time.Date(2031, 7, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2031, 8, 31, 23, 59, 59, 0, time.UTC))
	if want := time.Date(2031, 9, 1, 0, 0, 0, 0, time.UTC); !report.LastBound.Equal(want) {
		t.Errorf("last bound %v, want %v", report.LastBound, want)
	}
}

func TestPartitionFillsShortHandMadeMonth(t *testing.T) {
	ctx := context.Background()
	pool := poolInZone(t, "America/St_Johns")
	if _, err := pool.Exec(ctx, `CREATE TABLE jobs_2031_10 PARTITION OF jobs
		FOR VALUES FROM ('2031-10-01 00:00:00+00') TO ('2031-10-15 00:00:00+00')`); err != nil {
		t.Fatal(err)
	}

	report, err := cron.EnsurePartitions(ctx, pool, time.Date(2031, 10, 3, 0, 0, 0, 0, time.UTC), 1)
	if err != nil {
		t.Fatal(err)
	}
	if report.Created != 2 {
		t.Errorf("created %d partitions, want 2 (15 to 31 October, November)", report.Created)
	}
	assertCovered(t, pool,
		time.Date(2031, 10, 15, 0, 0, 0, 0, time.UTC),
		time.Date(2031, 10, 31, 23, 59, 59, 0, time.UTC),
		time.Date(2031, 11, 30, 0, 0, 0, 0, time.UTC))
	if report.RunwayMonths != 2 {
		t.Errorf("runway %d months, want 2", report.RunwayMonths)
	}
}

func TestPartitionNameTakenByOtherTable(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE jobs_2032_03 (archived_job_id uuid)`); err != nil {
		t.Fatal(err)
	}

	report, err := cron.EnsurePartitions(ctx, pool, time.Date(2032, 3, 10, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	if report.Created != 1 {
		t.Errorf("created %d partitions, want 1", report.Created)
	}
	assertCovered(t, pool, time.Date(2032, 3, 10, 0, 0, 0, 0, time.UTC))
}

func TestPartitionRunwayStopsAtGap(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	// A partition made by hand years ahead leaves the months between uncovered.
	if _, err := pool.Exec(ctx, `SELECT ensure_job_partitions('2035-01-10 00:00:00+00', 0)`); err != nil {
		t.Fatal(err)
	}

	report, err := cron.EnsurePartitions(ctx, pool, time.Date(2031, 1, 15, 0, 0, 0, 0, time.UTC), 0)
	if err != nil {
		t.Fatal(err)
	}
	if report.RunwayMonths != 1 {
		t.Errorf("runway %d months, want 1: February 2031 has no partition", report.RunwayMonths)
	}
	if want := time.Date(2031, 2, 1, 0, 0, 0, 0, time.UTC); !report.LastBound.Equal(want) {
		t.Errorf("last bound %v, want %v, the end of the partitions without a gap", report.LastBound, want)
	}
}
