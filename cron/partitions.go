package cron

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultMonthsAhead is how many months after the current one the partition task keeps
// jobs partitions for.
const DefaultMonthsAhead = 3

// DefaultPartitionSchedule runs the partition task daily at 02:17 UTC, away from the hour
// marks where other jobs cluster.
const DefaultPartitionSchedule = "17 2 * * *"

// PartitionReport is the outcome of one partition run and the reach of the partitions.
type PartitionReport struct {
	Created int // partitions this run created
	// LastBound is the upper bound (exclusive) of the latest jobs partition, in UTC.
	LastBound time.Time
	// RunwayMonths is LastBound's month minus the current UTC month: 4 means the partitions
	// cover the current month and the three after it. A job submitted in a month without
	// a partition is rejected, so alert well before this reaches 1.
	RunwayMonths int
}

// EnsurePartitions creates the jobs partitions for the month of now and the monthsAhead
// months after it, through the SQL function ensure_job_partitions that the migration also
// uses, and measures the runway. Month bounds are UTC whatever the session's TimeZone.
func EnsurePartitions(ctx context.Context, pool *pgxpool.Pool, now time.Time, monthsAhead int) (PartitionReport, error) {
	var report PartitionReport
	err := pool.QueryRow(ctx, "SELECT ensure_job_partitions($1, $2)", now, monthsAhead).Scan(&report.Created)
	if err != nil {
		return PartitionReport{}, fmt.Errorf("create jobs partitions from %s, %d months ahead: %w",
			now.UTC().Format("2006-01"), monthsAhead, err)
	}

	last, err := lastPartitionBound(ctx, pool)
	if err != nil {
		return PartitionReport{}, err
	}
	report.LastBound = last
	report.RunwayMonths = monthIndex(last) - monthIndex(now)
	return report, nil
}

// lastPartitionBoundSQL reads the upper bounds of jobs' partitions from the catalog. The
// bound text carries an explicit offset ('2027-02-01 05:30:00+05:30' in a session in
// Asia/Kolkata), so the cast back to timestamptz is the same instant in every zone.
const lastPartitionBoundSQL = `
SELECT max((regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz)
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'jobs'::regclass`

func lastPartitionBound(ctx context.Context, pool *pgxpool.Pool) (time.Time, error) {
	var last *time.Time
	if err := pool.QueryRow(ctx, lastPartitionBoundSQL).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("read the upper bound of the last jobs partition: %w", err)
	}
	if last == nil {
		return time.Time{}, nil
	}
	return last.UTC(), nil
}

// monthIndex numbers UTC months consecutively, so that differences count months.
func monthIndex(t time.Time) int {
	u := t.UTC()
	return u.Year()*12 + int(u.Month()) - 1
}

// PartitionTask returns the cron task that keeps jobs partitions monthsAhead months ahead
// of each firing's time, on schedule (DefaultPartitionSchedule when empty).
func PartitionTask(pool *pgxpool.Pool, schedule string, monthsAhead int, log *slog.Logger) Task {
	if schedule == "" {
		schedule = DefaultPartitionSchedule
	}
	return Task{
		Name:     "partitions",
		Schedule: schedule,
		Timeout:  2 * time.Minute,
		Run: func(ctx context.Context, scheduledAt time.Time) error {
			report, err := EnsurePartitions(ctx, pool, scheduledAt, monthsAhead)
			if err != nil {
				return err
			}
			log.Info("jobs partitions ensured", "created", report.Created,
				"last_bound", report.LastBound, "runway_months", report.RunwayMonths)
			return nil
		},
	}
}
