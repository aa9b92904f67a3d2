package workflow

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// Activities are the workflow steps that touch the world: each reads or writes PostgreSQL
// through the store, or reads an eval report from S3. Each can run twice (Temporal retries a
// step whose result it did not record) and does the same thing both times.
type Activities struct {
	Store   *store.Store
	Objects ObjectReader
	Logger  *slog.Logger
}

// ReadJob reads the job a workflow drives.
func (x *Activities) ReadJob(ctx context.Context, ref store.JobRef) (JobFacts, error) {
	job, err := x.Store.GetJob(ctx, ref.ID)
	if errors.Is(err, store.ErrNotFound) {
		return JobFacts{}, nonRetryable("job %s does not exist", ref.ID)
	}
	if err != nil {
		return JobFacts{}, err
	}
	spec, err := jobspec.Decode(job.ConfigJSON)
	if err != nil {
		return JobFacts{}, nonRetryable("job %s has an invalid config: %v", ref.ID, err)
	}
	facts := JobFacts{Job: job.Ref(), Type: job.JobType, Status: job.Status, ProjectID: job.ProjectID,
		Priority: job.Priority, SubmittedBy: "schedulerd", Spec: spec}
	if job.SubmittedBy != nil {
		facts.SubmittedBy = *job.SubmittedBy
	}
	if job.SubmitterOwner != nil {
		facts.SubmitterOwner = *job.SubmitterOwner
	}
	return facts, nil
}

// Evaluate reads the eval report of the job's last completed run and applies the
// thresholds (none when eval is nil). A report that is missing, altered or malformed fails
// the gate with the reason, and so does a report of an earlier, preempted run alone. Only
// an unreachable database or S3 is an error, which Temporal retries.
func (x *Activities) Evaluate(ctx context.Context, job store.JobRef, eval *jobspec.Evaluation) (Evaluation, error) {
	result := Evaluation{}
	if eval != nil {
		result.ModelVersionID = eval.ModelVersionID
	}
	run, err := x.lastCompletedRun(ctx, job)
	if err != nil {
		return Evaluation{}, err
	}
	report, err := x.Store.RunArtifact(ctx, run, "eval_report")
	if errors.Is(err, store.ErrNotFound) {
		if eval != nil && len(eval.Thresholds) > 0 {
			result.Failure = "the completed run wrote no eval_report artifact"
		}
		return result, nil
	}
	if err != nil {
		return Evaluation{}, err
	}

	result.ReportURI, result.RunID = report.URI, run.String()
	metrics, problem, err := readReport(ctx, x.Objects, report)
	if err != nil {
		return Evaluation{}, err
	}
	result.Metrics = metrics
	result.Failure = problem
	if problem == "" {
		result.Failure = eval.Judge(metrics)
	}
	x.Logger.Info("job evaluated", "job_id", job.ID, "run_id", run, "report", report.URI,
		"passed", result.Failure == "", "failure", result.Failure)
	return result, nil
}

// lastCompletedRun returns the id of the job's completed run; uuid.Nil when it has none,
// which finds no artifact.
func (x *Activities) lastCompletedRun(ctx context.Context, job store.JobRef) (uuid.UUID, error) {
	runs, err := x.Store.JobRuns(ctx, job)
	if err != nil {
		return uuid.Nil, err
	}
	last := uuid.Nil
	for _, r := range runs {
		if r.Status == store.RunCompleted {
			last = r.ID
		}
	}
	return last, nil
}

// FailEvaluation ends the job eval_failed with the reason: the gate's, or why nothing could
// be registered. It returns the job's status after the step, which differs when the job had
// already ended (an hpo parent that a user cancelled meanwhile).
func (x *Activities) FailEvaluation(ctx context.Context, job store.JobRef, result Result) (store.JobStatus, error) {
	reason := "evaluation failed"
	switch {
	case result.ModelVersion != nil && result.ModelVersion.Problem != "":
		reason = "registration: " + result.ModelVersion.Problem
	case result.Evaluation != nil && result.Evaluation.Failure != "":
		reason = "evaluation: " + result.Evaluation.Failure
	}
	return x.Store.FailEvaluation(ctx, job, reason, result)
}

// RecordResult stores the workflow's result on the job. A running result, which only an
// hpo parent records, is not stored on a parent that a user cancelled meanwhile.
func (x *Activities) RecordResult(ctx context.Context, job store.JobRef, result Result) error {
	if result.Status == store.JobRunning {
		return x.Store.SetLiveJobResult(ctx, job, result)
	}
	return x.Store.SetJobResult(ctx, job, result)
}

// RegisterInput names the job that trained the model and the registry entry to make.
type RegisterInput struct {
	Trained   store.JobRef         `json:"trained"`
	ProjectID string               `json:"project_id"`
	Model     jobspec.Registration `json:"model"`
	Metrics   map[string]float64   `json:"metrics"`
}

// RegisterVersion registers the model that the trained job's last completed run wrote: its
// model artifact, else its last checkpoint. The lineage comes from the job's config (dataset
// version, code commit, tracking run) and from its stored config (the config hash). A retry
// returns the version an earlier try registered before it checks the model in S3 again, so
// an object deleted since then does not fail a registered job.
func (x *Activities) RegisterVersion(ctx context.Context, in RegisterInput) (Version, error) {
	job, err := x.Store.GetJob(ctx, in.Trained.ID)
	if err != nil {
		return Version{}, err
	}
	if v, found, err := x.registeredVersion(ctx, job, in); found || err != nil {
		return v, err
	}
	run, artifactURI, problem, err := x.modelOf(ctx, job)
	if err != nil || artifactURI == "" {
		return Version{Problem: problem}, err
	}

	hash := sha256.Sum256(job.ConfigJSON)
	v, err := x.Store.RegisterModelVersion(ctx, store.NewVersion{
		ProjectID: in.ProjectID, ModelName: in.Model.Name, BaseModelRef: in.Model.BaseModelRef,
		Job: job.Ref(), RunID: run, ArtifactURI: artifactURI, DatasetVersion: in.Model.DatasetVersion,
		ConfigHash: "sha256:" + hex.EncodeToString(hash[:]), CodeCommit: in.Model.CodeCommit,
		TrackingRunID: in.Model.TrackingRunID, EvalMetrics: in.Metrics,
	})
	if errors.Is(err, store.ErrInvalid) {
		// The job registered another model already, or a lineage value breaks a rule of
		// the schema, and no retry fixes either.
		x.Logger.Warn("model version not registered", "job_id", job.ID, "model", in.Model.Name, "err", err)
		return Version{Problem: err.Error()}, nil
	}
	if err != nil {
		return Version{}, err
	}
	x.Logger.Info("model version registered", "job_id", job.ID, "model", v.ModelName, "version", v.VersionNumber,
		"model_version_id", v.ID)
	return versionOf(v), nil
}

// registeredVersion returns the version of in's model that the job registered already, and
// whether there is one. A version of another model is a problem, as in RegisterVersion.
func (x *Activities) registeredVersion(ctx context.Context, job store.Job, in RegisterInput) (Version, bool, error) {
	v, err := x.Store.JobModelVersion(ctx, job.ID, in.ProjectID, in.Model.Name)
	switch {
	case err == nil:
		return versionOf(v), true, nil
	case errors.Is(err, store.ErrNotFound):
		return Version{}, false, nil
	case errors.Is(err, store.ErrInvalid):
		x.Logger.Warn("model version not registered", "job_id", job.ID, "model", in.Model.Name, "err", err)
		return Version{Problem: err.Error()}, true, nil
	}
	return Version{}, false, err
}

// modelOf finds the job's last completed run and the URI of the model it wrote: its model
// artifact, which must exist in S3 with its recorded size, else its last checkpoint. An
// empty URI comes with the reason.
func (x *Activities) modelOf(ctx context.Context, job store.Job) (*uuid.UUID, string, string, error) {
	runs, err := x.Store.JobRuns(ctx, job.Ref())
	if err != nil {
		return nil, "", "", err
	}
	var last *store.Run
	for i := range runs {
		if runs[i].Status == store.RunCompleted {
			last = &runs[i]
		}
	}
	if last == nil {
		return nil, "", fmt.Sprintf("job %s has no completed run", job.ID), nil
	}

	model, err := x.Store.RunArtifact(ctx, last.ID, "model")
	switch {
	case err == nil:
		problem, err := checkObject(ctx, x.Objects, model)
		if problem != "" || err != nil {
			return &last.ID, "", problem, err
		}
		return &last.ID, model.URI, "", nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, "", "", err
	case last.LastCheckpointURI != nil:
		return &last.ID, *last.LastCheckpointURI, "", nil
	}
	return &last.ID, "", fmt.Sprintf("job %s wrote no model artifact and no checkpoint", job.ID), nil
}

func versionOf(v store.ModelVersion) Version {
	return Version{ID: v.ID.String(), ModelName: v.ModelName, Number: v.VersionNumber, Stage: v.Stage}
}

// ApprovalInput is a promotion request as the workflow makes it.
type ApprovalInput struct {
	VersionID   string      `json:"version_id"`
	Stage       string      `json:"stage"`
	RequestedBy string      `json:"requested_by"`
	WorkflowID  string      `json:"workflow_id"`
	Evaluation  *Evaluation `json:"evaluation"`
	// RequesterOwner is the owner of the submitting token. It is empty in the history of a
	// workflow that read its job before migration 22, and the store then reads RequestedBy.
	RequesterOwner string `json:"requester_owner,omitempty"`
}

// RequestApproval stores the request with a snapshot of the evaluation, or returns the
// request this workflow already made.
func (x *Activities) RequestApproval(ctx context.Context, in ApprovalInput) (Approval, error) {
	versionID, err := uuid.Parse(in.VersionID)
	if err != nil {
		return Approval{}, nonRetryable("model version id %q: %v", in.VersionID, err)
	}
	snapshot, err := snapshotOf(in)
	if err != nil {
		return Approval{}, nonRetryable("encode the evaluation snapshot: %v", err)
	}
	approval, err := x.Store.RequestApproval(ctx, store.ApprovalRequest{
		ModelVersionID: versionID, TargetStage: in.Stage, RequestedBy: in.RequestedBy,
		RequesterOwner: in.RequesterOwner, Snapshot: snapshot, WorkflowID: in.WorkflowID,
	})
	if err != nil {
		return Approval{}, err
	}
	x.Logger.Info("approval requested", "approval_id", approval.ID, "model_version_id", versionID,
		"target_stage", in.Stage, "requested_by", in.RequestedBy, "requester_owner", approval.RequesterOwner)
	return approvalOf(approval), nil
}

// ReadApproval reads a request's current status.
func (x *Activities) ReadApproval(ctx context.Context, id string) (Approval, error) {
	parsed, err := uuid.Parse(id)
	if err != nil {
		return Approval{}, nonRetryable("approval id %q: %v", id, err)
	}
	approval, err := x.Store.GetApproval(ctx, parsed)
	return approvalOf(approval), err
}

func approvalOf(a store.Approval) Approval {
	out := Approval{ID: a.ID.String(), TargetStage: a.TargetStage, Status: a.Status}
	if a.DecidedBy != nil {
		out.DecidedBy = *a.DecidedBy
	}
	if a.Reason != nil {
		out.Reason = *a.Reason
	}
	return out
}

// Promote moves an approved version to its stage; prod archives the previous prod version.
// A version whose model went to prod with a later approval keeps its stage, with the
// reason as its problem.
func (x *Activities) Promote(ctx context.Context, versionID, stage, by string) (Version, error) {
	id, err := uuid.Parse(versionID)
	if err != nil {
		return Version{}, nonRetryable("model version id %q: %v", versionID, err)
	}
	v, err := x.Store.PromoteVersion(ctx, id, stage, by)
	if errors.Is(err, store.ErrStaleStatus) {
		x.Logger.Warn("model version not promoted", "model_version_id", id, "stage", stage, "err", err)
		unchanged := versionOf(v)
		unchanged.Problem = err.Error()
		return unchanged, nil
	}
	if errors.Is(err, store.ErrIllegalTransition) {
		return Version{}, nonRetryable("%v", err)
	}
	if err != nil {
		return Version{}, err
	}
	x.Logger.Info("model version promoted", "model_version_id", id, "stage", stage, "by", by)
	return versionOf(v), nil
}

// PlanTrials decides how many of the search's points become trials: as many as the
// project's remaining GPU-hour budget can reserve at once, counting trials that already
// exist, so the trials never need more budget than is left.
//
// The search is validated again first, because Points allocates one point per trial: a
// stored config that skipped the API's checks (stored before a check existed, or written
// by another client of the database) could ask for a billion trials. An invalid search
// gets a plan without trials, whose Limit ends the hpo job as failed with the reason.
func (x *Activities) PlanTrials(ctx context.Context, facts JobFacts) (TrialPlan, error) {
	if err := facts.Spec.ValidateFor("hpo"); err != nil {
		x.Logger.Warn("hpo job has an invalid search", "job_id", facts.Job.ID, "err", err)
		return TrialPlan{Limit: "invalid hpo config: " + err.Error()}, nil
	}
	points := facts.Spec.HPO.Points()
	existing, err := x.Store.ChildJobs(ctx, facts.Job)
	if err != nil {
		return TrialPlan{}, err
	}
	remaining, err := x.Store.RemainingBudget(ctx, facts.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return TrialPlan{Limit: "project " + facts.ProjectID + " has no quota"}, nil
	}
	if err != nil {
		return TrialPlan{}, err
	}

	perTrial := jobspec.ReservedGPUHours(facts.Spec.GPUMilli(), facts.Spec.MaxRuntimeSeconds)
	affordable := len(existing) + affordableTrials(remaining, perTrial, len(points))
	plan := TrialPlan{Planned: len(points), Points: points}
	if affordable < len(points) {
		plan.Points = points[:affordable]
		plan.Limit = fmt.Sprintf("the remaining budget of %.4f GPU-hours holds %d of %d trials (%.4f GPU-hours each)",
			remaining, affordable, len(points), perTrial)
	}
	return plan, nil
}

// affordableTrials returns how many trials of perTrial GPU-hours each the remaining budget
// can reserve, at most points. A reservation that rounds to 0 GPU-hours (below 180
// GPU-thousandth-seconds) costs nothing, so every point is affordable.
func affordableTrials(remaining, perTrial float64, points int) int {
	if perTrial <= 0 {
		return points
	}
	return min(points, int(math.Floor(math.Max(remaining, 0)/perTrial+1e-9)))
}

// CreateTrials submits one trial job per planned point, with a key per point so a retry
// finds the trials it made, then moves the parent from submitted to running.
func (x *Activities) CreateTrials(ctx context.Context, facts JobFacts, plan TrialPlan) error {
	if ended, err := x.parentEnded(ctx, facts.Job); ended || err != nil {
		return err // cancelled before its trials exist: create none
	}
	spec := facts.Spec
	for i, point := range plan.Points {
		config, err := spec.TrialConfig(point)
		if err != nil {
			return nonRetryable("%v", err)
		}
		_, err = x.Store.SubmitJob(ctx, store.Submission{
			ProjectID: facts.ProjectID, IdempotencyKey: fmt.Sprintf("hpo-%s-trial-%d", facts.Job.ID, i),
			JobType: spec.HPO.TrialTypeOrDefault(), Priority: facts.Priority, Config: config,
			Parent: &facts.Job, GPUMilli: spec.GPUMilli(), GPUModels: spec.Resources.GPUModels,
			MaxRuntimeSeconds: spec.MaxRuntimeSeconds, MaxAttempts: spec.Attempts(), MaxPreemptions: spec.Preemptions(),
			CPUMilli: spec.Resources.CPUMilli, MemoryMiB: spec.Resources.MemoryMiB, SubmittedBy: facts.SubmittedBy,
			SubmitterOwner: facts.SubmitterOwner,
		})
		if err != nil && !errors.Is(err, store.ErrDuplicateIdempotencyKey) {
			return err
		}
	}
	x.Logger.Info("hpo trials created", "job_id", facts.Job.ID, "trials", len(plan.Points))
	err := x.Store.SetParentStatus(ctx, facts.Job, store.JobSubmitted, store.JobRunning, "")
	if errors.Is(err, store.ErrStaleStatus) {
		// Cancelled while the trials were created: the workflow reads the cancellation
		// next and cancels the trials. Or a retry of this step after the parent went
		// running and was then paused: the trials exist, so the step is done.
		job, readErr := x.Store.GetJob(ctx, facts.Job.ID)
		if readErr != nil || job.Status.Terminal() || job.Status == store.JobPaused {
			return readErr
		}
	}
	return err
}

// parentEnded reports whether the hpo parent has a terminal status already, such as
// cancelled by a user while its workflow was between steps.
func (x *Activities) parentEnded(ctx context.Context, parent store.JobRef) (bool, error) {
	job, err := x.Store.GetJob(ctx, parent.ID)
	if err != nil {
		return false, err
	}
	return job.Status.Terminal(), nil
}

// TrialsState counts the parent's trials and those that have ended.
func (x *Activities) TrialsState(ctx context.Context, parent store.JobRef) (TrialsState, error) {
	job, err := x.Store.GetJob(ctx, parent.ID)
	if err != nil {
		return TrialsState{}, err
	}
	trials, err := x.Store.ChildJobs(ctx, parent)
	if err != nil {
		return TrialsState{}, err
	}
	state := TrialsState{ParentStatus: job.Status, Total: len(trials)}
	for _, t := range trials {
		if t.Status.Terminal() {
			state.Ended++
		}
	}
	return state, nil
}

// trialScoreTimeout bounds the scoring of one trial: a few database reads and the S3 read
// of an eval report of at most maxReportBytes.
const trialScoreTimeout = 30 * time.Second

// ScoreTrials reads every completed trial's eval report and its value of the metric. It
// heartbeats after each trial, so a dead worker is found within the heartbeat timeout
// while the whole step may take as long as its up to jobspec.MaxTrials trials need.
func (x *Activities) ScoreTrials(ctx context.Context, facts JobFacts) ([]TrialScore, error) {
	trials, err := x.Store.ChildJobs(ctx, facts.Job)
	if err != nil {
		return nil, err
	}
	scores := make([]TrialScore, 0, len(trials))
	for i, t := range trials {
		score, err := x.scoreWithin(ctx, t, facts.Spec.HPO.Metric)
		if err != nil {
			return nil, err
		}
		scores = append(scores, score)
		activity.RecordHeartbeat(ctx, i+1)
	}
	return scores, nil
}

// scoreWithin scores one trial within trialScoreTimeout.
func (x *Activities) scoreWithin(ctx context.Context, trial store.Job, metric string) (TrialScore, error) {
	ctx, cancel := context.WithTimeout(ctx, trialScoreTimeout)
	defer cancel()
	score, err := x.score(ctx, trial, metric)
	if err != nil {
		return TrialScore{}, fmt.Errorf("score trial %s: %w", trial.ID, err)
	}
	return score, nil
}

func (x *Activities) score(ctx context.Context, trial store.Job, metric string) (TrialScore, error) {
	score := TrialScore{Job: trial.Ref(), Status: trial.Status}
	if spec, err := jobspec.Decode(trial.ConfigJSON); err == nil {
		score.Hyperparameters = spec.Hyperparameters
	}
	if trial.Status != store.JobCompleted {
		return score, nil
	}
	eval, err := x.Evaluate(ctx, trial.Ref(), nil)
	if err != nil {
		return TrialScore{}, err
	}
	score.Metrics = eval.Metrics
	value, ok := eval.Metrics[metric]
	switch {
	case eval.Failure != "":
		score.Problem = eval.Failure
	case eval.ReportURI == "":
		score.Problem = "the trial wrote no eval_report artifact"
	case !ok:
		score.Problem = metric + " missing from the eval report"
	default:
		score.Value = &value
	}
	return score, nil
}

// EndParent ends an hpo parent with its result: completed, or failed with the reason. It
// returns the parent's status afterwards. That differs from status when the parent had
// ended otherwise, for example cancelled by a user, and then kept its status and result.
func (x *Activities) EndParent(ctx context.Context, parent store.JobRef, status store.JobStatus, reason string,
	result Result) (store.JobStatus, error) {
	now, err := x.Store.EndParent(ctx, parent, status, reason, result)
	if err != nil {
		return "", err
	}
	if now != status {
		x.Logger.Info("hpo job had already ended, so its status and result were kept", "job_id", parent.ID, "status", now,
			"result_status", result.Status)
	}
	return now, nil
}

// CancelTrials cancels every trial that has not ended, after its parent was cancelled. The
// API's cancel of a parent cancels its trials in the same transaction. This step covers
// the trials that such a cancel missed, such as those of a CreateTrials that raced with
// it, and parents cancelled in another way. The dispatcher deletes the pods of running ones.
func (x *Activities) CancelTrials(ctx context.Context, parent store.JobRef) error {
	trials, err := x.Store.ChildJobs(ctx, parent)
	if err != nil {
		return err
	}
	for _, t := range trials {
		if t.Status.Terminal() {
			continue
		}
		// The same statement as the API's cancel; a trial that moved meanwhile makes the
		// step fail and Temporal retry it with fresh statuses.
		if _, err := x.Store.SetJobStatus(ctx, t.Ref(), t.Status, store.JobCancelled, time.Now(), nil); err != nil {
			return err
		}
	}
	return nil
}

// snapshotOf encodes the evaluation shown to the approver, fixed when the request is made.
func snapshotOf(in ApprovalInput) (json.RawMessage, error) {
	return json.Marshal(map[string]any{
		"model_version_id": in.VersionID, "target_stage": in.Stage, "evaluation": in.Evaluation,
	})
}
