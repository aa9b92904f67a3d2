package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// A change made while another transaction renews the period waits for it and keeps the
// renewed period: only the budget it names changes.
func TestChangeQuotaKeepsConcurrentRenewal(t *testing.T) {
	s := setup(t)
	budget := 25.0
	var changed store.QuotaState
	err := waitsForCommit(t, s, `UPDATE quotas SET period_start = '2027-01-01', period_end = '2027-02-01'
		WHERE project_id = 'vision'`, func() (err error) {
		changed, err = s.ChangeQuota(context.Background(), "vision", store.QuotaChange{GPUHoursBudget: &budget}, nil)
		return err
	})

	if err != nil {
		t.Fatal(err)
	}
	if changed.GPUHoursBudget != 25 {
		t.Errorf("budget %v, want 25", changed.GPUHoursBudget)
	}
	if got := changed.PeriodStart.Format(time.DateOnly); got != "2027-01-01" {
		t.Errorf("period starts %s, want the renewed 2027-01-01", got)
	}
	if got := changed.PeriodEnd.Format(time.DateOnly); got != "2027-02-01" {
		t.Errorf("period ends %s, want the renewed 2027-02-01", got)
	}
}

func TestChangeQuotaErrors(t *testing.T) {
	s := setup(t)
	ctx := context.Background()

	end := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.ChangeQuota(ctx, "vision", store.QuotaChange{PeriodEnd: &end}, nil)
	if !errors.Is(err, store.ErrPeriodOrder) {
		t.Errorf("end before the kept start: %v, want ErrPeriodOrder", err)
	}
	tier := 5
	_, err = s.ChangeQuota(ctx, "nobody", store.QuotaChange{PriorityTier: &tier}, nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("project without a quota: %v, want ErrNotFound", err)
	}
}

// Two first quotas of a project set at once: the second waits for the first and audits
// the first one's values as its before image, instead of a second creation.
func TestSetQuotaConcurrentCreation(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if _, err := s.UpsertProject(ctx, store.Project{ID: "speech", OrgID: "acme", K8sNamespace: "speech"}); err != nil {
		t.Fatal(err)
	}
	quota := store.Quota{ProjectID: "speech", GPUHoursBudget: 20, MaxConcurrentJobs: 2, PriorityTier: 5,
		PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	audit := &store.Audit{Actor: store.Actor{Name: "ada", Role: store.RoleAdmin}, Action: "quota.set", At: time.Now()}

	// The first admin's SetQuota, as far as its insert, in a transaction of its own.
	first := `SELECT 1 FROM projects WHERE id = 'speech' FOR NO KEY UPDATE;
		INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, priority_tier, period_start, period_end)
		VALUES ('speech', 10, 1, 5, '2026-01-01', '2100-01-01')`
	err := waitsForCommit(t, s, first, func() error {
		_, err := s.SetQuota(ctx, quota, audit)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	var before *string
	if err := s.Pool().QueryRow(ctx, `SELECT before_json->>'gpu_hours_budget' FROM audit_log
		WHERE action = 'quota.set' AND project_id = 'speech'`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	if before == nil || *before != "10" {
		t.Errorf("audited budget before the second SetQuota %v, want the first one's 10", before)
	}
}

// GPUHoursLeft has the quota columns' 4 decimals, without float64 noise.
func TestGPUHoursLeftDecimals(t *testing.T) {
	q := store.QuotaState{Quota: store.Quota{GPUHoursBudget: 1214, GPUHoursUsed: 913.0651, GPUHoursReserved: 54.7032}}
	if got := q.GPUHoursLeft(); got != 246.2317 {
		t.Errorf("GPUHoursLeft = %v, want 246.2317", got)
	}
}

// TestQuotaChangesWakeScheduler: an undrain, a quota change and a quota replacement each
// notify the scheduler's channel, so the jobs they free start without waiting for a poll.
func TestQuotaChangesWakeScheduler(t *testing.T) {
	pool := pgtest.NewPool(t)
	s := withVision(t, store.New(pool))
	ctx := context.Background()
	if _, err := s.DrainQueue(ctx, "vision", time.Now(), nil, nil); err != nil {
		t.Fatal(err)
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+store.QueueChannel); err != nil {
		t.Fatal(err)
	}
	// The notification is sent at the commit that returned, so the bound only keeps a
	// missing one from hanging the test.
	expectWake := func(step string) {
		t.Helper()
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := conn.Conn().WaitForNotification(waitCtx); err != nil {
			t.Errorf("%s: no notification on %s: %v", step, store.QueueChannel, err)
		}
	}

	if _, _, err := s.UndrainQueue(ctx, "vision", nil); err != nil {
		t.Fatal(err)
	}
	expectWake("undrain")

	budget := 20.0
	if _, err := s.ChangeQuota(ctx, "vision", store.QuotaChange{GPUHoursBudget: &budget}, nil); err != nil {
		t.Fatal(err)
	}
	expectWake("quota change")

	quota, err := s.GetQuota(ctx, "vision")
	if err != nil {
		t.Fatal(err)
	}
	quota.MaxConcurrentJobs = 8
	if _, err := s.SetQuota(ctx, quota, nil); err != nil {
		t.Fatal(err)
	}
	expectWake("quota replacement")
}
