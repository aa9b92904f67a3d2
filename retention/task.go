package retention

import (
	"context"
	"time"

	"github.com/schedulerd/schedulerd/cron"
)

// DefaultSchedule runs retention daily at 03:40 UTC.
const DefaultSchedule = "40 3 * * *"

// Task returns the cron task that runs retention on schedule (DefaultSchedule when empty).
// Each run uses its firing time as now, so a retry keeps what the first attempt kept.
func (r *Retainer) Task(schedule string) cron.Task {
	if schedule == "" {
		schedule = DefaultSchedule
	}
	return cron.Task{
		Name:     "retention",
		Schedule: schedule,
		Timeout:  time.Hour,
		Run: func(ctx context.Context, scheduledAt time.Time) error {
			_, err := r.Run(ctx, scheduledAt, false)
			return err
		},
	}
}
