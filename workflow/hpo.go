package workflow

import (
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
	hpo := &HPOResult{Metric: facts.Spec.HPO.Metric, Goal: facts.Spec.HPO.Goal,
		Planned: plan.Planned, Created: len(plan.Points), Limit: plan.Limit}
	result := Result{Status: store.JobRunning, HPO: hpo}
	if len(plan.Points) == 0 {
		result.Status = store.JobFailed
		err := workflow.ExecuteActivity(ctx, a.EndParent, facts.Job, store.JobFailed, plan.Limit, result).Get(ctx, nil)
		return result, err
	}
	if err := workflow.ExecuteActivity(ctx, a.CreateTrials, facts, plan).Get(ctx, nil); err != nil {
		return Result{}, err
	}
	if err := record(ctx, facts.Job, result); err != nil {
		return Result{}, err
	}

	state, err := followTrials(ctx, facts)
	if err != nil {
		return Result{}, err
	}
	if state.ParentStatus == store.JobCancelled {
		err := workflow.ExecuteActivity(ctx, a.CancelTrials, facts.Job).Get(ctx, nil)
		return Result{Status: store.JobCancelled, HPO: hpo}, err
	}
	return pickBest(ctx, facts, result)
}

// followTrials waits until every trial has ended or the parent was cancelled. Each
// trial_ended signal makes it count again from the database, so a signal that repeats or
// arrives late changes nothing.
func followTrials(ctx workflow.Context, facts JobFacts) (TrialsState, error) {
	trialEnded := workflow.GetSignalChannel(ctx, SignalTrialEnded)
	parentEnded := workflow.GetSignalChannel(ctx, SignalJobEnded)
	for {
		var state TrialsState
		if err := workflow.ExecuteActivity(ctx, a.TrialsState, facts.Job).Get(ctx, &state); err != nil {
			return TrialsState{}, err
		}
		if state.ParentStatus == store.JobCancelled || state.Ended == state.Total {
			return state, nil
		}
		waitForAny(ctx, trialEnded, parentEnded)
	}
}

// waitForAny waits until one of the channels has a signal, which it consumes, or until
// recheckEvery has passed.
func waitForAny(ctx workflow.Context, channels ...workflow.ReceiveChannel) {
	timerCtx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	selector := workflow.NewSelector(ctx).AddFuture(workflow.NewTimer(timerCtx, recheckEvery), func(workflow.Future) {})
	for _, ch := range channels {
		selector.AddReceive(ch, func(c workflow.ReceiveChannel, _ bool) {
			var ignored JobEnded
			c.Receive(ctx, &ignored)
		})
	}
	selector.Select(ctx)
}

// pickBest scores the trials, applies the parent's thresholds to the best one, registers
// its model, completes the parent and requests promotion when configured.
func pickBest(ctx workflow.Context, facts JobFacts, result Result) (Result, error) {
	if err := workflow.ExecuteActivity(ctx, a.ScoreTrials, facts).Get(ctx, &result.HPO.Trials); err != nil {
		return Result{}, err
	}
	best := bestTrial(result.HPO, *facts.Spec.HPO)
	if best == nil {
		result.Status = store.JobFailed
		reason := "no trial completed with metric " + result.HPO.Metric + " in its eval report"
		err := workflow.ExecuteActivity(ctx, a.EndParent, facts.Job, store.JobFailed, reason, result).Get(ctx, nil)
		return result, err
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
		err := workflow.ExecuteActivity(ctx, a.EndParent, facts.Job, store.JobCompleted, "", result).Get(ctx, nil)
		return result, err
	}

	if ended, err := registerOrFail(ctx, facts, best.Job, best.Metrics, &result); ended || err != nil {
		return result, err
	}
	if err := workflow.ExecuteActivity(ctx, a.EndParent, facts.Job, store.JobCompleted, "", result).Get(ctx, nil); err != nil {
		return Result{}, err
	}
	return promote(ctx, facts, result)
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
