package api_test

import (
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// pauseOf returns paused_by and paused_by_token of the job as a client reads them from
// GET /v1/jobs/{id}, "" for an absent field.
func (f *fixture) pauseOf(job api.Job) (by, token string) {
	f.t.Helper()
	var view map[string]any
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&view)
	by, _ = view["paused_by"].(string)
	token, _ = view["paused_by_token"].(string)
	return by, token
}

// wantPause checks the job's status in the database and who paused it in its JSON.
func (f *fixture) wantPause(name string, job api.Job, status store.JobStatus, by, token string) {
	f.t.Helper()
	if got := f.job(job.ID).Status; got != status {
		f.t.Errorf("%s: job is %s in the database, want %s", name, got, status)
	}
	gotBy, gotToken := f.pauseOf(job)
	if gotBy != by {
		f.t.Errorf("%s: paused_by %q, want %q", name, gotBy, by)
	}
	if gotToken != token {
		f.t.Errorf("%s: paused_by_token %q, want %q", name, gotToken, token)
	}
}

// wantHeld checks that the submitter's resume of job is forbidden with a detail that names
// the token whose pause holds it and who may resume it, and that the job stays paused.
func (f *fixture) wantHeld(name string, job api.Job, role, token string) {
	f.t.Helper()
	p := f.action(f.submitter, job, "resume").problem(403, api.TypeForbidden)
	wantDetail := "was paused by " + role + ` token "` + token + `", so an operator or admin must resume it`
	if !strings.Contains(p.Detail, wantDetail) {
		f.t.Errorf("%s: detail %q, want it to contain %q", name, p.Detail, wantDetail)
	}
	if !strings.Contains(p.Detail, job.ID.String()) {
		f.t.Errorf("%s: detail %q, want it to name job %s", name, p.Detail, job.ID)
	}
	if got := f.job(job.ID).Status; got != store.JobPaused {
		f.t.Errorf("%s: job is %s in the database after the forbidden resume, want paused", name, got)
	}
}

// An operator's pause holds the job: the submitter's resume is forbidden and changes
// nothing, and the operator's resume queues the job and clears the mark.
func TestOperatorPauseHoldsJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)

	f.action(f.operator, job, "pause").want(200)
	f.wantPause("after the operator's pause", job, store.JobPaused, "operator", "oncall")
	f.wantHeld("submitter's resume", job, "operator", "oncall")
	f.wantPause("after the forbidden resume", job, store.JobPaused, "operator", "oncall")
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'job.resume'`); n != 0 {
		t.Errorf("%d job.resume audit records after the forbidden resume, want 0", n)
	}

	f.action(f.operator, job, "resume").want(200)
	f.wantPause("after the operator's resume", job, store.JobQueued, "", "")
	if n := f.count(`SELECT count(*) FROM jobs WHERE id = $1 AND paused_by_role IS NOT NULL`, job.ID); n != 0 {
		t.Errorf("the resumed job keeps its pauser in the database, want it cleared")
	}
}

// An admin's pause holds the job as an operator's does, and an operator may resume it.
func TestAdminPauseHoldsJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)

	f.action(f.admin, job, "pause").want(200)
	f.wantHeld("submitter's resume", job, "admin", "root")
	f.action(f.operator, job, "resume").want(200)
	f.wantPause("after the operator's resume", job, store.JobQueued, "", "")
}

// A submitter's own pause holds nothing: the submitter resumes it.
func TestSubmitterResumesOwnPause(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)

	f.action(f.submitter, job, "pause").want(200)
	f.wantPause("after the submitter's pause", job, store.JobPaused, "submitter", "vision-ci")
	f.action(f.submitter, job, "resume").want(200)
	f.wantPause("after the submitter's resume", job, store.JobQueued, "", "")
}

// A submitter may change the priority of a held job, which stays held, and may cancel it,
// which ends the hold.
func TestSubmitterCancelsHeldJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	f.action(f.operator, job, "pause").want(200)

	f.do(f.submitter, "PATCH", "/v1/jobs/"+job.ID.String()+"/priority", `{"priority": 30}`).want(200)
	if got := f.job(job.ID).Priority; got != 30 {
		t.Errorf("priority %d after the submitter's change, want 30", got)
	}
	f.wantPause("after the priority change", job, store.JobPaused, "operator", "oncall")

	f.action(f.submitter, job, "cancel").want(200)
	f.wantPause("after the submitter's cancel", job, store.JobCancelled, "", "")
	if n := f.count(`SELECT count(*) FROM jobs WHERE id = $1 AND paused_by_role IS NOT NULL`, job.ID); n != 0 {
		t.Errorf("the cancelled job keeps its pauser in the database, want it cleared")
	}
}

// An operator's pause of a job that the submitter paused makes the pause the operator's
// hold, and a submitter's pause of a held job changes nothing.
func TestOperatorTakesOverSubmitterPause(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	f.action(f.submitter, job, "pause").want(200)

	f.action(f.operator, job, "pause").want(200)
	f.wantPause("after the operator's pause", job, store.JobPaused, "operator", "oncall")
	f.action(f.submitter, job, "pause").want(200)
	f.wantPause("after the submitter's second pause", job, store.JobPaused, "operator", "oncall")
	f.wantHeld("submitter's resume", job, "operator", "oncall")
}

// An hpo parent that an operator paused cannot be resumed by a submitter: the parent and
// the trials its pause paused stay paused. The operator's resume queues the trials.
func TestOperatorPauseHoldsHPOParent(t *testing.T) {
	f := setup(t)
	parent := f.hpoParent()
	trials := []api.Job{f.addTrial(parent), f.addTrial(parent)}
	f.startSearch(parent)
	f.action(f.operator, parent, "pause").want(200)

	f.wantHeld("submitter's resume of the parent", parent, "operator", "oncall")
	for _, trial := range trials {
		f.wantPause("trial after the forbidden resume", trial, store.JobPaused, "parent", "")
	}

	f.action(f.operator, parent, "resume").want(200)
	f.wantPause("parent after the operator's resume", parent, store.JobRunning, "", "")
	for _, trial := range trials {
		f.wantPause("trial after the operator's resume", trial, store.JobQueued, "", "")
	}
}

// A submitter's pause of an hpo parent holds nothing, and an operator's pause of the
// paused parent makes it the operator's hold, as for any job.
func TestOperatorTakesOverHPOParentPause(t *testing.T) {
	f := setup(t)
	parent := f.hpoParent()
	f.addTrial(parent)
	f.startSearch(parent)

	f.action(f.submitter, parent, "pause").want(200)
	f.wantPause("parent after the submitter's pause", parent, store.JobPaused, "submitter", "vision-ci")
	f.action(f.operator, parent, "pause").want(200)
	f.wantHeld("submitter's resume of the parent", parent, "operator", "oncall")
}
