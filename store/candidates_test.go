package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// budgetQueue sets vision's quota to 2 of 10 GPU-hours used and 5 reserved, so 3 are
// left. It queues three A10 jobs: one of 2 GPU-hours, one of 6, which fits only the budget
// minus the used hours, and one of 9, which fits not even that. The two larger ones have
// waited two hours.
func budgetQueue(t *testing.T, s *store.Store) (fits, waits, tooLarge store.Job) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET gpu_hours_used = 2, gpu_hours_reserved = 5
		WHERE project_id = 'vision'`); err != nil {
		t.Fatal(err)
	}
	submit := func(gpuMilli, seconds int) store.Job {
		sub := submission("")
		sub.GPUMilli, sub.MaxRuntimeSeconds = gpuMilli, seconds
		job, err := s.SubmitJob(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		return job
	}
	fits, waits, tooLarge = submit(2000, 3600), submit(6000, 3600), submit(2000, 4*3600+1800)
	_, err := s.Pool().Exec(ctx, `UPDATE job_queue SET queued_at = now() - interval '2 hours'
		WHERE job_id = ANY($1)`, []uuid.UUID{waits.ID, tooLarge.ID})
	if err != nil {
		t.Fatal(err)
	}
	return fits, waits, tooLarge
}

// candidateIDs runs a dequeue of window that admits nothing and returns the ids of the
// candidates it read.
func candidateIDs(t *testing.T, s *store.Store, window store.CandidateWindow) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	_, err := s.Dequeue(context.Background(), window, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		for _, c := range snap.Candidates {
			ids = append(ids, c.JobID)
		}
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// The candidate read keeps a job that exceeds what is left of its project's budget once
// it has waited the starvation bound, if it fits the budget minus the used hours and the
// hours that the window's held share takes. A held share counts as admitted for every job
// of its project.
func TestCandidatesKeepStarvingBudgetJob(t *testing.T) {
	s := setup(t)
	fits, waits, _ := budgetQueue(t, s)

	cases := []struct {
		name   string
		window store.CandidateWindow
		want   []uuid.UUID
	}{
		{"no bound", store.CandidateWindow{Limit: 10}, []uuid.UUID{fits.ID}},
		{"before the bound", store.CandidateWindow{Limit: 10, StarvationBound: 3 * time.Hour}, []uuid.UUID{fits.ID}},
		{"past the bound", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour}, []uuid.UUID{fits.ID, waits.ID}},
		{"past the bound with room", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour, OnlyWithRoom: true},
			[]uuid.UUID{fits.ID, waits.ID}},
		{"1 GPU-hour held", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour,
			Held: map[string]store.QuotaShare{"vision": {Jobs: 1, GPUHours: 1}}}, []uuid.UUID{fits.ID, waits.ID}},
		{"2 GPU-hours held", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour,
			Held: map[string]store.QuotaShare{"vision": {Jobs: 1, GPUHours: 2}}}, []uuid.UUID{waits.ID}},
		{"3 GPU-hours held", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour,
			Held: map[string]store.QuotaShare{"vision": {Jobs: 1, GPUHours: 3}}}, nil},
		{"every slot held", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour,
			Held: map[string]store.QuotaShare{"vision": {Jobs: 4}}}, nil},
		{"another project held", store.CandidateWindow{Limit: 10, StarvationBound: time.Hour,
			Held: map[string]store.QuotaShare{"speech": {Jobs: 4, GPUHours: 10}}}, []uuid.UUID{fits.ID, waits.ID}},
	}
	if err := s.SyncGPUCapacity(context.Background(),
		[]store.ModelCapacity{{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := candidateIDs(t, s, c.window); !slices.Equal(got, c.want) {
				t.Errorf("candidates %v, want %v", got, c.want)
			}
		})
	}
}

// ExplainWaits gives a job larger than the budget minus the used hours the reason for
// that, and one that only exceeds what is left the budget reason. A starving job of the
// second kind keeps the reason the dequeue gave it, since it stays a candidate.
func TestExplainWaitsBudgetReasons(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	_, waits, tooLarge := budgetQueue(t, s)
	reasons := store.WaitReasons{Budget: "budget", BudgetTooSmall: "too small", StarvationBound: 3 * time.Hour}

	if _, err := s.ExplainWaits(ctx, reasons); err != nil {
		t.Fatal(err)
	}
	if got := waitReasonOf(t, s, waits); got != "budget" {
		t.Errorf("6 GPU-hour job before the bound waits for %q, want %q", got, "budget")
	}
	if got := waitReasonOf(t, s, tooLarge); got != "too small" {
		t.Errorf("9 GPU-hour job waits for %q, want %q", got, "too small")
	}

	reasons.Budget, reasons.StarvationBound = "budget, again", time.Hour
	if _, err := s.ExplainWaits(ctx, reasons); err != nil {
		t.Fatal(err)
	}
	if got := waitReasonOf(t, s, waits); got != "budget" {
		t.Errorf("6 GPU-hour job past the bound waits for %q, want the %q it had", got, "budget")
	}
	if got := waitReasonOf(t, s, tooLarge); got != "too small" {
		t.Errorf("9 GPU-hour job past the bound waits for %q, want %q", got, "too small")
	}
}

func waitReasonOf(t *testing.T, s *store.Store, job store.Job) string {
	t.Helper()
	got, err := s.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.WaitReason == nil {
		return ""
	}
	return *got.WaitReason
}
