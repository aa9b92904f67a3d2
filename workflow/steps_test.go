package workflow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	sdkworkflow "go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// The tests here run JobWorkflow in the SDK's test environment, with the real activities
// on a real database and S3, and play the outbox by sending signals themselves. They cover
// the paths the end-to-end tests do not: a rejected approval, an altered eval report, the
// budget cut of an hpo search and the cancellation of its trials.

type steps struct {
	t      *testing.T
	store  *store.Store
	s3     *s3.Client
	bucket string
	acts   *workflow.Activities
}

func newSteps(t *testing.T, budget float64) *steps {
	t.Helper()
	db := store.New(pgtest.NewPool(t))
	daemontest.CreateProject(t, db, "vision", budget, 20)
	if err := db.SyncGPUCapacity(context.Background(), []store.ModelCapacity{
		{Model: "A10", CapacityMilli: 64000, Nodes: 8, LargestNodeMilli: 8000, LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 262144},
	}); err != nil {
		t.Fatal(err)
	}
	client, bucket := s3test.NewBucket(t)
	return &steps{t: t, store: db, s3: client, bucket: bucket,
		acts: &workflow.Activities{Store: db, Objects: client, Logger: slog.New(slog.DiscardHandler)}}
}

// trainedJob submits a job with spec, runs it to completion and records an eval report with
// metrics (whose object is replaced by stored when not nil) and a model artifact.
func (s *steps) trainedJob(jobType string, spec jobspec.Spec, metrics map[string]float64, stored []byte) store.Job {
	s.t.Helper()
	job := s.submit(jobType, spec)
	run := s.startRun()
	report, _ := json.Marshal(map[string]any{"metrics": metrics})
	s.artifact(run, "eval_report", report, stored)
	s.artifact(run, "model", []byte("weights"), nil)
	s.endRun(run, store.RunCompleted)
	return job
}

func (s *steps) submit(jobType string, spec jobspec.Spec) store.Job {
	s.t.Helper()
	sub := daemontest.NewSubmission("vision", 5, spec)
	sub.JobType, sub.SubmittedBy, sub.SubmitterOwner = jobType, "alice-ci", "alice"
	job, err := s.store.SubmitJob(context.Background(), sub)
	if err != nil {
		s.t.Fatal(err)
	}
	return job
}

// startRun admits the only queued job on A10 and starts its run an hour ago.
func (s *steps) startRun() uuid.UUID {
	s.t.Helper()
	ctx := context.Background()
	admissions, err := s.store.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 1}}, nil
	})
	if err != nil || len(admissions) != 1 {
		s.t.Fatalf("admit: %d admissions, %v", len(admissions), err)
	}
	if err := s.store.StartRun(ctx, admissions[0].RunID, time.Now().Add(-time.Hour), "node-1"); err != nil {
		s.t.Fatal(err)
	}
	return admissions[0].RunID
}

func (s *steps) endRun(run uuid.UUID, status store.RunStatus) {
	s.t.Helper()
	_, err := s.store.EndRun(context.Background(), store.RunEnd{RunID: run, Status: status,
		EndedAt: time.Now().Add(-59 * time.Minute), Reason: "test", Retryable: true})
	if err != nil {
		s.t.Fatal(err)
	}
}

// artifact records an artifact whose checksum is that of body, and stores stored (or body)
// in S3 under RUN/KIND.
func (s *steps) artifact(run uuid.UUID, kind string, body, stored []byte) {
	s.t.Helper()
	s.artifactAt(run, kind, s.bucket, fmt.Sprintf("%s/%s", run, kind), body, stored, true)
}

// artifactAt records an artifact at s3://bucket/key with the checksum and size of body, and
// stores stored (or body) there when upload is set.
func (s *steps) artifactAt(run uuid.UUID, kind, bucket, key string, body, stored []byte, upload bool) {
	s.t.Helper()
	if stored == nil {
		stored = body
	}
	if upload {
		if _, err := s.s3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key,
			Body: bytes.NewReader(stored)}); err != nil {
			s.t.Fatal(err)
		}
	}
	sum := sha256.Sum256(body)
	if _, err := s.store.RecordArtifact(context.Background(), store.NewArtifact{RunID: run, Type: kind,
		URI: "s3://" + bucket + "/" + key, Checksum: hex.EncodeToString(sum[:]), SizeBytes: int64(len(body))}); err != nil {
		s.t.Fatal(err)
	}
}

// run executes JobWorkflow for job in the test environment; onStart runs when the
// workflow has started, to send signals.
func (s *steps) run(job store.Job, setup func(env *testsuite.TestWorkflowEnvironment)) workflow.Result {
	s.t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflow.JobWorkflow, workflowOptions())
	env.RegisterActivity(s.acts)
	if setup != nil {
		setup(env)
	}
	env.ExecuteWorkflow(workflow.WorkflowName, job.Ref())
	if !env.IsWorkflowCompleted() {
		s.t.Fatal("workflow did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		s.t.Fatalf("workflow: %v", err)
	}
	var result workflow.Result
	if err := env.GetWorkflowResult(&result); err != nil {
		s.t.Fatal(err)
	}
	return result
}

func trainSpec(extra func(*jobspec.Spec)) jobspec.Spec {
	spec := jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 3600,
		Resources: jobspec.Resources{GPUs: 1, GPUModels: []string{"A10"}}}
	if extra != nil {
		extra(&spec)
	}
	return spec
}

func minAccuracy(v float64) *jobspec.Evaluation {
	return &jobspec.Evaluation{Thresholds: map[string]jobspec.Threshold{"accuracy": {Min: &v}}}
}

// TestRejectedApprovalLeavesVersionInDev: the workflow requests the approval with the
// submitter's token name and owner, and the approver rejects it. The version stays in dev
// and the job stays completed, with the rejection in its result.
func TestRejectedApprovalLeavesVersionInDev(t *testing.T) {
	s := newSteps(t, 1000)
	job := s.trainedJob("fine_tune", trainSpec(func(spec *jobspec.Spec) {
		spec.Evaluation = minAccuracy(0.8)
		spec.Model = &jobspec.Registration{Name: "detector", PromoteTo: "staging"}
	}), map[string]float64{"accuracy": 0.85}, nil)

	result := s.run(job, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			list, err := s.store.ListApprovals(context.Background(), "pending", 10)
			if err != nil || len(list) != 1 {
				t.Errorf("pending approvals %v (%v), want 1", list, err)
				return
			}
			if list[0].RequestedBy != "alice-ci" || list[0].RequesterOwner != "alice" {
				t.Errorf("requested by %q of owner %q, want alice-ci of owner alice",
					list[0].RequestedBy, list[0].RequesterOwner)
			}
			_, err = s.store.DecideApproval(context.Background(), store.ApprovalDecision{ApprovalID: list[0].ID,
				Reason: "not on staging this week", Audit: &store.Audit{
					Actor: store.Actor{Name: "olga", Role: store.RoleOperator}, Action: "approval.reject", At: time.Now()}})
			if err != nil {
				t.Error(err)
			}
			env.SignalWorkflow(workflow.SignalApprovalDecided, workflow.ApprovalDecided{ApprovalID: list[0].ID.String(), Status: "rejected"})
		}, time.Minute)
	})

	if result.Approval == nil || result.Approval.Status != "rejected" || result.Approval.Reason != "not on staging this week" {
		t.Fatalf("approval %+v, want rejected with the reason", result.Approval)
	}
	v, err := s.store.GetModelVersion(context.Background(), uuid.MustParse(result.ModelVersion.ID))
	if err != nil || v.Stage != "dev" || v.VersionNumber != 1 {
		t.Errorf("version %+v (%v), want version 1 in dev", v, err)
	}
	after, _ := s.store.GetJob(context.Background(), job.ID)
	if after.Status != store.JobCompleted {
		t.Errorf("job %s, want completed", after.Status)
	}
}

// TestAlteredReportFailsGate: an eval report whose object no longer matches its recorded
// checksum fails the gate, whatever metrics it now claims.
func TestAlteredReportFailsGate(t *testing.T) {
	s := newSteps(t, 1000)
	job := s.trainedJob("fine_tune", trainSpec(func(spec *jobspec.Spec) {
		spec.Evaluation = minAccuracy(0.8)
		spec.Model = &jobspec.Registration{Name: "detector"}
	}), map[string]float64{"accuracy": 0.5}, []byte(`{"metrics": {"accuracy": 0.99}}`))

	result := s.run(job, nil)
	after, _ := s.store.GetJob(context.Background(), job.ID)
	if after.Status != store.JobEvalFailed || result.Evaluation == nil ||
		!strings.Contains(result.Evaluation.Failure, "not the recorded") {
		t.Errorf("job %s with evaluation %+v, want eval_failed on the checksum", after.Status, result.Evaluation)
	}
	if versions, _ := s.store.ListModelVersions(context.Background(), "vision", "detector"); len(versions) != 0 {
		t.Errorf("%d versions registered, want none", len(versions))
	}
}

// TestEvalOnlyJudgesWithoutRegistering: an eval_only job that passes stays completed,
// records the version it evaluated and registers nothing.
func TestEvalOnlyJudgesWithoutRegistering(t *testing.T) {
	s := newSteps(t, 1000)
	evaluated := uuid.New().String()
	job := s.trainedJob("eval_only", trainSpec(func(spec *jobspec.Spec) {
		spec.Evaluation = minAccuracy(0.8)
		spec.Evaluation.ModelVersionID = evaluated
	}), map[string]float64{"accuracy": 0.93}, nil)

	result := s.run(job, nil)
	if result.Evaluation == nil || result.Evaluation.Failure != "" || result.Evaluation.ModelVersionID != evaluated ||
		result.ModelVersion != nil {
		t.Errorf("result %+v, want a pass on version %s and no registration", result, evaluated)
	}
	after, _ := s.store.GetJob(context.Background(), job.ID)
	if after.Status != store.JobCompleted || len(after.Result) == 0 {
		t.Errorf("job %s with result %s, want completed with its result", after.Status, after.Result)
	}
}

func hpoSpec(trials int) jobspec.Spec {
	return trainSpec(func(spec *jobspec.Spec) {
		spec.MaxRuntimeSeconds = 3 * 3600
		spec.HPO = &jobspec.HPO{Search: "random", Trials: trials, Seed: 1, Metric: "accuracy", Goal: "max",
			Parameters: map[string]jobspec.Param{"lr": {Values: []float64{0.1, 0.01, 0.001}}}}
	})
}

// TestTrialPlanFitsTheBudget: with 10 GPU-hours left and 3 reserved per trial, 3 of 4
// trials are planned, and the plan names the budget.
func TestTrialPlanFitsTheBudget(t *testing.T) {
	s := newSteps(t, 10)
	facts := s.parentFacts(hpoSpec(4))
	plan, err := s.acts.PlanTrials(context.Background(), facts)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Points) != 3 || !strings.Contains(plan.Limit, "holds 3 of 4 trials") {
		t.Errorf("plan of %d trials (%q), want 3 with the budget named", len(plan.Points), plan.Limit)
	}
}

// TestTrialPlanRechecksTrialCount: a stored search with more trials than MaxTrials, which
// the API would reject, gets no trials and a reason naming the field, before Points
// allocates one point per trial.
func TestTrialPlanRechecksTrialCount(t *testing.T) {
	s := newSteps(t, 1000)
	facts := s.parentFacts(hpoSpec(1000))
	plan, err := s.acts.PlanTrials(context.Background(), facts)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Points) != 0 {
		t.Errorf("plan of %d trials, want none", len(plan.Points))
	}
	if !strings.Contains(plan.Limit, "config.hpo.trials") {
		t.Errorf("limit %q, want it to name config.hpo.trials", plan.Limit)
	}
}

// TestTrialPlanWithFreeTrials: a trial whose reservation rounds to 0 GPU-hours (1
// GPU-thousandth for 60 s) costs no budget, so every point is planned, even with no
// budget left.
func TestTrialPlanWithFreeTrials(t *testing.T) {
	s := newSteps(t, 0)
	spec := hpoSpec(4)
	spec.MaxRuntimeSeconds = 60
	spec.Resources = jobspec.Resources{GPUShareMilli: 1, GPUModels: []string{"A10"}}
	plan, err := s.acts.PlanTrials(context.Background(), s.parentFacts(spec))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Points) != 4 || plan.Limit != "" {
		t.Errorf("plan of %d trials (%q), want 4 without a limit", len(plan.Points), plan.Limit)
	}
}

// TestCancelledParentCancelsTrials: trials are created once however often the step runs,
// and cancelling the parent cancels those that have not ended.
func TestCancelledParentCancelsTrials(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	facts := s.parentFacts(hpoSpec(3))
	plan, err := s.acts.PlanTrials(ctx, facts)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.acts.CreateTrials(ctx, facts, plan); err != nil {
			t.Fatal(err)
		}
	}
	trials, _ := s.store.ChildJobs(ctx, facts.Job)
	if len(trials) != 3 {
		t.Fatalf("%d trials after two creations, want 3", len(trials))
	}
	if _, err := s.store.TransitionJob(ctx, trials[0].Ref(), store.JobQueued, store.JobFailed, "broken"); err != nil {
		t.Fatal(err)
	}

	if err := s.acts.CancelTrials(ctx, facts.Job); err != nil {
		t.Fatal(err)
	}
	trials, _ = s.store.ChildJobs(ctx, facts.Job)
	want := []store.JobStatus{store.JobFailed, store.JobCancelled, store.JobCancelled}
	for i, trial := range trials {
		if trial.Status != want[i] {
			t.Errorf("trial %d is %s, want %s", i, trial.Status, want[i])
		}
	}
}

// parentFacts submits an hpo parent with spec and reads it as its workflow would.
func (s *steps) parentFacts(spec jobspec.Spec) workflow.JobFacts {
	s.t.Helper()
	sub := daemontest.NewSubmission("vision", 5, spec)
	sub.JobType = "hpo"
	job, err := s.store.SubmitJob(context.Background(), sub)
	if err != nil {
		s.t.Fatal(err)
	}
	facts, err := s.acts.ReadJob(context.Background(), job.Ref())
	if err != nil {
		s.t.Fatal(err)
	}
	return facts
}

func workflowOptions() sdkworkflow.RegisterOptions {
	return sdkworkflow.RegisterOptions{Name: workflow.WorkflowName}
}

// TestPreemptedRunReportIsIgnored: a report that a preempted run wrote does not pass the
// gate for the run that completed without one.
func TestPreemptedRunReportIsIgnored(t *testing.T) {
	s := newSteps(t, 1000)
	job := s.submit("fine_tune", trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
	first := s.startRun()
	s.artifact(first, "eval_report", []byte(`{"metrics": {"accuracy": 0.95}}`), nil)
	s.endRun(first, store.RunPreempted)
	s.endRun(s.startRun(), store.RunCompleted)

	result := s.run(job, nil)
	after, _ := s.store.GetJob(context.Background(), job.ID)
	if after.Status != store.JobEvalFailed || result.Evaluation.Failure != "the completed run wrote no eval_report artifact" {
		t.Errorf("job %s with evaluation %+v, want eval_failed for the missing report", after.Status, result.Evaluation)
	}
}

// TestReportKeysAreLiteral: "#", "?" and "%41" in a key are part of the key.
func TestReportKeysAreLiteral(t *testing.T) {
	s := newSteps(t, 1000)
	for _, key := range []string{"reports/rep#1.json", "reports/q?x=1.json", "reports/pct%41.json"} {
		s.submit("fine_tune", trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
		run := s.startRun()
		s.artifactAt(run, "eval_report", s.bucket, key, []byte(`{"metrics": {"accuracy": 0.9}}`), nil, true)
		s.endRun(run, store.RunCompleted)

		r, _ := s.store.GetRun(context.Background(), run)
		eval, err := s.acts.Evaluate(context.Background(), r.Job(), minAccuracy(0.8))
		if err != nil || eval.Failure != "" || eval.Metrics["accuracy"] != 0.9 {
			t.Errorf("key %s: evaluation %+v (%v), want a pass with accuracy 0.9", key, eval, err)
		}
	}
}

// TestMissingObjectsEndTheGate: a report in a bucket that does not exist, and a model
// artifact that was never uploaded, end the job with the reason instead of being retried
// for ever.
func TestMissingObjectsEndTheGate(t *testing.T) {
	s := newSteps(t, 1000)
	job := s.submit("fine_tune", trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
	run := s.startRun()
	s.artifactAt(run, "eval_report", "no-such-bucket-"+uuid.NewString()[:8], "r.json", []byte(`{}`), nil, false)
	s.endRun(run, store.RunCompleted)
	result := s.run(job, nil)
	if !strings.Contains(result.Evaluation.Failure, "does not exist") {
		t.Errorf("report in a missing bucket: failure %q, want it named", result.Evaluation.Failure)
	}

	job = s.submit("fine_tune", trainSpec(func(spec *jobspec.Spec) { spec.Model = &jobspec.Registration{Name: "detector"} }))
	run = s.startRun()
	s.artifactAt(run, "model", s.bucket, "never-uploaded.bin", []byte("weights"), nil, false)
	s.endRun(run, store.RunCompleted)
	s.run(job, nil)
	after, _ := s.store.GetJob(context.Background(), job.ID)
	if after.Status != store.JobEvalFailed || after.ErrorMessage == nil ||
		!strings.HasPrefix(*after.ErrorMessage, "registration: the object s3://") {
		t.Errorf("model never uploaded: job %s with %v, want eval_failed with a registration reason", after.Status, after.ErrorMessage)
	}
	if versions, _ := s.store.ListModelVersions(context.Background(), "vision", "detector"); len(versions) != 0 {
		t.Errorf("%d versions registered, want none", len(versions))
	}
}

// TestForeignObjectReasonsHideContent: an eval report or model artifact whose object is not
// the one recorded, such as another project's object, fails with a reason that gives
// neither the object's checksum nor its size. The submitter reads the reason in the job's
// result, and the checksum would let it pass the gate with that object next time.
func TestForeignObjectReasonsHideContent(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	foreignReport := []byte(`{"metrics": {"accuracy": 0.97}}`)
	foreignSum := sha256.Sum256(foreignReport)
	s.submit("fine_tune", trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
	run := s.startRun()
	s.artifactAt(run, "eval_report", s.bucket, "audio/report.json", []byte(`{"metrics": {}}`), foreignReport, true)
	s.endRun(run, store.RunCompleted)

	r, err := s.store.GetRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	eval, err := s.acts.Evaluate(ctx, r.Job(), minAccuracy(0.8))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(eval.Failure, "not the recorded eval report") {
		t.Errorf("report failure %q, want the checksum mismatch named", eval.Failure)
	}
	if strings.Contains(eval.Failure, hex.EncodeToString(foreignSum[:])) {
		t.Errorf("report failure %q contains the SHA-256 of the object", eval.Failure)
	}

	job := s.submit("fine_tune", trainSpec(nil))
	run = s.startRun()
	s.artifactAt(run, "model", s.bucket, "audio/model.bin", []byte("weights"), bytes.Repeat([]byte("w"), 12345), true)
	s.endRun(run, store.RunCompleted)
	version, err := s.acts.RegisterVersion(ctx, workflow.RegisterInput{Trained: job.Ref(), ProjectID: "vision",
		Model: jobspec.Registration{Name: "detector"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(version.Problem, "not the recorded model artifact") {
		t.Errorf("model problem %q, want the size mismatch named", version.Problem)
	}
	if strings.Contains(version.Problem, "12345") {
		t.Errorf("model problem %q contains the size of the object", version.Problem)
	}
}

// TestCancelledParentStaysCancelled: the steps that create trials and end the parent leave
// a parent that a user cancelled as it is, instead of failing and being retried for ever.
func TestCancelledParentStaysCancelled(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	facts := s.parentFacts(hpoSpec(2))
	plan, err := s.acts.PlanTrials(ctx, facts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.TransitionJob(ctx, facts.Job, store.JobSubmitted, store.JobCancelled, ""); err != nil {
		t.Fatal(err)
	}

	if err := s.acts.CreateTrials(ctx, facts, plan); err != nil {
		t.Errorf("creating trials of a cancelled parent: %v, want nil", err)
	}
	if trials, _ := s.store.ChildJobs(ctx, facts.Job); len(trials) != 0 {
		t.Errorf("%d trials created for a cancelled parent, want none", len(trials))
	}
	status, err := s.acts.EndParent(ctx, facts.Job, store.JobCompleted, "", workflow.Result{Status: store.JobCompleted})
	if err != nil {
		t.Errorf("ending a cancelled parent: %v, want nil", err)
	}
	if status != store.JobCancelled {
		t.Errorf("ending a cancelled parent returned %s, want cancelled", status)
	}
	status, err = s.acts.FailEvaluation(ctx, facts.Job, workflow.Result{})
	if err != nil {
		t.Errorf("failing the evaluation of a cancelled parent: %v, want nil", err)
	}
	if status != store.JobCancelled {
		t.Errorf("failing the evaluation of a cancelled parent returned %s, want cancelled", status)
	}
	job, _ := s.store.GetJob(ctx, facts.Job.ID)
	if job.Status != store.JobCancelled {
		t.Errorf("parent %s, want still cancelled", job.Status)
	}
	if job.Result != nil {
		t.Errorf("cancelled parent has result %s, want none", job.Result)
	}
}

// TestLongWaitContinuesAsNew: when Temporal suggests it, a workflow whose job is still
// queued at the recheck continues as new with the same job, so that a wait of months stays
// below Temporal's history limit.
func TestLongWaitContinuesAsNew(t *testing.T) {
	s := newSteps(t, 1000)
	job := s.submit("fine_tune", trainSpec(nil)) // queued, and never admitted

	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflow.JobWorkflow, workflowOptions())
	env.RegisterActivity(s.acts)
	env.SetContinueAsNewSuggested(true)
	// Ends a workflow that never continues as new; the recheck comes after 30 minutes.
	env.RegisterDelayedCallback(env.CancelWorkflow, 2*time.Hour)
	env.ExecuteWorkflow(workflow.WorkflowName, job.Ref())

	if !env.IsWorkflowCompleted() {
		t.Fatal("workflow did not complete")
	}
	var continued *sdkworkflow.ContinueAsNewError
	if err := env.GetWorkflowError(); !errors.As(err, &continued) {
		t.Fatalf("workflow error %v, want continue as new", err)
	}
	if continued.WorkflowType.Name != workflow.WorkflowName {
		t.Errorf("continued as %s, want %s", continued.WorkflowType.Name, workflow.WorkflowName)
	}
	var input store.JobRef
	if err := converter.GetDefaultDataConverter().FromPayloads(continued.Input, &input); err != nil {
		t.Fatal(err)
	}
	if input.ID != job.ID || !input.CreatedAt.Equal(job.CreatedAt) {
		t.Errorf("continued with job %+v, want %+v", input, job.Ref())
	}
}
