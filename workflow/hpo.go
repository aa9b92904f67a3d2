package workflow

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// HPOResult is an hpo parent's outcome: every trial's score and the best one.
type HPOResult struct {
	Metric    string       `json:"metric"`
	Goal      string       `json:"goal"`
	Planned   int          `json:"planned"`
	Created   int          `json:"created"`
	Limit     string       `json:"limit,omitempty"` // the reason fewer trials than planned, or none, were created
	Trials    []TrialScore `json:"trials"`
	BestJobID string       `json:"best_job_id,omitempty"`
	BestValue *float64     `json:"best_value,omitempty"`
}

// TrialScore is one trial's end and its value of the ranking metric.
type TrialScore struct {
	Job             store.JobRef       `json:"job"`
	Status          store.JobStatus    `json:"status"`
	Hyperparameters map[string]float64 `json:"hyperparameters"`
	Value           *float64           `json:"value,omitempty"`
	Metrics         map[string]float64 `json:"metrics,omitempty"`
	Problem         string             `json:"problem,omitempty"`
}

// TrialPlan is the number of trials the budget allows, decided once and kept in the
// workflow's history, so that a retried creation makes the same trials.
type TrialPlan struct {
	// Planned is the number of points of the search, before the budget cut.
	Planned int                  `json:"planned"`
	Points  []map[string]float64 `json:"points"`
	// Limit is the reason fewer points than the search has became trials, or none did.
	Limit string `json:"limit,omitempty"`
}

// TrialsState is how far the trials are.
type TrialsState struct {
	ParentStatus store.JobStatus `json:"parent_status"`
	Total        int             `json:"total"`
	Ended        int             `json:"ended"`
}

// runHPO creates the trials, follows them until every one has ended, then picks the best
// by the search's metric and registers its model like a training job's.
func runHPO(ctx workflow.Context, facts JobFacts) (Result, error) {
	if facts.Status.Terminal() {
		return Result{Status: facts.Status}, nil
	}
	var plan TrialPlan
	if err := workflow.ExecuteActivity(ctx, a.PlanTrials, facts).Get(ctx, &plan); err != nil {
		return Result{}, err
	}
	hpo := &HPOResult{Planned: plan.Planned, Created: len(plan.Points), Limit: plan.Limit}
	// A config stored without the API's checks may have no hpo section, and then its plan
	// has no points and the job fails with PlanTrials' reason.
	if search := facts.Spec.HPO; search != nil {
		hpo.Metric, hpo.Goal = search.Metric, search.Goal
	}
	result := Result{Status: store.JobRunning, HPO: hpo}
	if len(plan.Points) == 0 {
		result.Status = store.JobFailed
		outcome, _, err := endParent(ctx, facts.Job, store.JobFailed, plan.Limit, result)
		return outcome, err
	}
	if err := workflow.ExecuteActivity(ctx, a.CreateTrials, facts, plan).Get(ctx, nil); err != nil {
		return Result{}, err
	}
	if err := record(ctx, facts.Job, result); err != nil {
		return Result{}, err
	}
	return afterTrials(ctx, facts, result)
}

// afterTrials waits until the trials have ended or the parent was cancelled, then ends the
// parent with the best trial, or as cancelled.
func afterTrials(ctx workflow.Context, facts JobFacts, result Result) (Result, error) {
	hpo := result.HPO
	state, err := followTrials(ctx, facts, result)
	if err != nil {
		return Result{}, err
	}
	if state.ParentStatus == store.JobCancelled {
		if err := workflow.ExecuteActivity(ctx, a.CancelTrials, facts.Job).Get(ctx, nil); err != nil {
			return Result{}, err
		}
		if state.Total == 0 {
			// Cancelled before its trials were created: no result to correct.
			return Result{Status: store.JobCancelled, HPO: hpo}, nil
		}
		return recordCancelled(ctx, facts.Job, hpo)
	}
	return pickBest(ctx, facts, result)
}

// recordCancelled stores the result of a parent that a user cancelled after its trials
// were created: its status cancelled and the trials as the workflow last read them, in
// place of the running result recorded before, which no longer describes the job.
func recordCancelled(ctx workflow.Context, parent store.JobRef, hpo *HPOResult) (Result, error) {
	cancelled := Result{Status: store.JobCancelled, HPO: hpo}
	return cancelled, record(ctx, parent, cancelled)
}

// followTrials waits until every trial has ended or the parent was cancelled. Each
// trial_ended signal makes it count again from the database, so a signal that repeats or
// arrives late changes nothing. Trials may run for months, so when Temporal suggests it
// after a recheck, the workflow continues as new in ResumeWorkflow with facts and result.
func followTrials(ctx workflow.Context, facts JobFacts, result Result) (TrialsState, error) {
	trialEnded := workflow.GetSignalChannel(ctx, SignalTrialEnded)
	parentEnded := workflow.GetSignalChannel(ctx, SignalJobEnded)
	mayContinue := workflow.GetVersion(ctx, continueLongWaitsAsNew, workflow.DefaultVersion, 1) == 1
	for {
		var state TrialsState
		if err := workflow.ExecuteActivity(ctx, a.TrialsState, facts.Job).Get(ctx, &state); err != nil {
			return TrialsState{}, err
		}
		if state.ParentStatus == store.JobCancelled || state.Ended == state.Total {
			return state, nil
		}
		signalled := waitForAny(ctx, trialEnded, parentEnded)
		if !signalled && mayContinue && workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return TrialsState{}, continueAsNew(ctx, Resume{Facts: facts, Result: result, Wait: WaitTrials})
		}
	}
}

// waitForAny waits until one of the channels has a signal, which it consumes, or until
// recheckEvery has passed, and reports whether a signal came.
func waitForAny(ctx workflow.Context, channels ...workflow.ReceiveChannel) bool {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	got := false
	selector := workflow.NewSelector(ctx).AddFuture(workflow.NewTimer(timerCtx, recheckEvery), func(workflow.Future) {})
	for _, ch := range channels {
		selector.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var ignored JobEnded
			c.Receive(ctx, &ignored)
			got = true
		})
	}
	selector.Select(ctx)
	return got
}

// pickBest scores the trials, applies the parent's thresholds to the best one, completes
// the parent, registers the best trial's model and requests promotion when configured.
func pickBest(ctx workflow.Context, facts JobFacts, result Result) (Result, error) {
	err := workflow.ExecuteActivity(withScoring(ctx), a.ScoreTrials, facts).Get(ctx, &result.HPO.Trials)
	if err != nil {
		return Result{}, err
	}
	best := bestTrial(result.HPO, *facts.Spec.HPO)
	if best == nil {
		result.Status = store.JobFailed
		reason := "no trial completed with metric " + result.HPO.Metric + " in its eval report"
		outcome, _, err := endParent(ctx, facts.Job, store.JobFailed, reason, result)
		return outcome, err
	}
	result.HPO.BestJobID, result.HPO.BestValue = best.Job.ID.String(), best.Value

	eval := Evaluation{Metrics: best.Metrics, Failure: facts.Spec.Evaluation.Judge(best.Metrics)}
	result.Evaluation = &eval
	if eval.Failure != "" {
		// Only running moves to eval_failed here: the parent never completed.
		return failEvaluation(ctx, facts.Job, result)
	}
	result.Status = store.JobCompleted
	if facts.Spec.Model == nil {
		outcome, _, err := endParent(ctx, facts.Job, store.JobCompleted, "", result)
		return outcome, err
	}

	if workflow.GetVersion(ctx, completeParentFirst, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return registerThenComplete(ctx, facts, best, result)
	}
	// Completing the parent is the one guarded step that decides between the workflow and a
	// user's cancel. Once it is done, the parent can no longer be cancelled, so a parent
	// cancelled after its trials ended registers nothing and requests no approval. Until the
	// registration is decided, its result status is evaluating, as for a training job.
	evaluating := result
	evaluating.Status = StatusEvaluating
	outcome, completed, err := endParent(ctx, facts.Job, store.JobCompleted, "", evaluating)
	if !completed || err != nil {
		return outcome, err
	}
	if ended, err := registerOrFail(ctx, facts, best.Job, best.Metrics, &result); ended || err != nil {
		return result, err
	}
	return promote(ctx, facts, result)
}

// withScoring gives ScoreTrials the time of jobspec.MaxTrials trials, trialScoreTimeout
// each. The heartbeat timeout is twice one trial's bound. The Go SDK (v1.51.0) sends
// heartbeats at most every 80% of it, 48 s, which is longer than one trial may take, so the
// heartbeats of a live step arrive in time.
func withScoring(ctx workflow.Context) workflow.Context {
	options := workflow.GetActivityOptions(ctx)
	options.StartToCloseTimeout = jobspec.MaxTrials*trialScoreTimeout + time.Minute
	options.HeartbeatTimeout = 2 * trialScoreTimeout
	return workflow.WithActivityOptions(ctx, options)
}

// completeParentFirst is the change id (workflow.GetVersion) of the order in which pickBest
// completes the parent before it registers the best trial's model.
const completeParentFirst = "hpo-complete-parent-before-register"

// registerThenComplete is the order of pickBest in workflows that reached it before
// completeParentFirst: register, complete the parent, then request promotion. Replaying
// such a workflow needs the same steps in the same order.
func registerThenComplete(ctx workflow.Context, facts JobFacts, best *TrialScore, result Result) (Result, error) {
	if ended, err := registerOrFail(ctx, facts, best.Job, best.Metrics, &result); ended || err != nil {
		return result, err
	}
	var now store.JobStatus
	err := workflow.ExecuteActivity(ctx, a.EndParent, facts.Job, store.JobCompleted, "", result).Get(ctx, &now)
	if err != nil {
		return Result{}, err
	}
	// An EndParent that an older worker ran returned no status, and then the parent was
	// completed or kept its status.
	switch {
	case now == store.JobCancelled:
		return recordCancelled(ctx, facts.Job, result.HPO)
	case now != "" && now != store.JobCompleted:
		return Result{Status: now, HPO: result.HPO}, nil
	}
	return promote(ctx, facts, result)
}

// endParent ends the hpo parent in status with result. When the parent had ended
// otherwise, for example cancelled by a user, it returns false with the status it kept. A
// parent cancelled after its trials were created also gets its result recorded as
// cancelled.
func endParent(ctx workflow.Context, parent store.JobRef, status store.JobStatus, reason string,
	result Result) (Result, bool, error) {
	var now store.JobStatus
	if err := workflow.ExecuteActivity(ctx, a.EndParent, parent, status, reason, result).Get(ctx, &now); err != nil {
		return Result{}, false, err
	}
	return keptOutcome(ctx, parent, status, now, result)
}

// keptOutcome returns the workflow's result after a step that tried to end the job in
// status expected and left it in status now, and whether the two match. A job that
// had already ended keeps its status. An hpo parent that a user cancelled after its trials
// were created also gets a cancelled result stored, in place of the running one.
func keptOutcome(ctx workflow.Context, job store.JobRef, expected, now store.JobStatus, result Result) (Result, bool, error) {
	switch {
	case now == expected:
		return result, true, nil
	case now == store.JobCancelled && result.HPO != nil && result.HPO.Created > 0:
		cancelled, err := recordCancelled(ctx, job, result.HPO)
		return cancelled, false, err
	}
	return Result{Status: now, HPO: result.HPO}, false, nil
}

// bestTrial returns the completed trial with the best value, the earliest on a tie.
func bestTrial(h *HPOResult, search jobspec.HPO) *TrialScore {
	var best *TrialScore
	for i := range h.Trials {
		t := &h.Trials[i]
		if t.Status != store.JobCompleted || t.Value == nil {
			continue
		}
		if best == nil || search.Better(*t.Value, *best.Value) {
			best = t
		}
	}
	return best
}
