package api_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// admit runs one dequeue with the scheduler's policy and returns the new runs.
func (f *fixture) admit() []store.Admission {
	f.t.Helper()
	policy := scheduler.Policy{StarvationBound: time.Hour}
	admissions, err := f.store.Dequeue(context.Background(), store.CandidateWindow{Limit: 100}, policy.Decide)
	if err != nil {
		f.t.Fatal(err)
	}
	return admissions
}

func (f *fixture) action(token string, job api.Job, action string) response {
	f.t.Helper()
	return f.do(token, "POST", "/v1/jobs/"+job.ID.String()+"/"+action, nil)
}

func TestJobActions(t *testing.T) {
	steps := []struct {
		action     string
		wantStatus int
		wantJob    string
	}{
		{"pause", 200, "paused"},
		{"pause", 200, "paused"},
		{"resume", 200, "queued"},
		{"resume", 200, "queued"},
		{"cancel", 200, "cancelled"},
		{"cancel", 200, "cancelled"},
		{"pause", 409, "cancelled"},
		{"resume", 409, "cancelled"},
	}
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)

	for i, step := range steps {
		resp := f.action(f.submitter, job, step.action)
		if resp.status != step.wantStatus {
			t.Fatalf("step %d %s: status %d, want %d: %s", i, step.action, resp.status, step.wantStatus, resp.body)
		}
		if got := f.job(job.ID).Status; string(got) != step.wantJob {
			t.Errorf("step %d %s: job %s, want %s", i, step.action, got, step.wantJob)
		}
	}
}

// TestJobActionRejectsBodyFields: cancel, pause, resume and undrain read no body, so a
// field such as a reason is a 400 naming it and the job or queue stays as it was, while an
// empty body or {} is accepted.
func TestJobActionRejectsBodyFields(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	for _, action := range []string{"cancel", "pause", "resume"} {
		path := "/v1/jobs/" + job.ID.String() + "/" + action
		p := f.do(f.submitter, "POST", path, map[string]any{"reason": "budget cut"}).
			problem(400, api.TypeInvalidRequest)
		if p.Field != "reason" {
			t.Errorf("%s: field %q, want reason", action, p.Field)
		}
		if got := f.job(job.ID).Status; got != store.JobQueued {
			t.Errorf("%s: job %s, want queued", action, got)
		}
	}
	p := f.do(f.operator, "POST", "/v1/queues/vision/undrain", map[string]any{"force": true}).
		problem(400, api.TypeInvalidRequest)
	if p.Field != "force" {
		t.Errorf("undrain: field %q, want force", p.Field)
	}

	f.do(f.submitter, "POST", "/v1/jobs/"+job.ID.String()+"/pause", "{}").want(200)
	f.do(f.submitter, "POST", "/v1/jobs/"+job.ID.String()+"/resume", "").want(200)
	f.do(f.operator, "POST", "/v1/queues/vision/undrain", "{}").want(200)
	if got := f.job(job.ID).Status; got != store.JobQueued {
		t.Errorf("job %s after pause and resume, want queued", got)
	}
}

func TestCancelRunningJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	if n := len(f.admit()); n != 1 {
		t.Fatalf("admitted %d jobs, want 1", n)
	}

	var got api.Job
	f.action(f.submitter, job, "cancel").want(200).decode(&got)
	if got.Status != "cancelled" || got.CompletedAt == nil {
		t.Errorf("job %s with completed_at %v, want cancelled with a completion time", got.Status, got.CompletedAt)
	}
}

func TestResumeWaitsForLiveRun(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	admissions := f.admit()
	f.action(f.submitter, job, "pause").want(200)

	p := f.action(f.submitter, job, "resume").problem(409, api.TypeConflict)
	if p.Detail == "" {
		t.Error("409 without a detail")
	}

	// The dispatcher stops the run of a paused job; then the job may go back to the queue.
	_, err := f.store.EndRun(context.Background(), store.RunEnd{RunID: admissions[0].RunID,
		Status: store.RunCancelled, EndedAt: time.Now(), Reason: "job paused"})
	if err != nil {
		t.Fatal(err)
	}
	f.action(f.submitter, job, "resume").want(200)
	if got := f.job(job.ID).Status; got != store.JobQueued {
		t.Errorf("job %s, want queued", got)
	}
}

func TestSetPriority(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	path := "/v1/jobs/" + job.ID.String() + "/priority"

	var got api.Job
	f.do(f.submitter, "PATCH", path, `{"priority": 40}`).want(200).decode(&got)
	if got.Priority != 40 {
		t.Errorf("priority %d, want 40", got.Priority)
	}
	if n := f.count(`SELECT priority FROM job_queue WHERE job_id = $1`, job.ID); n != 40 {
		t.Errorf("job_queue priority %d, want 40", n)
	}

	cases := []struct {
		name, token, body string
		status            int
		field             string
	}{
		{"above tier", f.submitter, `{"priority": 51}`, 422, "priority"},
		{"out of range", f.operator, `{"priority": 101}`, 400, "priority"},
		{"missing", f.operator, `{}`, 400, "priority"},
		{"other project", f.audioSubmitter, `{"priority": 1}`, 404, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			resp := f.do(c.token, "PATCH", path, c.body).want(c.status)
			var p api.Problem
			resp.decode(&p)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
		})
	}
	f.t = t

	f.do(f.operator, "PATCH", path, `{"priority": 95}`).want(200)
	f.action(f.submitter, job, "cancel").want(200)
	f.do(f.operator, "PATCH", path, `{"priority": 1}`).problem(409, api.TypeConflict)
}

// Job actions are audited for every role: an operator's pause, and a submitter's priority
// change of the paused job and resume of its own pause.
func TestJobActionsAudited(t *testing.T) {
	f := setup(t)
	mine := f.submit(f.submitter, "vision", 5)
	theirs := f.submit(f.submitter, "vision", 5)

	f.action(f.submitter, mine, "pause").want(200)
	f.action(f.operator, theirs, "pause").want(200)
	f.do(f.submitter, "PATCH", "/v1/jobs/"+theirs.ID.String()+"/priority", `{"priority": 9}`).want(200)
	f.action(f.submitter, mine, "resume").want(200)

	audit := f.projectAudit("vision")
	var actions []string
	for _, r := range audit.Records {
		actions = append(actions, fmt.Sprintf("%s by %s (%s)", r.Action, r.Actor, r.Role))
	}
	want := "[job.resume by vision-ci (submitter) job.priority by vision-ci (submitter) " +
		"job.pause by oncall (operator) job.pause by vision-ci (submitter)]"
	if fmt.Sprint(actions) != want {
		t.Fatalf("audit %v, want %s", actions, want)
	}
	pause := audit.Records[2]
	if pause.JobID == nil || *pause.JobID != theirs.ID {
		t.Errorf("pause record's job %v, want %s", pause.JobID, theirs.ID)
	}
	wantJSON(t, "before", pause.Before, `{"priority":5,"status":"queued"}`)
	wantJSON(t, "after", pause.After, `{"priority":5,"status":"paused","paused_by":"operator"}`)
	wantJSON(t, "priority before", audit.Records[1].Before,
		`{"priority":5,"status":"paused","paused_by":"operator"}`)
	wantJSON(t, "priority after", audit.Records[1].After,
		`{"priority":9,"status":"paused","paused_by":"operator"}`)
	wantJSON(t, "own pause after", audit.Records[3].After,
		`{"priority":5,"status":"paused","paused_by":"submitter"}`)
	wantJSON(t, "resume before", audit.Records[0].Before,
		`{"priority":5,"status":"paused","paused_by":"submitter"}`)
	wantJSON(t, "resume after", audit.Records[0].After, `{"priority":5,"status":"queued"}`)
}

// TestStaffSubmissionAudited: a submission by an operator, which may exceed the project's
// priority tier, is audited like the operator's priority changes, and a submitter's is not.
func TestStaffSubmissionAudited(t *testing.T) {
	f := setup(t)
	f.submit(f.submitter, "vision", 5)
	staff := f.submit(f.operator, "vision", 90)

	audit := f.projectAudit("vision")
	if len(audit.Records) != 1 {
		t.Fatalf("%d audit records, want 1 (the operator's submission only): %+v", len(audit.Records), audit.Records)
	}
	record := audit.Records[0]
	if record.Action != "job.submit" {
		t.Errorf("action %q, want job.submit", record.Action)
	}
	if record.Actor != "oncall" || record.Role != "operator" {
		t.Errorf("actor %q (%s), want oncall (operator)", record.Actor, record.Role)
	}
	if record.JobID == nil || *record.JobID != staff.ID {
		t.Errorf("job %v, want %s", record.JobID, staff.ID)
	}
	wantJSON(t, "before", record.Before, `null`)
	wantJSON(t, "after", record.After, `{"priority":90,"status":"queued"}`)
}
