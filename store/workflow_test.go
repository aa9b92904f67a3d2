package store_test

import (
	"context"
	"testing"

	"github.com/schedulerd/schedulerd/store"
)

// runningParent submits an hpo parent and moves it to running, as its workflow does once
// the trials exist.
func runningParent(t *testing.T, s *store.Store) store.Job {
	t.Helper()
	ctx := context.Background()
	sub := submission("")
	sub.JobType = "hpo"
	parent, err := s.SubmitJob(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetParentStatus(ctx, parent.Ref(), store.JobSubmitted, store.JobRunning, ""); err != nil {
		t.Fatal(err)
	}
	return parent
}

// TestFailEvaluationCompletedAt: a running hpo parent that fails its evaluation gets a
// completed_at, and a completed job keeps the one of its training.
func TestFailEvaluationCompletedAt(t *testing.T) {
	s := setup(t)
	ctx := context.Background()

	parent := runningParent(t, s)
	status, err := s.FailEvaluation(ctx, parent.Ref(), "evaluation: accuracy too low", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if status != store.JobEvalFailed {
		t.Errorf("FailEvaluation returned %s, want eval_failed", status)
	}
	got, err := s.GetJob(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.JobEvalFailed {
		t.Errorf("hpo parent is %s, want eval_failed", got.Status)
	}
	if got.CompletedAt == nil {
		t.Error("hpo parent has no completed_at after eval_failed")
	}

	trained := completedJob(t, s)
	before, err := s.GetJob(ctx, trained.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before.CompletedAt == nil {
		t.Fatal("completed job has no completed_at")
	}
	if _, err := s.FailEvaluation(ctx, trained, "evaluation: accuracy too low", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	after, err := s.GetJob(ctx, trained.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.CompletedAt == nil || !after.CompletedAt.Equal(*before.CompletedAt) {
		t.Errorf("completed job's completed_at %v after eval_failed, want %v from training",
			after.CompletedAt, before.CompletedAt)
	}
}
