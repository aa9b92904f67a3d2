// Package workflow drives each job's life around its runs in Temporal. A job's workflow
// waits for the scheduler to finish the job, evaluates the result against the job's
// thresholds, registers a model version, requests approval and promotes. An hpo job's
// workflow creates its trials and picks the best. PostgreSQL stays the source of truth: every step is an activity that
// writes through the store's guarded statements, and every fact the workflow waits for
// reaches it through the outbox table (workflow_events), never by polling pods.
//
// docs/design/workflows.md explains the design and the choice of Temporal server.
package workflow

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// TaskQueue is the Temporal task queue of the job workflows and their activities.
const TaskQueue = "schedulerd-jobs"

// WorkflowName is the registered name of JobWorkflow, so the name survives a rename of the
// Go function.
const WorkflowName = "JobWorkflow"

// Signal names: the kinds of the outbox rows.
const (
	SignalJobEnded        = "job_ended"
	SignalTrialEnded      = "trial_ended"
	SignalApprovalDecided = "approval_decided"
)

// recheckEvery bounds how long a workflow trusts the outbox alone: after this long without
// a signal it reads the database again, so even a lost event delays it, never stops it.
const recheckEvery = 30 * time.Minute

// StatusEvaluating is the result status of a completed job whose workflow has not yet
// decided its evaluation and registration.
const StatusEvaluating store.JobStatus = "evaluating"

// JobEnded is the payload of job_ended and trial_ended signals.
type JobEnded struct {
	JobID  string          `json:"job_id,omitempty"`
	Status store.JobStatus `json:"status"`
}

// ApprovalDecided is the payload of an approval_decided signal.
type ApprovalDecided struct {
	ApprovalID string `json:"approval_id"`
	Status     string `json:"status"`
}

// a names the activities for ExecuteActivity; its methods are never called on nil.
var a *Activities

func withActivities(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second, // steps take milliseconds; a dead worker's step is retried after this
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			// No attempt limit, so a step fails only with a non-retryable error, and a
			// database or S3 outage delays the workflow until the outage ends.
		},
	})
}

// JobWorkflow is the workflow of one job, started when the job is submitted.
func JobWorkflow(ctx workflow.Context, job store.JobRef) (Result, error) {
	ctx = withActivities(ctx)
	var facts JobFacts
	if err := workflow.ExecuteActivity(ctx, a.ReadJob, job).Get(ctx, &facts); err != nil {
		return Result{}, fmt.Errorf("read job %s: %w", job.ID, err)
	}
	// Signals that arrived after the workflow had read the same fact from the database are
	// consumed at the end, so Temporal does not warn about unhandled signals.
	defer drainSignals(ctx)
	if facts.Type == "hpo" {
		return runHPO(ctx, facts)
	}

	status, err := waitForEnd(ctx, facts)
	if err != nil || status != store.JobCompleted {
		return Result{Status: status}, err
	}
	return afterTraining(ctx, facts)
}

func drainSignals(ctx workflow.Context) {
	for _, name := range []string{SignalJobEnded, SignalTrialEnded, SignalApprovalDecided} {
		ch := workflow.GetSignalChannel(ctx, name)
		var ignored any
		for ch.ReceiveAsync(&ignored) {
		}
	}
}

// continueWaitingAsNew is the change id (workflow.GetVersion) of waitForEnd's continue as
// new. Workflows that were already waiting before the change keep waiting in one history.
const continueWaitingAsNew = "continue-waiting-as-new"

// continueLongWaitsAsNew is the change id of the continue as new of the waits for an
// approval decision (awaitDecision) and for an hpo parent's trials (followTrials). Those
// waits come after steps that must not run twice, so the new run is a ResumeWorkflow that
// carries the state on, not a JobWorkflow that would start the job's steps again.
const continueLongWaitsAsNew = "continue-long-waits-as-new"

// ResumeWorkflowName is the registered name of ResumeWorkflow.
const ResumeWorkflowName = "JobWorkflowResume"

// What a ResumeWorkflow waits for.
const (
	WaitApproval = "approval" // the decision on Result.Approval
	WaitTrials   = "trials"   // the end of the hpo parent's trials
)

// Resume is the state that a job's workflow carries into its next run when it continues as
// new during a long wait: the job's facts, the result so far, and what it waits for.
type Resume struct {
	Facts  JobFacts `json:"facts"`
	Result Result   `json:"result"`
	Wait   string   `json:"wait"`
}

// ResumeWorkflow is a later run of a job's workflow, which continued as new while it
// waited for an approval decision or for an hpo parent's trials. It reads the fact it waits
// for from the database before it waits again, since a decision or a trial's end may have
// come between the two runs, and then finishes the job's steps as the first run would.
func ResumeWorkflow(ctx workflow.Context, r Resume) (Result, error) {
	ctx = withActivities(ctx)
	defer drainSignals(ctx)
	switch r.Wait {
	case WaitApproval:
		if r.Result.Approval == nil {
			return Result{}, nonRetryable("resume of job %s waits for an approval but names none", r.Facts.Job.ID)
		}
		err := workflow.ExecuteActivity(ctx, a.ReadApproval, r.Result.Approval.ID).Get(ctx, r.Result.Approval)
		if err != nil {
			return Result{}, err
		}
		return finishPromotion(ctx, r.Facts, r.Result)
	case WaitTrials:
		if r.Result.HPO == nil {
			return Result{}, nonRetryable("resume of job %s waits for trials but has no hpo result", r.Facts.Job.ID)
		}
		return afterTrials(ctx, r.Facts, r.Result)
	}
	return Result{}, nonRetryable("resume of job %s waits for %q, which no workflow waits for", r.Facts.Job.ID, r.Wait)
}

// continueAsNew returns the error that ends this run and starts a ResumeWorkflow with r.
func continueAsNew(ctx workflow.Context, r Resume) error {
	return workflow.NewContinueAsNewError(ctx, ResumeWorkflowName, r)
}

// waitForEnd returns the job's terminal status, from the database if it already has one,
// else from the job_ended signal the outbox sends.
//
// Each recheck adds about ten events to the history, so a job queued or paused for months
// would reach Temporal's history limit, which terminates the workflow. When Temporal
// suggests it, the workflow continues as new with the same job, and the new run reads the
// job again. The new run needs no other state, because this one has only waited.
func waitForEnd(ctx workflow.Context, facts JobFacts) (store.JobStatus, error) {
	ended := workflow.GetSignalChannel(ctx, SignalJobEnded)
	mayContinue := workflow.GetVersion(ctx, continueWaitingAsNew, workflow.DefaultVersion, 1) == 1
	status := facts.Status
	for !status.Terminal() {
		var signal JobEnded
		if received(ctx, ended, &signal) {
			status = signal.Status
			continue
		}
		if mayContinue && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return "", workflow.NewContinueAsNewError(ctx, WorkflowName, facts.Job)
		}
		var now JobFacts
		if err := workflow.ExecuteActivity(ctx, a.ReadJob, facts.Job).Get(ctx, &now); err != nil {
			return "", err
		}
		status = now.Status
	}
	return status, nil
}

// received waits for a signal on ch for up to recheckEvery and reports whether one came.
func received(ctx workflow.Context, ch workflow.ReceiveChannel, into any) bool {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	timer := workflow.NewTimer(timerCtx, recheckEvery)

	got := false
	workflow.NewSelector(ctx).
		AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) { c.Receive(ctx, into); got = true }).
		AddFuture(timer, func(workflow.Future) {}).
		Select(ctx)
	return got
}

// afterTraining evaluates a completed job and, for a training job that passed, registers
// its model version and requests its promotion.
func afterTraining(ctx workflow.Context, facts JobFacts) (Result, error) {
	spec := facts.Spec
	if spec.Evaluation == nil && spec.Model == nil {
		return Result{Status: store.JobCompleted}, nil
	}
	// Until the gate decides, the completed job's result status is evaluating, so a pipeline
	// that waits for a terminal status must also wait for another result status.
	if err := record(ctx, facts.Job, Result{Status: StatusEvaluating}); err != nil {
		return Result{}, err
	}
	var eval Evaluation
	if err := workflow.ExecuteActivity(ctx, a.Evaluate, facts.Job, spec.Evaluation).Get(ctx, &eval); err != nil {
		return Result{}, err
	}
	result := Result{Status: store.JobCompleted, Evaluation: &eval}
	if eval.Failure != "" {
		return failEvaluation(ctx, facts.Job, result)
	}
	if spec.Model == nil {
		return result, record(ctx, facts.Job, result)
	}

	if ended, err := registerOrFail(ctx, facts, facts.Job, eval.Metrics, &result); ended || err != nil {
		return result, err
	}
	return promote(ctx, facts, result)
}

// failEvaluation ends the job eval_failed and returns the outcome the database kept. An
// hpo parent that a user cancelled before this step stays cancelled, and so does the
// workflow's result.
func failEvaluation(ctx workflow.Context, job store.JobRef, result Result) (Result, error) {
	result.Status = store.JobEvalFailed
	var now store.JobStatus
	if err := workflow.ExecuteActivity(ctx, a.FailEvaluation, job, result).Get(ctx, &now); err != nil {
		return result, err
	}
	// A history from before the step returned a status has none: the step failed the job.
	if now == "" {
		now = store.JobEvalFailed
	}
	outcome, _, err := keptOutcome(ctx, job, store.JobEvalFailed, now, result)
	return outcome, err
}

func record(ctx workflow.Context, job store.JobRef, result Result) error {
	return workflow.ExecuteActivity(ctx, a.RecordResult, job, result).Get(ctx, nil)
}

// registerOrFail registers the model version trained by job trained (the job itself, or an
// hpo parent's best trial) into result. When the trained job left no model to register, it
// ends facts.Job eval_failed with that reason and returns ended.
func registerOrFail(ctx workflow.Context, facts JobFacts, trained store.JobRef, metrics map[string]float64,
	result *Result) (ended bool, err error) {
	var version Version
	err = workflow.ExecuteActivity(ctx, a.RegisterVersion, RegisterInput{
		Trained: trained, ProjectID: facts.ProjectID, Model: *facts.Spec.Model, Metrics: metrics,
	}).Get(ctx, &version)
	if err != nil {
		return false, err
	}
	result.ModelVersion = &version
	if version.ID != "" {
		return false, nil
	}
	*result, err = failEvaluation(ctx, facts.Job, *result)
	return true, err
}

// promote requests an approval when the job's config names a stage, waits for the
// decision and promotes an approved version.
func promote(ctx workflow.Context, facts JobFacts, result Result) (Result, error) {
	stage := facts.Spec.PromotionStage()
	if stage == "" {
		return result, record(ctx, facts.Job, result)
	}
	var approval Approval
	err := workflow.ExecuteActivity(ctx, a.RequestApproval, ApprovalInput{
		VersionID: result.ModelVersion.ID, Stage: stage, RequestedBy: facts.SubmittedBy,
		RequesterOwner: facts.SubmitterOwner, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Evaluation: result.Evaluation,
	}).Get(ctx, &approval)
	if err != nil {
		return Result{}, err
	}
	result.Approval = &approval
	if err := record(ctx, facts.Job, result); err != nil {
		return Result{}, err
	}
	return finishPromotion(ctx, facts, result)
}

// finishPromotion waits for the decision on result's approval, promotes an approved
// version and records the outcome.
func finishPromotion(ctx workflow.Context, facts JobFacts, result Result) (Result, error) {
	approval, err := awaitDecision(ctx, facts, result)
	if err != nil {
		return Result{}, err
	}
	result.Approval = &approval
	if approval.Status == "approved" {
		err := workflow.ExecuteActivity(ctx, a.Promote, result.ModelVersion.ID, facts.Spec.PromotionStage(),
			approval.DecidedBy).Get(ctx, result.ModelVersion)
		if err != nil {
			return Result{}, err
		}
	}
	return result, record(ctx, facts.Job, result)
}

// awaitDecision returns result's approval once it is decided. A decision may take months,
// so when Temporal suggests it after a recheck, the workflow continues as new in
// ResumeWorkflow, which waits on with the same facts and result (continueLongWaitsAsNew).
func awaitDecision(ctx workflow.Context, facts JobFacts, result Result) (Approval, error) {
	decided := workflow.GetSignalChannel(ctx, SignalApprovalDecided)
	mayContinue := workflow.GetVersion(ctx, continueLongWaitsAsNew, workflow.DefaultVersion, 1) == 1
	approval := *result.Approval
	for approval.Status == "pending" {
		var signal ApprovalDecided
		got := received(ctx, decided, &signal)
		if got && signal.ApprovalID != approval.ID {
			continue // a decision on another request of this workflow, already handled
		}
		if !got && mayContinue && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return Approval{}, continueAsNew(ctx, Resume{Facts: facts, Result: result, Wait: WaitApproval})
		}
		if err := workflow.ExecuteActivity(ctx, a.ReadApproval, approval.ID).Get(ctx, &approval); err != nil {
			return Approval{}, err
		}
	}
	return approval, nil
}

// Result is the outcome a job's workflow decided, also stored as the job's result_json.
type Result struct {
	Status       store.JobStatus `json:"status"`
	Evaluation   *Evaluation     `json:"evaluation,omitempty"`
	ModelVersion *Version        `json:"model_version,omitempty"`
	Approval     *Approval       `json:"approval,omitempty"`
	HPO          *HPOResult      `json:"hpo,omitempty"`
}

// Evaluation is the outcome of the evaluation gate.
type Evaluation struct {
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	ReportURI string             `json:"report_uri,omitempty"`
	// RunID is the completed run whose report was read.
	RunID string `json:"run_id,omitempty"`
	// Failure is the reason the gate rejected the job ("" when it passed).
	Failure string `json:"failure,omitempty"`
	// ModelVersionID is the version an eval_only job evaluated.
	ModelVersionID string `json:"model_version_id,omitempty"`
}

// Version is a registered model version as the workflow reports it.
type Version struct {
	ID        string `json:"id,omitempty"`
	ModelName string `json:"model_name,omitempty"`
	Number    int    `json:"version_number,omitempty"`
	Stage     string `json:"stage,omitempty"`
	// Problem is the reason nothing was registered, such as a job that wrote no model, or
	// the reason an approved version was not promoted.
	Problem string `json:"problem,omitempty"`
}

// Approval is a promotion request as the workflow reports it.
type Approval struct {
	ID          string `json:"id"`
	TargetStage string `json:"target_stage"`
	Status      string `json:"status"`
	DecidedBy   string `json:"decided_by,omitempty"`
	Reason      string `json:"reason,omitempty"`
}

// JobFacts is the job as its workflow reads it at the start.
type JobFacts struct {
	Job         store.JobRef    `json:"job"`
	Type        string          `json:"type"`
	Status      store.JobStatus `json:"status"`
	ProjectID   string          `json:"project_id"`
	Priority    int             `json:"priority"`
	SubmittedBy string          `json:"submitted_by"`
	Spec        jobspec.Spec    `json:"spec"`
	// SubmitterOwner is the owner of the submitting token (store.Job.SubmitterOwner). It is
	// empty in the history of a workflow that read its job before migration 22.
	SubmitterOwner string `json:"submitter_owner,omitempty"`
}

// errNonRetryable marks activity errors that no retry can fix.
func nonRetryable(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, "schedulerd.invalid", errors.New(msg))
}
