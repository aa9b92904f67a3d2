package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

func TestGetRunReadsDrainDeadline(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 1)

	run, err := s.GetRun(ctx, a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.DrainDeadline != nil {
		t.Errorf("drain deadline %v on an undrained queue, want none", run.DrainDeadline)
	}

	deadline := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	if _, err := s.Pool().Exec(ctx, `UPDATE quotas SET drained_at = now(), drain_deadline = $1
		WHERE project_id = 'vision'`, deadline); err != nil {
		t.Fatal(err)
	}
	if run, err = s.GetRun(ctx, a.RunID); err != nil {
		t.Fatal(err)
	}
	if run.DrainDeadline == nil || !run.DrainDeadline.Equal(deadline) {
		t.Errorf("drain deadline %v, want %v", run.DrainDeadline, deadline)
	}
}

func TestMarkPodsCreatedOnlyPendingRuns(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	pending := admitOne(t, s, 1000, 1)
	started := admitOne(t, s, 1000, 1)
	if err := s.StartRun(ctx, started.RunID, time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), "node-1"); err != nil {
		t.Fatal(err)
	}

	if err := s.MarkPodsCreated(ctx, []uuid.UUID{pending.RunID, started.RunID}); err != nil {
		t.Fatal(err)
	}
	run, err := s.GetRun(ctx, pending.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.PodCreatedAt == nil {
		t.Error("pending run has no pod_created_at after MarkPodsCreated")
	}
	run, err = s.GetRun(ctx, started.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.PodCreatedAt == nil || !run.PodCreatedAt.Equal(*run.StartedAt) {
		t.Errorf("running run's pod_created_at %v, want its start %v, left as StartRun set it",
			run.PodCreatedAt, run.StartedAt)
	}
}

func TestListLiveRunIDs(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	live := admitOne(t, s, 1000, 1)
	ended := admitOne(t, s, 1000, 1)
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: ended.RunID, Status: store.RunCancelled,
		EndedAt: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}

	ids, err := s.ListLiveRunIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != live.RunID {
		t.Errorf("live run ids %v, want only %v", ids, live.RunID)
	}
}

// GetRuns reads each existing run of its ids once, with the fields GetRun reads, and leaves
// out ids that name no run; GetRun reports such an id as not found.
func TestGetRunsReadsExistingRuns(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	small := admitOne(t, s, 500, 1)
	large := admitOne(t, s, 2000, 1)
	missing := uuid.New()

	runs, err := s.GetRuns(ctx, []uuid.UUID{large.RunID, missing, small.RunID})
	if err != nil {
		t.Fatal(err)
	}
	milli := map[uuid.UUID]int{}
	for _, run := range runs {
		milli[run.ID] = run.GPUMilli
	}
	want := map[uuid.UUID]int{small.RunID: 500, large.RunID: 2000}
	if len(milli) != len(want) || milli[small.RunID] != 500 || milli[large.RunID] != 2000 {
		t.Errorf("GPU millis by run %v, want %v", milli, want)
	}

	if _, err := s.GetRun(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of a missing run: %v, want ErrNotFound", err)
	}
}
