package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

func submitterAudit(action string) *store.Audit {
	return &store.Audit{Actor: store.Actor{Name: "vision-ci", Role: store.RoleSubmitter}, Action: action,
		At: time.Now()}
}

// wantPausedBy checks the job's status and pauser in the database, "" for none.
func wantPausedBy(t *testing.T, s *store.Store, name string, job store.Job, status store.JobStatus,
	role store.Role, token string) {
	t.Helper()
	got, err := s.GetJob(context.Background(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != status {
		t.Errorf("%s is %s, want %s", name, got.Status, status)
	}
	var gotRole store.Role
	var gotToken string
	if got.PausedByRole != nil {
		gotRole = *got.PausedByRole
	}
	if got.PausedByToken != nil {
		gotToken = *got.PausedByToken
	}
	if gotRole != role || gotToken != token {
		t.Errorf("%s paused by %q token %q, want %q token %q", name, gotRole, gotToken, role, token)
	}
}

// wantHeld checks that err is the PauseHeldError of job under oncall's operator pause.
func wantHeld(t *testing.T, what string, err error, job store.Job) {
	t.Helper()
	var held *store.PauseHeldError
	if !errors.As(err, &held) {
		t.Fatalf("%s: %v, want a PauseHeldError", what, err)
	}
	if held.Job != job.ID || held.Role != store.RoleOperator || held.Token != "oncall" {
		t.Errorf("%s: held job %s by %s token %q, want job %s by operator token \"oncall\"", what, held.Job,
			held.Role, held.Token, job.ID)
	}
}

// The guarded statement itself holds an operator's pause: a submitter's resume changes no
// row, even when the caller read the job before the operator's pause took it over, while
// the submitter's cancel goes through and clears the pauser.
func TestResumeOfHeldJobChangesNothing(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobPaused, time.Now(),
		submitterAudit("job.pause")); err != nil {
		t.Fatal(err)
	}
	wantPausedBy(t, s, "job after the submitter's pause", job, store.JobPaused, store.RoleSubmitter, "vision-ci")
	// The submitter's resume below acts on this read, which the operator's claim makes stale.
	if _, err := s.ClaimPause(ctx, job.Ref(), operatorAudit("job.pause")); err != nil {
		t.Fatal(err)
	}

	_, err = s.SetJobStatus(ctx, job.Ref(), store.JobPaused, store.JobQueued, time.Now(), submitterAudit("job.resume"))
	wantHeld(t, "submitter's resume", err, job)
	wantPausedBy(t, s, "job after the submitter's resume", job, store.JobPaused, store.RoleOperator, "oncall")
	if n := countRows(t, s, `SELECT count(*) FROM job_queue`); n != 0 {
		t.Errorf("%d job_queue rows after the held resume, want 0", n)
	}
	if n := countRows(t, s, `SELECT count(*) FROM audit_log WHERE action = 'job.resume'`); n != 0 {
		t.Errorf("%d job.resume audit records after the held resume, want 0", n)
	}

	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobPaused, store.JobCancelled, time.Now(),
		submitterAudit("job.cancel")); err != nil {
		t.Fatalf("submitter's cancel of the held job: %v", err)
	}
	wantPausedBy(t, s, "job after the submitter's cancel", job, store.JobCancelled, "", "")
}

// An operator lifts the hold with a resume, which clears the pauser, and so does a caller
// without a token (nil audit).
func TestResumeOfHeldJobByOperator(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	for name, audit := range map[string]*store.Audit{"operator": operatorAudit("job.resume"), "no token": nil} {
		job, err := s.SubmitJob(ctx, submission(""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobPaused, time.Now(),
			operatorAudit("job.pause")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobPaused, store.JobQueued, time.Now(), audit); err != nil {
			t.Errorf("resume by %s: %v", name, err)
		}
		wantPausedBy(t, s, "job after the resume by "+name, job, store.JobQueued, "", "")
	}
}

// The resume of an hpo parent that an operator paused changes nothing for a submitter: the
// parent and the trials its pause paused stay paused.
func TestResumeOfHeldHPOParentChangesNothing(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	h := newSearch(t, s, 2)
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}

	_, err := s.MoveHPOParent(ctx, h.parent.Ref(), store.JobPaused, store.JobRunning, time.Now(),
		submitterAudit("job.resume"))
	wantHeld(t, "submitter's resume of the parent", err, h.parent)
	wantPausedBy(t, s, "parent after the held resume", h.parent, store.JobPaused, store.RoleOperator, "oncall")
	for _, trial := range h.trials {
		wantJob(t, s, "trial after the held resume", trial, store.JobPaused, true)
	}
	if n := countRows(t, s, `SELECT count(*) FROM audit_log WHERE action = 'job.resume'`); n != 0 {
		t.Errorf("%d job.resume audit records after the held resume, want 0", n)
	}

	if _, err := moveParent(s, h, store.JobPaused, store.JobRunning, "job.resume"); err != nil {
		t.Fatalf("operator's resume of the parent: %v", err)
	}
	wantPausedBy(t, s, "parent after the operator's resume", h.parent, store.JobRunning, "", "")
}

// ClaimPause takes over a pause without a hold for an operator, with the change audited,
// and changes nothing for a submitter or once the job is held.
func TestClaimPause(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobPaused, time.Now(),
		submitterAudit("job.pause")); err != nil {
		t.Fatal(err)
	}

	if _, err := s.ClaimPause(ctx, job.Ref(), submitterAudit("job.pause")); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("submitter's claim of its own pause: %v, want ErrStaleStatus", err)
	}
	claimed, err := s.ClaimPause(ctx, job.Ref(), operatorAudit("job.pause"))
	if err != nil {
		t.Fatal(err)
	}
	if !claimed.PauseHeld() {
		t.Error("job after the operator's claim is not held, want held")
	}
	wantPausedBy(t, s, "job after the operator's claim", job, store.JobPaused, store.RoleOperator, "oncall")
	if _, err := s.ClaimPause(ctx, job.Ref(), operatorAudit("job.pause")); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("second claim of a held job: %v, want ErrStaleStatus", err)
	}

	records, err := s.ListAudit(ctx, store.AuditFilter{ProjectID: "vision", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 2 {
		t.Fatalf("%d audit records, want the submitter's pause and the operator's claim", len(records))
	}
	claim := string(records[0].Before) + " -> " + string(records[0].After)
	want := `{"status": "paused", "priority": 7, "paused_by": "submitter"} -> ` +
		`{"status": "paused", "priority": 7, "paused_by": "operator"}`
	if !sameJSONPair(t, claim, want) {
		t.Errorf("audit of the claim: %s, want %s", claim, want)
	}
}

// auditPairs returns the project's audit records of action as "before -> after", oldest
// first.
func auditPairs(t *testing.T, s *store.Store, action string) []string {
	t.Helper()
	records, err := s.ListAudit(context.Background(), store.AuditFilter{ProjectID: "vision", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	var pairs []string
	for i := len(records) - 1; i >= 0; i-- {
		if records[i].Action == action {
			pairs = append(pairs, string(records[i].Before)+" -> "+string(records[i].After))
		}
	}
	return pairs
}

// wantAuditPair checks that the only audit record of action is the pair want.
func wantAuditPair(t *testing.T, s *store.Store, action, want string) {
	t.Helper()
	pairs := auditPairs(t, s, action)
	if len(pairs) != 1 {
		t.Fatalf("%d %s audit records, want 1", len(pairs), action)
	}
	if !sameJSONPair(t, pairs[0], want) {
		t.Errorf("audit of %s: %s, want %s", action, pairs[0], want)
	}
}

// The before image of a change to a held job names the hold, so that the audit log shows
// a priority change that kept the hold and a resume that lifted it.
func TestHeldJobAuditNamesPauser(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job, err := s.SubmitJob(ctx, submission(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobQueued, store.JobPaused, time.Now(),
		operatorAudit("job.pause")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobPriority(ctx, job.Ref(), store.JobPaused, 9, submitterAudit("job.priority")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetJobStatus(ctx, job.Ref(), store.JobPaused, store.JobQueued, time.Now(),
		operatorAudit("job.resume")); err != nil {
		t.Fatal(err)
	}

	wantAuditPair(t, s, "job.priority", `{"status": "paused", "priority": 7, "paused_by": "operator"} -> `+
		`{"status": "paused", "priority": 9, "paused_by": "operator"}`)
	wantAuditPair(t, s, "job.resume", `{"status": "paused", "priority": 9, "paused_by": "operator"} -> `+
		`{"status": "queued", "priority": 9}`)
}

// The before image of the resume of a held hpo parent names the hold that it lifted.
func TestHeldHPOParentAuditNamesPauser(t *testing.T) {
	s := setup(t)
	h := newSearch(t, s, 1)
	if _, err := moveParent(s, h, store.JobRunning, store.JobPaused, "job.pause"); err != nil {
		t.Fatal(err)
	}
	if _, err := moveParent(s, h, store.JobPaused, store.JobRunning, "job.resume"); err != nil {
		t.Fatal(err)
	}

	var parentPair string
	records, err := s.ListAudit(context.Background(), store.AuditFilter{ProjectID: "vision", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range records {
		if r.Action == "job.resume" && r.JobID != nil && *r.JobID == h.parent.ID {
			parentPair = string(r.Before) + " -> " + string(r.After)
		}
	}
	want := `{"status": "paused", "priority": 7, "paused_by": "operator"} -> ` +
		`{"status": "running", "priority": 7, "trials_moved": 1}`
	if !sameJSONPair(t, parentPair, want) {
		t.Errorf("audit of the parent's resume: %q, want %s", parentPair, want)
	}
}
