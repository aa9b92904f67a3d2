package dispatcher_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// The pause of an hpo parent stops its running trials' pods as a single job's pause does:
// each run ends cancelled with the reason "job paused" once its pod is gone, and the trial
// stays paused. The parent's resume queues the trials again, and the trial that reported a
// checkpoint resumes from it.
func TestPauseHPOParentStopsTrialPods(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)
	ctx := context.Background()

	parentSub := daemontest.NewSubmission("vision", 50, gpuSpec(model, 1, nil))
	parentSub.JobType = "hpo"
	parent, err := h.Store.SubmitJob(ctx, parentSub)
	if err != nil {
		t.Fatal(err)
	}
	var trials []store.Job
	for range 2 {
		sub := daemontest.NewSubmission("vision", 50, gpuSpec(model, 1, nil))
		sub.Parent = &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}
		trial, err := h.Store.SubmitJob(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		trials = append(trials, trial)
	}
	if err := h.Store.SetParentStatus(ctx, parent.Ref(), store.JobSubmitted, store.JobRunning, ""); err != nil {
		t.Fatal(err)
	}
	var runs []store.Run
	for _, trial := range trials {
		runs = append(runs, waitRun(t, h, trial.ID, 1, "running", runStatus(store.RunRunning)))
	}
	setCheckpoint(t, h, runs[0], "s3://ckpt/trial/step-100")

	if _, err := h.Store.MoveHPOParent(ctx, parent.Ref(), store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	for i, trial := range trials {
		ended := waitRun(t, h, trial.ID, 1, "cancelled", runStatus(store.RunCancelled))
		if ended.EndReason == nil || *ended.EndReason != "job paused" {
			t.Errorf("run of trial %d ended with reason %v, want job paused", i, ended.EndReason)
		}
		waitPodGone(t, ended)
		if got, _ := h.Store.GetJob(ctx, trial.ID); got.Status != store.JobPaused {
			t.Errorf("trial %d is %s once its pod is gone, want paused", i, got.Status)
		}
	}

	if _, err := h.Store.MoveHPOParent(ctx, parent.Ref(), store.JobPaused, store.JobRunning, time.Now(), nil); err != nil {
		var live *store.TrialRunLiveError
		t.Fatalf("resume once the trials' runs ended: %v (a trial still live: %t)", err, errors.As(err, &live))
	}
	second := waitRun(t, h, trials[0].ID, 2, "running", runStatus(store.RunRunning))
	pod, err := podOf(t, second)
	if err != nil {
		t.Fatal(err)
	}
	if got := pod.Annotations[dispatcher.AnnotationResumeFrom]; got != "s3://ckpt/trial/step-100" {
		t.Errorf("trial's second pod resumes from %q, want its checkpoint s3://ckpt/trial/step-100", got)
	}
	waitRun(t, h, trials[1].ID, 2, "running", runStatus(store.RunRunning))
}
