package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// hpoParent submits an hpo job through the API, as a daemon with workflows accepts it.
func (f *fixture) hpoParent() api.Job {
	f.t.Helper()
	f.useWorkflows()
	var parent api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", hpoBody()).want(201).decode(&parent)
	return parent
}

// addTrial submits one trial of parent, a one-GPU job on A10, as the parent's workflow does.
func (f *fixture) addTrial(parent api.Job) api.Job {
	f.t.Helper()
	config, err := json.Marshal(fineTune(1))
	if err != nil {
		f.t.Fatal(err)
	}
	trial, err := f.store.SubmitJob(context.Background(), store.Submission{
		ProjectID: "vision", JobType: "fine_tune", Priority: 5, Config: config,
		Parent:   &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt},
		GPUMilli: 1000, GPUModels: []string{"A10"}, MaxRuntimeSeconds: 3600, MaxAttempts: 3,
		MaxPreemptions: 20, CPUMilli: 4000, MemoryMiB: 16384,
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return api.Job{ID: trial.ID, CreatedAt: trial.CreatedAt}
}

// startSearch moves parent to running once its trials exist, as its workflow does.
func (f *fixture) startSearch(parent api.Job) {
	f.t.Helper()
	ref := store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}
	if err := f.store.SetParentStatus(context.Background(), ref, store.JobSubmitted, store.JobRunning, ""); err != nil {
		f.t.Fatal(err)
	}
}

// pausedSearch is an hpo parent with three trials: the first running with the returned
// run, the second queued and the third paused by an operator on its own.
func (f *fixture) pausedSearch() (api.Job, []api.Job, store.Admission) {
	f.t.Helper()
	parent := f.hpoParent()
	trials := []api.Job{f.addTrial(parent)}
	admissions := f.admit()
	if len(admissions) != 1 {
		f.t.Fatalf("admitted %d trials, want the first one", len(admissions))
	}
	trials = append(trials, f.addTrial(parent), f.addTrial(parent))
	f.startSearch(parent)
	f.action(f.operator, trials[2], "pause").want(200)
	return parent, trials, admissions[0]
}

// getJob reads a job through the API.
func (f *fixture) getJob(job api.Job) api.Job {
	f.t.Helper()
	var got api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&got)
	return got
}

// wantTrial checks a trial's status and paused_by_parent as the API shows them.
func (f *fixture) wantTrial(name string, trial api.Job, status store.JobStatus, byParent bool) {
	f.t.Helper()
	got := f.getJob(trial)
	if got.Status != string(status) {
		f.t.Errorf("%s is %s, want %s", name, got.Status, status)
	}
	if got.PausedByParent != byParent {
		f.t.Errorf("%s paused_by_parent %t, want %t", name, got.PausedByParent, byParent)
	}
}

// Pausing an hpo parent pauses its running and queued trials with it, marked as paused by
// the parent, and audits each change. Resuming it queues those trials again once the
// running one's run has stopped, and leaves the trial an operator paused on its own paused.
func TestPauseAndResumeHPOParent(t *testing.T) {
	f := setup(t)
	parent, trials, run := f.pausedSearch()

	var paused api.Job
	f.action(f.operator, parent, "pause").want(200).decode(&paused)

	if paused.Status != "paused" {
		t.Errorf("parent %s after the pause, want paused", paused.Status)
	}
	f.wantTrial("running trial", trials[0], store.JobPaused, true)
	f.wantTrial("queued trial", trials[1], store.JobPaused, true)
	f.wantTrial("trial paused by hand", trials[2], store.JobPaused, false)
	if got := f.explain(f.submitter, trials[1]).Blockers; fmt.Sprint(got) != fmt.Sprint([]string{api.BlockerPausedByParent}) {
		t.Errorf("blockers of a trial the parent paused %q, want %q", got, api.BlockerPausedByParent)
	}
	wantBlockers := []string{api.BlockerPausedSearch, api.BlockerPauseHeld}
	if got := f.explain(f.submitter, parent).Blockers; fmt.Sprint(got) != fmt.Sprint(wantBlockers) {
		t.Errorf("blockers of the paused parent %q, want %q", got, wantBlockers)
	}
	f.action(f.operator, parent, "pause").want(200)

	p := f.action(f.operator, parent, "resume").problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "trial "+trials[0].ID.String()) || !strings.Contains(p.Detail, "retry") {
		t.Errorf("resume while the running trial stops: detail %q, want it to name trial %s and to retry",
			p.Detail, trials[0].ID)
	}
	// The dispatcher ends the stopped run, as for any paused job.
	_, err := f.store.EndRun(context.Background(), store.RunEnd{RunID: run.RunID, Status: store.RunCancelled,
		EndedAt: time.Now(), Reason: "job paused"})
	if err != nil {
		t.Fatal(err)
	}
	var resumed api.Job
	f.action(f.operator, parent, "resume").want(200).decode(&resumed)

	if resumed.Status != "running" {
		t.Errorf("parent %s after the resume, want running", resumed.Status)
	}
	f.wantTrial("trial that ran", trials[0], store.JobQueued, false)
	f.wantTrial("trial that was queued", trials[1], store.JobQueued, false)
	f.wantTrial("trial paused by hand", trials[2], store.JobPaused, false)
	f.action(f.submitter, parent, "resume").want(200)
}

// The pause of an hpo parent is audited like any job action, with one record for the
// parent and one for each trial it paused.
func TestPauseHPOParentAudited(t *testing.T) {
	f := setup(t)
	parent, trials, _ := f.pausedSearch()
	f.action(f.operator, parent, "pause").want(200)

	audit := f.projectAudit("vision")
	records := map[string]api.AuditRecord{}
	var got []string
	for _, r := range audit.Records {
		if r.Action == "job.pause" && r.Actor == "oncall" {
			got = append(got, r.JobID.String())
			records[r.JobID.String()] = r
		}
	}
	// Newest first: the parent's record, written last, then its trials', then the record
	// of the trial paused by hand before.
	want := []string{parent.ID.String(), trials[1].ID.String(), trials[0].ID.String(), trials[2].ID.String()}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("job.pause records of jobs %v, want %v", got, want)
	}
	wantJSON(t, "parent after", records[parent.ID.String()].After,
		`{"status": "paused", "priority": 5, "paused_by": "operator", "trials_moved": 2}`)
	wantJSON(t, "running trial before", records[trials[0].ID.String()].Before, `{"status": "running", "priority": 5}`)
	wantJSON(t, "queued trial before", records[trials[1].ID.String()].Before, `{"status": "queued", "priority": 5}`)
	wantJSON(t, "trial after", records[trials[1].ID.String()].After,
		`{"status": "paused", "priority": 5, "paused_by_parent": true}`)
}

// A trial of a paused hpo parent cannot be resumed on its own. An operator's pause of a
// trial that the parent paused makes the pause the operator's hold, so the parent's resume
// leaves the trial paused and only an operator or admin can resume it.
func TestTrialOfPausedHPOParent(t *testing.T) {
	f := setup(t)
	parent := f.hpoParent()
	trials := []api.Job{f.addTrial(parent), f.addTrial(parent)}
	f.startSearch(parent)
	f.action(f.operator, parent, "pause").want(200)

	p := f.action(f.submitter, trials[0], "resume").problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "hpo job "+parent.ID.String()) || !strings.Contains(p.Detail, "resume the parent") {
		t.Errorf("resume of a trial of a paused parent: detail %q, want it to name the parent and the way out", p.Detail)
	}
	// The parent is the operator's hold, so the way out is an operator's resume of it.
	wantHold := `which operator token "oncall" paused: an operator or admin must resume the parent first`
	if !strings.Contains(p.Detail, wantHold) {
		t.Errorf("submitter's resume of a trial of a held parent: detail %q, want it to contain %q", p.Detail, wantHold)
	}
	var pausedByOperator api.Job
	f.action(f.operator, trials[0], "pause").want(200).decode(&pausedByOperator)
	if pausedByOperator.Status != "paused" {
		t.Errorf("trial after an operator's pause is %s, want paused", pausedByOperator.Status)
	}
	if pausedByOperator.PausedByParent {
		t.Error("trial after an operator's pause is still marked paused_by_parent, want the operator's own pause")
	}
	if pausedByOperator.PausedBy != api.PausedByOperator {
		t.Errorf("trial after an operator's pause has paused_by %q, want %q", pausedByOperator.PausedBy,
			api.PausedByOperator)
	}

	f.action(f.operator, parent, "resume").want(200)
	f.wantTrial("trial the operator paused", trials[0], store.JobPaused, false)
	f.wantTrial("other trial", trials[1], store.JobQueued, false)
	wantBlockers := []string{api.BlockerPaused, api.BlockerPauseHeld}
	if got := f.explain(f.submitter, trials[0]).Blockers; fmt.Sprint(got) != fmt.Sprint(wantBlockers) {
		t.Errorf("blockers of the trial the operator paused %q, want %q", got, wantBlockers)
	}
	f.wantHeld("submitter's resume of the trial the operator paused", trials[0], "operator", "oncall")
	f.action(f.operator, trials[0], "resume").want(200)
	f.wantTrial("trial after the operator's resume", trials[0], store.JobQueued, false)
}

// Cancelling a paused hpo parent cancels all of its trials that have not ended, those the
// parent paused and the one an operator paused, in the same request.
func TestCancelPausedHPOParent(t *testing.T) {
	f := setup(t)
	parent, trials, _ := f.pausedSearch()
	f.action(f.operator, parent, "pause").want(200)

	var cancelled api.Job
	f.action(f.submitter, parent, "cancel").want(200).decode(&cancelled)

	if cancelled.Status != "cancelled" || cancelled.CompletedAt == nil {
		t.Errorf("parent %s with completed_at %v, want cancelled with a completion time",
			cancelled.Status, cancelled.CompletedAt)
	}
	for i, trial := range trials {
		f.wantTrial(fmt.Sprintf("trial %d", i), trial, store.JobCancelled, false)
	}
	if n := f.count(`SELECT count(*) FROM job_queue`); n != 0 {
		t.Errorf("%d job_queue rows after the cancel, want 0", n)
	}
}
