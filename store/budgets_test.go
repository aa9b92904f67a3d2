package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

func date(year int, month time.Month, day int) time.Time {
	return time.Date(year, month, day, 0, 0, 0, 0, time.UTC)
}

func TestNextPeriod(t *testing.T) {
	cases := []struct {
		name               string
		start, end, day    time.Time
		wantStart, wantEnd time.Time
	}{
		{"month, renewed on its end", date(2026, 11, 1), date(2026, 12, 1), date(2026, 12, 1),
			date(2026, 12, 1), date(2027, 1, 1)},
		{"month, months later", date(2026, 11, 1), date(2026, 12, 1), date(2027, 3, 15),
			date(2027, 3, 1), date(2027, 4, 1)},
		{"month into February", date(2028, 1, 1), date(2028, 2, 1), date(2028, 2, 29),
			date(2028, 2, 1), date(2028, 3, 1)},
		{"quarter", date(2026, 10, 1), date(2027, 1, 1), date(2027, 5, 31),
			date(2027, 4, 1), date(2027, 7, 1)},
		{"year", date(2026, 1, 1), date(2027, 1, 1), date(2027, 1, 2),
			date(2027, 1, 1), date(2028, 1, 1)},
		{"week", date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 7),
			date(2026, 12, 7), date(2026, 12, 14)},
		{"week, three weeks later", date(2026, 11, 30), date(2026, 12, 7), date(2026, 12, 29),
			date(2026, 12, 28), date(2027, 1, 4)},
		{"mid-month to mid-month", date(2026, 11, 15), date(2026, 12, 15), date(2026, 12, 20),
			date(2026, 12, 15), date(2027, 1, 15)},
		{"mid-month, renewed before the next day 15", date(2026, 11, 15), date(2026, 12, 15), date(2027, 2, 14),
			date(2027, 1, 15), date(2027, 2, 15)},
		{"one day in year 1", date(1, 1, 1), date(1, 1, 2), date(2026, 12, 5),
			date(2026, 12, 5), date(2026, 12, 6)},
		{"three centuries", date(1700, 1, 2), date(2000, 1, 1), date(2026, 12, 5),
			date(2000, 1, 1), date(2299, 12, 30)},
		{"30 days from the 31st steps by days", date(2026, 12, 31), date(2027, 1, 30), date(2027, 1, 30),
			date(2027, 1, 30), date(2027, 3, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			start, end := store.NextPeriod(c.start, c.end, c.day)
			if !start.Equal(c.wantStart) {
				t.Errorf("start %s, want %s", start.Format(time.DateOnly), c.wantStart.Format(time.DateOnly))
			}
			if !end.Equal(c.wantEnd) {
				t.Errorf("end %s, want %s", end.Format(time.DateOnly), c.wantEnd.Format(time.DateOnly))
			}
		})
	}
}

func TestRenewBudgets(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	s := setupAt(t, now)
	ctx := context.Background()
	if _, err := s.UpsertProject(ctx, store.Project{ID: "audio", OrgID: "acme", K8sNamespace: "team-audio"}); err != nil {
		t.Fatal(err)
	}
	ended := store.Quota{ProjectID: "audio", GPUHoursBudget: 10, MaxConcurrentJobs: 4, PriorityTier: 5,
		PeriodStart: date(2026, 11, 1), PeriodEnd: date(2026, 12, 1)}
	if _, err := s.UpsertQuota(ctx, ended); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = 6.5, gpu_hours_reserved = 2,
		current_concurrent = 1 WHERE project_id = 'audio'`)
	if err != nil {
		t.Fatal(err)
	}

	renewals, err := s.RenewBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewals) != 1 {
		t.Fatalf("%d renewals, want 1 (audio; vision's period runs to 2100)", len(renewals))
	}
	r := renewals[0]
	if r.ProjectID != "audio" {
		t.Errorf("renewed %s, want audio", r.ProjectID)
	}
	if r.UsedBefore != 6.5 {
		t.Errorf("%v GPU-hours used before, want 6.5", r.UsedBefore)
	}
	if !r.NewStart.Equal(date(2026, 12, 1)) {
		t.Errorf("new period starts %s, want 2026-12-01", r.NewStart.Format(time.DateOnly))
	}
	if !r.NewEnd.Equal(date(2027, 1, 1)) {
		t.Errorf("new period ends %s, want 2027-01-01", r.NewEnd.Format(time.DateOnly))
	}

	quota, err := s.GetQuota(ctx, "audio")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursUsed != 0 {
		t.Errorf("used %v, want 0 in the new period", quota.GPUHoursUsed)
	}
	if quota.GPUHoursReserved != 2 {
		t.Errorf("reserved %v, want the live run's 2 kept", quota.GPUHoursReserved)
	}
	if quota.CurrentConcurrent != 1 {
		t.Errorf("%d running, want the live run's 1 kept", quota.CurrentConcurrent)
	}
	if !quota.PeriodStart.Equal(date(2026, 12, 1)) {
		t.Errorf("stored period starts %s, want 2026-12-01", quota.PeriodStart.Format(time.DateOnly))
	}
	if !quota.PeriodEnd.Equal(date(2027, 1, 1)) {
		t.Errorf("stored period ends %s, want 2027-01-01", quota.PeriodEnd.Format(time.DateOnly))
	}

	again, err := s.RenewBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second run renewed %d budgets, want 0: the new period has not ended", len(again))
	}
}

// RemainingBudget, which plans HPO trials, counts an ended period as renewed.
func TestRemainingBudgetAfterPeriodEnd(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = 7, gpu_hours_reserved = 2
		WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}
	remaining, err := s.RemainingBudget(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if remaining != 1 {
		t.Errorf("remaining %v GPU-hours in the current period, want 10 - 7 used - 2 reserved = 1", remaining)
	}

	today := time.Now().UTC().Truncate(24 * time.Hour)
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = $1, period_end = $2
		WHERE project_id = 'vision'`, today.AddDate(0, -1, 0), today); err != nil {
		t.Fatal(err)
	}
	remaining, err = s.RemainingBudget(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if remaining != 8 {
		t.Errorf("remaining %v GPU-hours after the period ended, want 10 - 2 reserved = 8", remaining)
	}
}

// RenewBudgets skips a quota that another transaction holds locked instead of waiting for
// it, and renews it on a later call.
func TestRenewBudgetsSkipsLockedQuota(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = $1, period_end = $2
		WHERE project_id = 'vision'`, today.AddDate(0, 0, -30), today); err != nil {
		t.Fatal(err)
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM quotas WHERE project_id = 'vision' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	renewals, err := s.RenewBudgets(callCtx)
	if err != nil {
		t.Fatalf("renew while the quota is locked: %v, want no wait and no error", err)
	}
	if len(renewals) != 0 {
		t.Errorf("%d renewals while the quota is locked, want 0", len(renewals))
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	renewals, err = s.RenewBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewals) != 1 {
		t.Errorf("%d renewals after the lock ended, want 1", len(renewals))
	}
}

// TestRenewBudgetsChargesRunningRuns: a run that spans the end of a budget period is charged
// its hours up to that end in the old period, and only the rest in the new one.
func TestRenewBudgetsChargesRunningRuns(t *testing.T) {
	s := setupAt(t, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	ctx := context.Background()
	a := admitOne(t, s, 2000, 3) // 2 GPUs for at most an hour: 2 GPU-hours reserved
	start := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	if err := s.StartRun(ctx, a.RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = '2026-11-01', period_end = '2026-12-01'
		WHERE project_id = 'vision'`)
	if err != nil {
		t.Fatal(err)
	}
	renewWhileRunLocked(t, s, a.RunID)

	renewals, err := s.RenewBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewals) != 1 {
		t.Fatalf("%d renewals, want 1", len(renewals))
	}
	// 2 GPUs for the 30 minutes before midnight.
	if got := renewals[0].ChargedLiveRuns; got != 1 {
		t.Errorf("charged %v GPU-hours to the running run, want 1", got)
	}
	if got := renewals[0].UsedBefore; got != 1 {
		t.Errorf("old period used %v GPU-hours, want the running run's 1", got)
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursReserved != 1 || quota.GPUHoursUsed != 0 {
		t.Errorf("new period reserves %v and used %v GPU-hours, want 1 (2 less the 1 charged) and 0",
			quota.GPUHoursReserved, quota.GPUHoursUsed)
	}

	// The run ends 15 minutes into the new period: 1.5 GPU-hours in all, 0.5 of them new.
	result, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted,
		EndedAt: start.Add(45 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if result.GPUHoursUsed != 1.5 {
		t.Errorf("run used %v GPU-hours, want 1.5", result.GPUHoursUsed)
	}
	quota, err = s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursUsed != 0.5 {
		t.Errorf("new period used %v GPU-hours, want 0.5", quota.GPUHoursUsed)
	}
	if quota.GPUHoursReserved != 0 || quota.CurrentConcurrent != 0 {
		t.Errorf("new period reserves %v GPU-hours and %d slots after the end, want 0 and 0",
			quota.GPUHoursReserved, quota.CurrentConcurrent)
	}
}

// renewWhileRunLocked checks that RenewBudgets leaves the quota alone, without waiting, while
// another transaction holds the row of run, as the recording of its end does.
func renewWhileRunLocked(t *testing.T, s *store.Store, run uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT 1 FROM runs WHERE id = $1 FOR UPDATE`, run); err != nil {
		t.Fatal(err)
	}

	callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	renewals, err := s.RenewBudgets(callCtx)
	if err != nil {
		t.Fatalf("renew while a running run is locked: %v, want no wait and no error", err)
	}
	if len(renewals) != 0 {
		t.Errorf("%d renewals while a running run is locked, want 0", len(renewals))
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if !quota.PeriodEnd.Equal(date(2026, 12, 1)) || quota.GPUHoursReserved != 2 {
		t.Errorf("quota ends %s and reserves %v GPU-hours while a run is locked, want 2026-12-01 and 2",
			quota.PeriodEnd.Format(time.DateOnly), quota.GPUHoursReserved)
	}
}

// TestLateRenewalChargesSkippedPeriods: a renewal that comes more than a period late charges
// a running run its hours up to the new period's start, so the new period pays for none of
// the skipped one.
func TestLateRenewalChargesSkippedPeriods(t *testing.T) {
	s := setupAt(t, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	ctx := context.Background()
	a := admitOne(t, s, 2000, 3) // 2 GPUs for at most an hour: 2 GPU-hours reserved
	if err := s.StartRun(ctx, a.RunID, time.Date(2026, 10, 31, 23, 30, 0, 0, time.UTC), "node-1"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pool().Exec(ctx, `UPDATE quotas SET period_start = '2026-10-01', period_end = '2026-11-01'
		WHERE project_id = 'vision'`)
	if err != nil {
		t.Fatal(err)
	}

	renewals, err := s.RenewBudgets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewals) != 1 || !renewals[0].NewStart.Equal(date(2026, 12, 1)) {
		t.Fatalf("renewals %+v, want one to the period from 2026-12-01", renewals)
	}
	// Up to 2026-12-01 the run could use its whole reservation; up to the old period's end
	// only 1 GPU-hour.
	if got := renewals[0].ChargedLiveRuns; got != 2 {
		t.Errorf("charged %v GPU-hours to the running run, want its whole reservation of 2", got)
	}
	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	if quota.GPUHoursReserved != 0 {
		t.Errorf("new period reserves %v GPU-hours, want 0", quota.GPUHoursReserved)
	}
}
