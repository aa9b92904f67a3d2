package workflow_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
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

// TestLatePromotionKeepsStage: the workflow of the version approved first for prod
// promotes after the workflow of the version approved next. Its step returns the version
// still in dev with the reason, instead of archiving the newer prod version.
func TestLatePromotionKeepsStage(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	first := s.registeredApproved("prod")
	second := s.registeredApproved("prod")

	promoted, err := s.acts.Promote(ctx, second.ID, "prod", "olga")
	if err != nil {
		t.Fatal(err)
	}
	if promoted.Stage != "prod" || promoted.Problem != "" {
		t.Errorf("promotion of version 2: stage %s, problem %q, want prod without a problem", promoted.Stage, promoted.Problem)
	}
	late, err := s.acts.Promote(ctx, first.ID, "prod", "olga")
	if err != nil {
		t.Fatalf("late promotion: %v, want a problem and no error", err)
	}
	if late.Stage != "dev" {
		t.Errorf("late promotion left version 1 in %s, want dev", late.Stage)
	}
	const reason = "version 2 of the model was approved for prod after version 1 and stays in prod"
	if !strings.Contains(late.Problem, reason) {
		t.Errorf("late promotion problem %q, want it to contain %q", late.Problem, reason)
	}
	v2, err := s.store.GetModelVersion(ctx, uuid.MustParse(second.ID))
	if err != nil {
		t.Fatal(err)
	}
	if v2.Stage != "prod" {
		t.Errorf("version 2 is %s after the late promotion, want prod", v2.Stage)
	}
}

// registeredApproved trains a job, registers its model as the next version of "resnet" and
// approves the version for stage.
func (s *steps) registeredApproved(stage string) workflow.Version {
	s.t.Helper()
	ctx := context.Background()
	job := s.trainedJob("fine_tune", trainSpec(nil), map[string]float64{"accuracy": 0.9}, nil)
	v, err := s.acts.RegisterVersion(ctx, workflow.RegisterInput{Trained: job.Ref(), ProjectID: "vision",
		Model: jobspec.Registration{Name: "resnet"}})
	if err != nil || v.ID == "" {
		s.t.Fatalf("register: %+v (%v), want a version", v, err)
	}
	request, err := s.store.RequestApproval(ctx, store.ApprovalRequest{ModelVersionID: uuid.MustParse(v.ID),
		TargetStage: stage, RequestedBy: "alice", Snapshot: json.RawMessage(`{}`), WorkflowID: "job-" + job.ID.String()})
	if err != nil {
		s.t.Fatal(err)
	}
	_, err = s.store.DecideApproval(ctx, store.ApprovalDecision{ApprovalID: request.ID, Approve: true, Reason: "good",
		Audit: &store.Audit{Actor: store.Actor{Name: "olga", Role: store.RoleOperator}, Action: "approval.approve",
			At: time.Now()}})
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}
