package accounting

import (
	"context"
	"log/slog"
	"time"

	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/store"
)

// DefaultBudgetSchedule renews budgets hourly at minute 5, so that a period ending at
// midnight UTC renews within the hour.
const DefaultBudgetSchedule = "5 * * * *"

// BudgetTask returns the cron task that starts a new budget period for each quota whose
// period has ended by the database's date (store.RenewBudgets), on schedule
// (DefaultBudgetSchedule when empty).
func BudgetTask(s *store.Store, schedule string, log *slog.Logger) cron.Task {
	if schedule == "" {
		schedule = DefaultBudgetSchedule
	}
	return cron.Task{
		Name:     "budgets",
		Schedule: schedule,
		Timeout:  time.Minute,
		Run: func(ctx context.Context, _ time.Time) error {
			_, err := RenewBudgets(ctx, s, log)
			return err
		},
	}
}

// RenewBudgets renews the budgets whose period has ended and logs one line per project.
func RenewBudgets(ctx context.Context, s *store.Store, log *slog.Logger) ([]store.BudgetRenewal, error) {
	renewals, err := s.RenewBudgets(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range renewals {
		log.Info("budget renewed", "project", r.ProjectID,
			"old_period_start", r.OldStart.Format(time.DateOnly), "old_period_end", r.OldEnd.Format(time.DateOnly),
			"period_start", r.NewStart.Format(time.DateOnly), "period_end", r.NewEnd.Format(time.DateOnly),
			"gpu_hours_used_before", r.UsedBefore, "gpu_hours_charged_running", r.ChargedLiveRuns)
	}
	return renewals, nil
}
