package cron

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Outcome is the result of one task run.
type Outcome struct {
	Task        string
	ScheduledAt time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	Err         error
}

// Status is a task's row in cron_task_status.
type Status struct {
	Task                string
	LastScheduledAt     time.Time // firing time of the latest finished run
	LastStartedAt       time.Time
	LastFinishedAt      time.Time
	LastSuccessAt       time.Time // zero until a run succeeds
	LastDuration        time.Duration
	LastError           string // message of the latest failure, kept after later successes
	LastErrorAt         time.Time
	ConsecutiveFailures int // failed runs since the last success
	FailuresTotal       int64
}

// statusWriter writes run outcomes to cron_task_status.
type statusWriter struct {
	pool *pgxpool.Pool
}

// The run's fields always overwrite; last_success_at only moves forward, so a slow older
// run that succeeds late cannot hide a newer success.
const recordSuccessSQL = `
INSERT INTO cron_task_status AS s (task, last_scheduled_at, last_started_at, last_finished_at,
    last_success_at, last_duration_seconds)
VALUES ($1, $2, $3, $4, $4, $5)
ON CONFLICT (task) DO UPDATE SET
    last_scheduled_at = EXCLUDED.last_scheduled_at,
    last_started_at = EXCLUDED.last_started_at,
    last_finished_at = EXCLUDED.last_finished_at,
    last_success_at = GREATEST(s.last_success_at, EXCLUDED.last_success_at),
    last_duration_seconds = EXCLUDED.last_duration_seconds,
    consecutive_failures = 0`

const recordFailureSQL = `
INSERT INTO cron_task_status AS s (task, last_scheduled_at, last_started_at, last_finished_at,
    last_duration_seconds, last_error, last_error_at, consecutive_failures, failures_total)
VALUES ($1, $2, $3, $4, $5, $6, $4, 1, 1)
ON CONFLICT (task) DO UPDATE SET
    last_scheduled_at = EXCLUDED.last_scheduled_at,
    last_started_at = EXCLUDED.last_started_at,
    last_finished_at = EXCLUDED.last_finished_at,
    last_duration_seconds = EXCLUDED.last_duration_seconds,
    last_error = EXCLUDED.last_error,
    last_error_at = EXCLUDED.last_error_at,
    consecutive_failures = s.consecutive_failures + 1,
    failures_total = s.failures_total + 1`

func (w *statusWriter) record(ctx context.Context, o Outcome) error {
	seconds := o.FinishedAt.Sub(o.StartedAt).Seconds()
	var err error
	if o.Err == nil {
		_, err = w.pool.Exec(ctx, recordSuccessSQL, o.Task, o.ScheduledAt, o.StartedAt, o.FinishedAt, seconds)
	} else {
		_, err = w.pool.Exec(ctx, recordFailureSQL, o.Task, o.ScheduledAt, o.StartedAt, o.FinishedAt, seconds, o.Err.Error())
	}
	if err != nil {
		return fmt.Errorf("record outcome of cron task %s in cron_task_status: %w", o.Task, err)
	}
	return nil
}

// ReadStatus returns the status row of task. ok is false when the task never finished a run.
func ReadStatus(ctx context.Context, pool *pgxpool.Pool, task string) (status Status, ok bool, err error) {
	var (
		scheduled, started, finished, success, errorAt *time.Time
		seconds                                        *float64
		lastError                                      *string
	)
	err = pool.QueryRow(ctx, `
		SELECT task, last_scheduled_at, last_started_at, last_finished_at, last_success_at,
		       last_duration_seconds, last_error, last_error_at, consecutive_failures, failures_total
		FROM cron_task_status WHERE task = $1`, task).Scan(
		&status.Task, &scheduled, &started, &finished, &success,
		&seconds, &lastError, &errorAt, &status.ConsecutiveFailures, &status.FailuresTotal)
	if errors.Is(err, pgx.ErrNoRows) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, fmt.Errorf("read status of cron task %s: %w", task, err)
	}

	status.LastScheduledAt = valueOrZero(scheduled)
	status.LastStartedAt = valueOrZero(started)
	status.LastFinishedAt = valueOrZero(finished)
	status.LastSuccessAt = valueOrZero(success)
	status.LastErrorAt = valueOrZero(errorAt)
	status.LastError = valueOrZero(lastError)
	status.LastDuration = time.Duration(valueOrZero(seconds) * float64(time.Second))
	return status, true, nil
}

func valueOrZero[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
