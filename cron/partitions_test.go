package cron_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// poolInZone returns a pool on a fresh database whose sessions use the TimeZone zone.
func poolInZone(t *testing.T, zone string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = zone
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

type partitionBound struct {
	name         string
	lower, upper time.Time
}

// partitionBounds returns the bounds of the jobs partition named name.
func partitionBounds(t *testing.T, pool *pgxpool.Pool, name string) (partitionBound, bool) {
	t.Helper()
	var b partitionBound
	var found bool
	err := pool.QueryRow(context.Background(), `
		SELECT c.relname,
		       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz,
		       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz,
		       true
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'jobs'::regclass AND c.relname = $1`, name).Scan(&b.name, &b.lower, &b.upper, &found)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatalf("read bounds of %s: %v", name, err)
	}
	return b, found
}

func TestPartitionBoundsAcrossLeapYear(t *testing.T) {
	ctx := context.Background()
	for _, zone := range []string{"Asia/Kolkata", "America/St_Johns"} {
		t.Run(zone, func(t *testing.T) {
			pool := poolInZone(t, zone)
			from := time.Date(2027, 12, 15, 12, 0, 0, 0, time.UTC)

			report, err := cron.EnsurePartitions(ctx, pool, from, 13)
			if err != nil {
				t.Fatal(err)
			}
			if report.Created != 14 {
				t.Errorf("created %d partitions, want 14 (December 2027 to January 2029)", report.Created)
			}
			if want := time.Date(2029, 2, 1, 0, 0, 0, 0, time.UTC); !report.LastBound.Equal(want) {
				t.Errorf("last bound %v, want %v", report.LastBound, want)
			}
			if report.RunwayMonths != 14 {
				t.Errorf("runway %d months, want 14", report.RunwayMonths)
			}

			for month := 0; month < 14; month++ {
				lower := time.Date(2027, time.Month(12+month), 1, 0, 0, 0, 0, time.UTC)
				name := fmt.Sprintf("jobs_%04d_%02d", lower.Year(), int(lower.Month()))
				got, ok := partitionBounds(t, pool, name)
				if !ok {
					t.Errorf("partition %s missing", name)
					continue
				}
				if !got.lower.Equal(lower) || !got.upper.Equal(lower.AddDate(0, 1, 0)) {
					t.Errorf("%s bounds [%v, %v), want [%v, %v)", name,
						got.lower.UTC(), got.upper.UTC(), lower, lower.AddDate(0, 1, 0))
				}
			}

			feb, _ := partitionBounds(t, pool, "jobs_2028_02")
			if days := feb.upper.Sub(feb.lower).Hours() / 24; days != 29 {
				t.Errorf("February 2028 partition spans %v days, want 29", days)
			}

			again, err := cron.EnsurePartitions(ctx, pool, from, 13)
			if err != nil {
				t.Fatal(err)
			}
			if again.Created != 0 {
				t.Errorf("second run created %d partitions, want 0", again.Created)
			}
		})
	}
}

func TestPartitionsFromMonthEnd(t *testing.T) {
	ctx := context.Background()
	for _, zone := range []string{"Asia/Kolkata", "America/St_Johns"} {
		t.Run(zone, func(t *testing.T) {
			pool := poolInZone(t, zone)
			// In Kolkata this instant is already 1 February; the month is still January in UTC.
			from := time.Date(2030, 1, 31, 23, 59, 59, 0, time.UTC)

			report, err := cron.EnsurePartitions(ctx, pool, from, 0)
			if err != nil {
				t.Fatal(err)
			}
			if report.Created != 1 {
				t.Errorf("created %d partitions, want 1", report.Created)
			}
			if _, ok := partitionBounds(t, pool, "jobs_2030_01"); !ok {
				t.Error("partition jobs_2030_01 missing")
			}
			if _, ok := partitionBounds(t, pool, "jobs_2030_02"); ok {
				t.Error("partition jobs_2030_02 created, want only January")
			}
			if report.RunwayMonths != 1 {
				t.Errorf("runway %d months, want 1", report.RunwayMonths)
			}
		})
	}
}

func TestPartitionRunwayDefault(t *testing.T) {
	pool := pgtest.NewPool(t)
	now := time.Now()

	report, err := cron.EnsurePartitions(context.Background(), pool, now, cron.DefaultMonthsAhead)
	if err != nil {
		t.Fatal(err)
	}
	// The migration already made the current month and three ahead.
	if report.Created != 0 {
		t.Errorf("created %d partitions, want 0", report.Created)
	}
	if report.RunwayMonths != cron.DefaultMonthsAhead+1 {
		t.Errorf("runway %d months, want %d", report.RunwayMonths, cron.DefaultMonthsAhead+1)
	}
}

func TestPartitionsRejectBadMonths(t *testing.T) {
	pool := pgtest.NewPool(t)
	if _, err := cron.EnsurePartitions(context.Background(), pool, time.Now(), -1); err == nil {
		t.Error("months ahead -1 accepted, want an error")
	}
}
