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

// MaxMonthsAhead is the largest months-ahead value that ensure_job_partitions accepts.
const MaxMonthsAhead = 120

// DefaultPartitionSchedule runs the partition task daily at 02:17 UTC, away from the hour
// marks where other jobs cluster.
const DefaultPartitionSchedule = "17 2 * * *"

// PartitionReport is the outcome of one partition run and the reach of the partitions.
type PartitionReport struct {
	Created int // partitions this run created
	// LastBound is where the jobs partitions that cover now without a gap end, in UTC. It
	// is zero when no partition covers now. A partition beyond a gap does not count, since
	// submissions in the gap are rejected.
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

	last, err := coveredUntil(ctx, pool, now)
	if err != nil {
		return PartitionReport{}, err
	}
	if last.IsZero() {
		return report, nil
	}
	report.LastBound = last
	report.RunwayMonths = monthIndex(last) - monthIndex(now)
	return report, nil
}

// coveredUntil returns where the jobs partitions that cover now without a gap end, in
// UTC, or zero when no partition covers now (job_partitions_covered_until, migration 19).
func coveredUntil(ctx context.Context, pool *pgxpool.Pool, now time.Time) (time.Time, error) {
	var last *time.Time
	if err := pool.QueryRow(ctx, "SELECT job_partitions_covered_until($1)", now).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("read where the jobs partitions from %s end: %w", now.UTC().Format(time.RFC3339), err)
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
