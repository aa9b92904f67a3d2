package workflow_test

import (
	"context"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/workflow"
)

// TestRegisterOtherModelIsProblem: registering a model for a job that registered a version
// of another model returns a problem naming that version, instead of the version itself
// or an error that Temporal would retry for ever.
func TestRegisterOtherModelIsProblem(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	job := s.trainedJob("fine_tune", trainSpec(nil), map[string]float64{"accuracy": 0.9}, nil)
	first, err := s.acts.RegisterVersion(ctx, workflow.RegisterInput{Trained: job.Ref(), ProjectID: "vision",
		Model: jobspec.Registration{Name: "resnet"}})
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" {
		t.Fatalf("first registration: %+v, want a version", first)
	}

	other, err := s.acts.RegisterVersion(ctx, workflow.RegisterInput{Trained: job.Ref(), ProjectID: "vision",
		Model: jobspec.Registration{Name: "detector"}})
	if err != nil {
		t.Fatalf("registering another model: %v, want a problem and no error", err)
	}
	if other.ID != "" {
		t.Errorf("registering another model returned version %s of %s, want none", other.ID, other.ModelName)
	}
	if !strings.Contains(other.Problem, "version 1 of model vision/resnet") {
		t.Errorf("problem %q, want it to name version 1 of model vision/resnet", other.Problem)
	}
}
