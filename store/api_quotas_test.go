package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

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
