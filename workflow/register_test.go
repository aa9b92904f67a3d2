package workflow_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

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

// TestRegisterRetryAfterModelDeleted: a retried registration returns the version the first
// try registered, even when the model object has been deleted from S3 since.
func TestRegisterRetryAfterModelDeleted(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	job := s.trainedJob("fine_tune", trainSpec(nil), map[string]float64{"accuracy": 0.9}, nil)
	in := workflow.RegisterInput{Trained: job.Ref(), ProjectID: "vision", Model: jobspec.Registration{Name: "resnet"}}
	first, err := s.acts.RegisterVersion(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == "" {
		t.Fatalf("first registration: %+v, want a version", first)
	}
	model, err := s.store.LatestArtifact(ctx, job.Ref(), "model")
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(model.URI, "s3://"+s.bucket+"/")
	if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}

	again, err := s.acts.RegisterVersion(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Problem != "" {
		t.Errorf("retry after the model was deleted: problem %q, want none", again.Problem)
	}
	if again.ID != first.ID {
		t.Errorf("retry returned version %q, want the first %s", again.ID, first.ID)
	}
}
