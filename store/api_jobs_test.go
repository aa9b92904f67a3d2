package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// Jobs that share a created_at (ids carry milliseconds) still page exactly once each,
// because the keyset is (created_at, id).
func TestListJobsPagesThroughTies(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	at := time.Now().UTC().Truncate(time.Millisecond)
	var want []uuid.UUID
	for i := range 5 {
		id := uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012d", 5-i))
		_, err := s.Pool().Exec(ctx, `INSERT INTO jobs (id, created_at, project_id, org_id, job_type, config_json,
			max_runtime_seconds) VALUES ($1, $2, 'vision', 'acme', 'fine_tune', '{}', 60)`, id, at)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}

	var got []uuid.UUID
	filter := store.JobFilter{Projects: []string{"vision"}, Limit: 2}
	for {
		page, err := s.ListJobs(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			got = append(got, j.ID)
		}
		if len(page) < filter.Limit {
			break
		}
		last := page[len(page)-1].Ref()
		filter.After = &last
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pages gave %v, want %v (id descending)", got, want)
	}
}

func TestSetJobStatusGuards(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobPaused, store.JobQueued, now, nil); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("move from a status the job is not in: %v, want ErrStaleStatus", err)
	}
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobCompleted, now, nil); !errors.Is(err, store.ErrIllegalTransition) {
		t.Errorf("queued to completed: %v, want ErrIllegalTransition", err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE jobs SET wait_reason = 'concurrency limit reached'`); err != nil {
		t.Fatal(err)
	}
	paused, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobPaused, now, nil)
	if err != nil || paused.Status != store.JobPaused {
		t.Fatalf("pause: %v, status %s", err, paused.Status)
	}
	if paused.WaitReason != nil {
		t.Errorf("paused job keeps the wait reason %q of the queue, want none", *paused.WaitReason)
	}
	if n := countRows(t, s, `SELECT count(*) FROM job_queue`); n != 0 {
		t.Errorf("%d job_queue rows after the pause, want 0", n)
	}
}

func TestSetQuotaKeepsUsage(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	if _, err := s.DebitBudget(ctx, "vision", 4); err != nil {
		t.Fatal(err)
	}
	q := store.Quota{ProjectID: "vision", GPUHoursBudget: 3, MaxConcurrentJobs: 4, PriorityTier: 5,
		PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}

	_, err := s.SetQuota(ctx, q, nil)
	var conflict *store.QuotaConflictError
	if !errors.As(err, &conflict) || conflict.Field != "gpu_hours_budget" || conflict.InUse != 4 {
		t.Errorf("budget below use: %v, want a conflict on gpu_hours_budget with 4 in use", err)
	}

	q.GPUHoursBudget = 20
	got, err := s.SetQuota(ctx, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.GPUHoursUsed != 4 || got.GPUHoursLeft() != 16 {
		t.Errorf("quota %+v, want 4 used and 16 left", got)
	}
}

func countRows(t *testing.T, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
