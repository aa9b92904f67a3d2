package workflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	sdkworkflow "go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// runTrials runs every queued trial to completion, each with an eval report of accuracy
// 0.9 and a model artifact.
func (s *steps) runTrials(n int) {
	s.t.Helper()
	for range n {
		run := s.startRun()
		s.artifact(run, "eval_report", []byte(`{"metrics": {"accuracy": 0.9}}`), nil)
		s.artifact(run, "model", []byte("weights"), nil)
		s.endRun(run, store.RunCompleted)
	}
}

// cancelAfter cancels the job, which is in status from, as the API does, once the
// workflow's activity of the given name has completed.
func (s *steps) cancelAfter(env *testsuite.TestWorkflowEnvironment, activityName string, job store.Job,
	from store.JobStatus) {
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if info.ActivityType.Name != activityName || err != nil {
			return
		}
		if _, err := s.store.TransitionJob(context.Background(), job.Ref(), from, store.JobCancelled, ""); err != nil {
			s.t.Errorf("cancel job %s after %s: %v", job.ID, activityName, err)
		}
	})
}

// cancelAfterScoring runs an hpo parent with a model to promote, whose user cancels it
// once its two trials have completed and been scored. oldOrder replays the order of
// workflows that reached pickBest before the parent was completed ahead of the
// registration. It checks what every order must leave: the parent cancelled (see
// checkCancelledAfterScoring) and no approval requested. It returns the model versions
// registered.
func cancelAfterScoring(t *testing.T, oldOrder bool) []store.ModelVersion {
	s := newSteps(t, 1000)
	ctx := context.Background()
	spec := hpoSpec(2)
	spec.Model = &jobspec.Registration{Name: "searched", PromoteTo: "staging"}
	parent, result := s.runCancelledAfterScoring(spec, oldOrder)

	s.checkCancelledAfterScoring(parent, result)
	approvals, err := s.store.ListApprovals(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(approvals) != 0 {
		t.Errorf("%d approvals requested for a cancelled parent, want none", len(approvals))
	}
	versions, err := s.store.ListModelVersions(ctx, "vision", "searched")
	if err != nil {
		t.Fatal(err)
	}
	return versions
}

// runCancelledAfterScoring submits an hpo parent of two trials with spec and runs its
// workflow, whose trials complete after a minute, and whose user cancels the parent once
// the trials have been scored. oldOrder is as for cancelAfterScoring.
func (s *steps) runCancelledAfterScoring(spec jobspec.Spec, oldOrder bool) (store.Job, workflow.Result) {
	parent := s.submit("hpo", spec)
	result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		if oldOrder {
			env.OnGetVersion("hpo-complete-parent-before-register", sdkworkflow.DefaultVersion, 1).
				Return(sdkworkflow.DefaultVersion)
		}
		env.RegisterDelayedCallback(func() {
			s.runTrials(2)
			env.SignalWorkflow(workflow.SignalTrialEnded, workflow.JobEnded{Status: store.JobCompleted})
		}, time.Minute)
		s.cancelAfter(env, "ScoreTrials", parent, store.JobRunning)
	})
	return parent, result
}

// checkCancelledAfterScoring checks that the workflow's result, the parent and the parent's
// stored result are cancelled, and that the stored result keeps both scored trials.
func (s *steps) checkCancelledAfterScoring(parent store.Job, result workflow.Result) {
	t := s.t
	t.Helper()
	if result.Status != store.JobCancelled {
		t.Errorf("workflow result %s, want cancelled", result.Status)
	}
	after, err := s.store.GetJob(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != store.JobCancelled {
		t.Errorf("parent %s, want cancelled", after.Status)
	}
	var stored workflow.Result
	if err := json.Unmarshal(after.Result, &stored); err != nil {
		t.Fatalf("stored result %s: %v", after.Result, err)
	}
	if stored.Status != store.JobCancelled {
		t.Errorf("stored result status %s, want cancelled", stored.Status)
	}
	if stored.HPO == nil || len(stored.HPO.Trials) != 2 {
		t.Errorf("stored result %s, want both scored trials", after.Result)
	}
}

// TestCancelAfterScoringRegistersNothing: an hpo parent cancelled after its trials ended
// and were scored stays cancelled, registers no model version and requests no approval.
func TestCancelAfterScoringRegistersNothing(t *testing.T) {
	if versions := cancelAfterScoring(t, false); len(versions) != 0 {
		t.Errorf("%d versions registered for a cancelled parent, want none", len(versions))
	}
}

// TestCancelBeforeTrialsKeepsNoResult: an hpo parent cancelled right after its trials were
// planned gets no result written over its cancellation, whether the plan has trials or
// not (the search is invalid).
func TestCancelBeforeTrialsKeepsNoResult(t *testing.T) {
	for _, tc := range []struct {
		name   string
		trials int
	}{
		{"two trials planned", 2},
		{"no trial planned", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSteps(t, 1000)
			ctx := context.Background()
			parent := s.submit("hpo", hpoSpec(tc.trials))

			result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
				s.cancelAfter(env, "PlanTrials", parent, store.JobSubmitted)
			})

			if result.Status != store.JobCancelled {
				t.Errorf("workflow result %s, want cancelled", result.Status)
			}
			after, err := s.store.GetJob(ctx, parent.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.Status != store.JobCancelled {
				t.Errorf("parent %s, want cancelled", after.Status)
			}
			if after.Result != nil {
				t.Errorf("cancelled parent has result %s, want none", after.Result)
			}
			trials, err := s.store.ChildJobs(ctx, parent.Ref())
			if err != nil {
				t.Fatal(err)
			}
			if len(trials) != 0 {
				t.Errorf("%d trials created for a cancelled parent, want none", len(trials))
			}
		})
	}
}

// TestHPOWithoutSearchFails: an hpo job stored without its hpo section, which the API
// rejects but another client of the database may write, ends failed with the reason
// instead of stopping its workflow on a nil search.
func TestHPOWithoutSearchFails(t *testing.T) {
	s := newSteps(t, 1000)
	parent := s.submit("hpo", trainSpec(nil))

	result := s.run(parent, nil)

	if result.Status != store.JobFailed {
		t.Errorf("workflow result %s, want failed", result.Status)
	}
	if result.HPO == nil || result.HPO.Created != 0 {
		t.Errorf("hpo result %+v, want one without trials", result.HPO)
	}
	after, err := s.store.GetJob(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != store.JobFailed {
		t.Errorf("parent %s, want failed", after.Status)
	}
	const want = "invalid hpo config: config.hpo: required for an hpo job: the search space, metric and goal"
	if after.ErrorMessage == nil || *after.ErrorMessage != want {
		t.Errorf("parent error %v, want %q", after.ErrorMessage, want)
	}
}

// TestCancelAfterScoringInOldOrder: a workflow that reached pickBest before the parent was
// completed ahead of the registration keeps registering first, as its history requires,
// but a parent cancelled meanwhile stays cancelled and gets no approval request.
func TestCancelAfterScoringInOldOrder(t *testing.T) {
	if versions := cancelAfterScoring(t, true); len(versions) != 1 {
		t.Errorf("%d versions registered, want 1: the old order registers before it completes the parent", len(versions))
	}
}

// TestCancelBeforeFailedEvaluation: an hpo parent whose best trial misses its threshold,
// cancelled by its user after the trials were scored, stays cancelled. The workflow's
// result and the stored one are cancelled, with the scored trials, instead of eval_failed
// and the running result recorded earlier.
func TestCancelBeforeFailedEvaluation(t *testing.T) {
	s := newSteps(t, 1000)
	spec := hpoSpec(2)
	spec.Evaluation = minAccuracy(0.95) // the trials report 0.9

	parent, result := s.runCancelledAfterScoring(spec, false)

	s.checkCancelledAfterScoring(parent, result)
}

// TestScoreTrialsHeartbeats: scoring heartbeats under a heartbeat timeout, and its
// start-to-close timeout leaves time for the largest search, so a slow S3 neither fails the
// step nor hides a dead worker.
func TestScoreTrialsHeartbeats(t *testing.T) {
	s := newSteps(t, 1000)
	parent := s.submit("hpo", hpoSpec(2))
	var started *activity.Info
	heartbeats := 0

	s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			s.runTrials(2)
			env.SignalWorkflow(workflow.SignalTrialEnded, workflow.JobEnded{Status: store.JobCompleted})
		}, time.Minute)
		env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
			if info.ActivityType.Name == "ScoreTrials" {
				started = info
			}
		})
		env.SetOnActivityHeartbeatListener(func(info *activity.Info, _ converter.EncodedValues) {
			if info.ActivityType.Name == "ScoreTrials" {
				heartbeats++
			}
		})
	})

	if started == nil {
		t.Fatal("ScoreTrials never started")
	}
	if started.HeartbeatTimeout <= 0 {
		t.Errorf("ScoreTrials heartbeat timeout %v, want one", started.HeartbeatTimeout)
	}
	// Up to MaxTrials trials of 30 s each, the bound ScoreTrials gives one trial, must fit.
	startToClose := started.Deadline.Sub(started.StartedTime)
	if want := time.Duration(jobspec.MaxTrials) * 30 * time.Second; startToClose < want {
		t.Errorf("ScoreTrials start-to-close %v, want at least %v for %d trials", startToClose, want, jobspec.MaxTrials)
	}
	if heartbeats == 0 {
		t.Error("ScoreTrials sent no heartbeat")
	}
}

// TestCancelWhileTrialsRun: an hpo parent cancelled while its trials wait in the queue
// cancels them and stores a result with status cancelled and the trials it created.
func TestCancelWhileTrialsRun(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	parent := s.submit("hpo", hpoSpec(2))

	result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		s.cancelAfter(env, "CreateTrials", parent, store.JobRunning)
	})

	if result.Status != store.JobCancelled {
		t.Errorf("workflow result %s, want cancelled", result.Status)
	}
	after, err := s.store.GetJob(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored workflow.Result
	if err := json.Unmarshal(after.Result, &stored); err != nil {
		t.Fatalf("stored result %s: %v", after.Result, err)
	}
	if stored.Status != store.JobCancelled || stored.HPO == nil || stored.HPO.Created != 2 {
		t.Errorf("stored result %s, want status cancelled and 2 trials created", after.Result)
	}
	trials, err := s.store.ChildJobs(ctx, parent.Ref())
	if err != nil {
		t.Fatal(err)
	}
	for _, trial := range trials {
		if trial.Status != store.JobCancelled {
			t.Errorf("trial %s is %s, want cancelled", trial.ID, trial.Status)
		}
	}
}

// moveParentAfter moves the hpo parent from one status to another, with its trials as the
// API's action does, once the workflow's activity of the given name has completed.
func (s *steps) moveParentAfter(env *testsuite.TestWorkflowEnvironment, activityName string, parent store.Job,
	from, to store.JobStatus) {
	env.SetOnActivityCompletedListener(func(info *activity.Info, _ converter.EncodedValue, err error) {
		if info.ActivityType.Name != activityName || err != nil {
			return
		}
		if _, err := s.store.MoveHPOParent(context.Background(), parent.Ref(), from, to, time.Now(), nil); err != nil {
			s.t.Errorf("move job %s to %s after %s: %v", parent.ID, to, activityName, err)
		}
	})
}

// moveParent moves the hpo parent with its trials, as the API's action does.
func (s *steps) moveParent(parent store.Job, from, to store.JobStatus) {
	s.t.Helper()
	if _, err := s.store.MoveHPOParent(context.Background(), parent.Ref(), from, to, time.Now(), nil); err != nil {
		s.t.Fatalf("move job %s from %s to %s: %v", parent.ID, from, to, err)
	}
}

// trialStatuses lists the statuses of the parent's trials, oldest first.
func (s *steps) trialStatuses(parent store.Job) []store.JobStatus {
	s.t.Helper()
	trials, err := s.store.ChildJobs(context.Background(), parent.Ref())
	if err != nil {
		s.t.Fatal(err)
	}
	statuses := make([]store.JobStatus, len(trials))
	for i, trial := range trials {
		statuses[i] = trial.Status
	}
	return statuses
}

// TestPauseAndResumeSearch: an hpo parent paused once its trials exist keeps its workflow
// waiting, also through a trial_ended signal that arrives meanwhile. Once resumed, its
// trials run and the parent completes with the best one.
func TestPauseAndResumeSearch(t *testing.T) {
	s := newSteps(t, 1000)
	parent := s.submit("hpo", hpoSpec(2))
	var whilePaused []store.JobStatus
	var parentWhilePaused store.JobStatus

	result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		s.moveParentAfter(env, "CreateTrials", parent, store.JobRunning, store.JobPaused)
		env.RegisterDelayedCallback(func() {
			env.SignalWorkflow(workflow.SignalTrialEnded, workflow.JobEnded{Status: store.JobCompleted})
		}, time.Minute)
		env.RegisterDelayedCallback(func() {
			whilePaused = s.trialStatuses(parent)
			got, err := s.store.GetJob(context.Background(), parent.ID)
			if err != nil {
				t.Error(err)
			}
			parentWhilePaused = got.Status
			s.moveParent(parent, store.JobPaused, store.JobRunning)
			s.runTrials(2)
			env.SignalWorkflow(workflow.SignalTrialEnded, workflow.JobEnded{Status: store.JobCompleted})
		}, time.Hour)
	})

	if parentWhilePaused != store.JobPaused {
		t.Errorf("parent %s an hour after its pause, want still paused", parentWhilePaused)
	}
	if want := []store.JobStatus{store.JobPaused, store.JobPaused}; fmt.Sprint(whilePaused) != fmt.Sprint(want) {
		t.Errorf("trials %v while the parent was paused, want %v", whilePaused, want)
	}
	if result.Status != store.JobCompleted || result.HPO == nil || result.HPO.BestJobID == "" {
		t.Fatalf("workflow result %+v, want completed with a best trial", result)
	}
	after, err := s.store.GetJob(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != store.JobCompleted {
		t.Errorf("parent %s, want completed", after.Status)
	}
}

// TestTrialsEndWhileSearchPaused: the trials of a paused parent whose pods finished before
// the pause reached them complete, and the parent, with no trial left to resume, is
// scored and completes from paused.
func TestTrialsEndWhileSearchPaused(t *testing.T) {
	s := newSteps(t, 1000)
	parent := s.submit("hpo", hpoSpec(2))

	result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		env.RegisterDelayedCallback(func() {
			runs := []uuid.UUID{s.startRun(), s.startRun()}
			s.moveParent(parent, store.JobRunning, store.JobPaused)
			for _, run := range runs {
				s.artifact(run, "eval_report", []byte(`{"metrics": {"accuracy": 0.9}}`), nil)
				s.endRun(run, store.RunCompleted)
			}
			env.SignalWorkflow(workflow.SignalTrialEnded, workflow.JobEnded{Status: store.JobCompleted})
		}, time.Minute)
	})

	if result.Status != store.JobCompleted || result.HPO == nil || result.HPO.BestJobID == "" {
		t.Fatalf("workflow result %+v, want completed with a best trial", result)
	}
	after, err := s.store.GetJob(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != store.JobCompleted || after.CompletedAt == nil {
		t.Errorf("parent %s with completed_at %v, want completed from paused", after.Status, after.CompletedAt)
	}
}

// TestCancelPausedSearch: a paused parent that its user cancels ends cancelled, with its
// trials cancelled and a cancelled result.
func TestCancelPausedSearch(t *testing.T) {
	s := newSteps(t, 1000)
	parent := s.submit("hpo", hpoSpec(2))

	result := s.run(parent, func(env *testsuite.TestWorkflowEnvironment) {
		s.moveParentAfter(env, "CreateTrials", parent, store.JobRunning, store.JobPaused)
		env.RegisterDelayedCallback(func() {
			s.moveParent(parent, store.JobPaused, store.JobCancelled)
			env.SignalWorkflow(workflow.SignalJobEnded, workflow.JobEnded{Status: store.JobCancelled})
		}, time.Minute)
	})

	if result.Status != store.JobCancelled {
		t.Errorf("workflow result %s, want cancelled", result.Status)
	}
	if want := []store.JobStatus{store.JobCancelled, store.JobCancelled}; fmt.Sprint(s.trialStatuses(parent)) != fmt.Sprint(want) {
		t.Errorf("trials %v after the cancel, want %v", s.trialStatuses(parent), want)
	}
	after, err := s.store.GetJob(context.Background(), parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	var stored workflow.Result
	if err := json.Unmarshal(after.Result, &stored); err != nil {
		t.Fatalf("stored result %s: %v", after.Result, err)
	}
	if after.Status != store.JobCancelled || stored.Status != store.JobCancelled {
		t.Errorf("parent %s with stored result %s, want both cancelled", after.Status, stored.Status)
	}
}
