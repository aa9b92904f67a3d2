package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	sdkworkflow "go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// The tests here check that the waits for an approval decision and for an hpo parent's
// trials continue as new in ResumeWorkflow when Temporal suggests it. The resumed run then
// finishes the job's steps without running the earlier ones again.

// newEnv returns a test environment with both workflow types and the real activities.
func (s *steps) newEnv() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflow.JobWorkflow, workflowOptions())
	env.RegisterWorkflowWithOptions(workflow.ResumeWorkflow,
		sdkworkflow.RegisterOptions{Name: workflow.ResumeWorkflowName})
	env.RegisterActivity(s.acts)
	return env
}

// continuedWith runs JobWorkflow for job with continue as new suggested from the start, and
// returns the state it carried into ResumeWorkflow.
func (s *steps) continuedWith(job store.JobRef) workflow.Resume {
	s.t.Helper()
	env := s.newEnv()
	env.SetContinueAsNewSuggested(true)
	// Ends a workflow that never continues as new; its first recheck comes after 30 minutes.
	env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Hour)
	env.ExecuteWorkflow(workflow.WorkflowName, job)

	var continued *sdkworkflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &continued) {
		s.t.Fatalf("workflow error %v, want continue as new", err)
	}
	if continued.WorkflowType.Name != workflow.ResumeWorkflowName {
		s.t.Fatalf("continued as %s, want %s", continued.WorkflowType.Name, workflow.ResumeWorkflowName)
	}
	var resume workflow.Resume
	if err := converter.GetDefaultDataConverter().FromPayloads(continued.Input, &resume); err != nil {
		s.t.Fatal(err)
	}
	return resume
}

// resume runs ResumeWorkflow with r and returns its result.
func (s *steps) resume(r workflow.Resume) workflow.Result {
	s.t.Helper()
	env := s.newEnv()
	env.ExecuteWorkflow(workflow.ResumeWorkflowName, r)
	if err := env.GetWorkflowError(); err != nil {
		s.t.Fatalf("resumed workflow: %v", err)
	}
	var result workflow.Result
	if err := env.GetWorkflowResult(&result); err != nil {
		s.t.Fatal(err)
	}
	return result
}

// TestApprovalWaitContinuesAsNew: a workflow that waits for an approval decision continues
// as new with its approval and version. The decision comes between the two runs, and the
// resumed run reads it at once, promotes the version and records the result. The version
// is registered and the approval requested only once.
func TestApprovalWaitContinuesAsNew(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	job := s.trainedJob("fine_tune", trainSpec(func(spec *jobspec.Spec) {
		spec.Evaluation = minAccuracy(0.8)
		spec.Model = &jobspec.Registration{Name: "detector", PromoteTo: "staging"}
	}), map[string]float64{"accuracy": 0.85}, nil)

	r := s.continuedWith(job.Ref())
	if r.Wait != workflow.WaitApproval || r.Result.Approval == nil || r.Result.ModelVersion == nil {
		t.Fatalf("resume %+v, want a wait for an approval of a registered version", r)
	}
	if r.Result.Approval.Status != "pending" || r.Facts.Job.ID != job.ID {
		t.Errorf("resume carries approval %+v of job %s, want a pending one of %s",
			r.Result.Approval, r.Facts.Job.ID, job.ID)
	}
	_, err := s.store.DecideApproval(ctx, store.ApprovalDecision{ApprovalID: uuid.MustParse(r.Result.Approval.ID),
		Approve: true, Reason: "good enough", Audit: &store.Audit{
			Actor: store.Actor{Name: "olga", Role: store.RoleOperator}, Action: "approval.approve", At: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}

	result := s.resume(r)
	if result.Approval == nil || result.Approval.Status != "approved" {
		t.Fatalf("approval %+v, want approved", result.Approval)
	}
	v, err := s.store.GetModelVersion(ctx, uuid.MustParse(result.ModelVersion.ID))
	if err != nil {
		t.Fatal(err)
	}
	if v.Stage != "staging" || v.VersionNumber != 1 {
		t.Errorf("version %d in %s, want version 1 in staging", v.VersionNumber, v.Stage)
	}
	approvals, err := s.store.ListApprovals(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(approvals) != 1 {
		t.Errorf("%d approvals, want the one request", len(approvals))
	}
	stored, err := s.store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var recorded workflow.Result
	if err := json.Unmarshal(stored.Result, &recorded); err != nil {
		t.Fatal(err)
	}
	if recorded.Approval == nil || recorded.Approval.Status != "approved" || recorded.ModelVersion.Stage != "staging" {
		t.Errorf("recorded result %s, want the approval and the staging version", stored.Result)
	}
}

// TestTrialsWaitContinuesAsNew: an hpo parent's workflow that waits for its trials
// continues as new with the search's result. A cancel between the two runs ends the
// resumed run cancelled with its trials cancelled, and no trial is created again.
func TestTrialsWaitContinuesAsNew(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	facts := s.parentFacts(hpoSpec(3))

	r := s.continuedWith(facts.Job)
	if r.Wait != workflow.WaitTrials || r.Result.HPO == nil || r.Result.HPO.Created != 3 {
		t.Fatalf("resume %+v, want a wait for 3 created trials", r)
	}
	parent, err := s.store.GetJob(ctx, facts.Job.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.store.MoveHPOParent(ctx, parent.Ref(), parent.Status, store.JobCancelled, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}

	result := s.resume(r)
	if result.Status != store.JobCancelled || result.HPO == nil || result.HPO.Created != 3 {
		t.Errorf("result %+v, want cancelled with the 3 trials' search", result)
	}
	trials, err := s.store.ChildJobs(ctx, facts.Job)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 3 {
		t.Fatalf("%d trials, want the 3 created once", len(trials))
	}
	for i, trial := range trials {
		if trial.Status != store.JobCancelled {
			t.Errorf("trial %d is %s, want cancelled", i, trial.Status)
		}
	}
}
