package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// pendingApproval registers a model version and requests its promotion to prod as alice,
// as a job's workflow does.
func (s *apiSession) pendingApproval() store.Approval {
	s.t.Helper()
	db := s.openStore()
	version := s.registeredVersion()
	approval, err := db.RequestApproval(context.Background(), store.ApprovalRequest{ModelVersionID: version.ID,
		TargetStage: "prod", RequestedBy: "alice", Snapshot: json.RawMessage(`{"accuracy": 0.9}`),
		WorkflowID: "job-" + version.JobID.String()})
	if err != nil {
		s.t.Fatal(err)
	}
	return approval
}

// openStore opens the session's database, closed when the test ends.
func (s *apiSession) openStore() *store.Store {
	s.t.Helper()
	db, err := store.Open(context.Background(), s.env["SCHEDULERD_DATABASE_URL"], store.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(db.Close)
	return db
}

// registeredVersion runs a job of vision to completion and registers its version of model
// llama-ft.
func (s *apiSession) registeredVersion() store.ModelVersion {
	s.t.Helper()
	ctx := context.Background()
	db := s.openStore()
	s.ok("quota", "set", "vision", "-max-concurrent", "1")
	job := s.submit()

	admissions, err := db.Dequeue(ctx, store.CandidateWindow{Limit: 10}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 1}}, nil
	})
	if err != nil || len(admissions) != 1 {
		s.t.Fatalf("dequeue: %d admissions, err %v", len(admissions), err)
	}
	start := time.Now().Add(-time.Hour)
	if err := db.StartRun(ctx, admissions[0].RunID, start, "node-1"); err != nil {
		s.t.Fatal(err)
	}
	_, err = db.EndRun(ctx, store.RunEnd{RunID: admissions[0].RunID, Status: store.RunCompleted, EndedAt: start.Add(time.Minute)})
	if err != nil {
		s.t.Fatal(err)
	}
	version, err := db.RegisterModelVersion(ctx, store.NewVersion{ProjectID: "vision", ModelName: "llama-ft",
		Job: store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}, ArtifactURI: "s3://models/" + job.ID.String(),
		DatasetVersion: "ds-1", CodeCommit: "abc", EvalMetrics: map[string]float64{"accuracy": 0.9}})
	if err != nil {
		s.t.Fatal(err)
	}
	return version
}

// TestApprovalCommands lists, reads and decides a promotion request through the CLI, and
// checks that a decision needs a reason and is final.
func TestApprovalCommands(t *testing.T) {
	s := newProjectSession(t)
	request := s.pendingApproval()
	id := request.ID.String()

	lines := strings.Split(strings.TrimSpace(s.ok("approval", "list", "-status", "pending")), "\n")
	if len(lines) != 2 {
		t.Fatalf("approval list printed %d lines, want a header and one request:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if fields := strings.Fields(lines[1]); len(fields) != 8 || fields[0] != id ||
		strings.Join(fields[1:7], " ") != "vision llama-ft 1 prod pending alice" {
		t.Errorf("approval list row %q, want %s of vision's llama-ft version 1 to prod, pending, by alice", lines[1], id)
	}
	if got := strings.TrimSpace(s.ok("approval", "list", "-status", "approved")); strings.Contains(got, id) {
		t.Errorf("approval list -status approved printed the pending request:\n%s", got)
	}

	code, _, stderr := run(t, s.env, "approval", "approve", id)
	if code != 2 || !strings.Contains(stderr, "missing -reason") {
		t.Errorf("approve without a reason: exit %d, stderr %q; want exit 2 naming -reason", code, stderr)
	}
	decided := s.ok("approval", "approve", id, "-reason", "metrics above the bar")
	for _, want := range []string{"status         approved", "by root", "reason         metrics above the bar",
		`evaluation     {"accuracy":0.9}`} {
		if !strings.Contains(decided, want) {
			t.Errorf("approval approve printed:\n%s\nwant a line with %q", decided, want)
		}
	}
	if got := s.ok("approval", "get", id); !strings.Contains(got, "status         approved") {
		t.Errorf("approval get after the decision printed:\n%s", got)
	}

	code, _, stderr = run(t, s.env, "approval", "reject", id, "-reason", "changed my mind")
	if code != 1 || !strings.Contains(stderr, "409") {
		t.Errorf("reject after approve: exit %d, stderr %q; want exit 1 and the API's 409", code, stderr)
	}
	code, _, stderr = run(t, s.env, "approval", "get", "not-a-uuid")
	if code != 2 || !strings.Contains(stderr, `invalid approval id "not-a-uuid"`) {
		t.Errorf("approval get not-a-uuid: exit %d, stderr %q; want exit 2 naming the id", code, stderr)
	}
}

// TestApprovalRequestCommand requests the promotion of a version through the CLI. Its
// requester cannot approve it, and an operator of another owner approves it, which
// promotes the version.
func TestApprovalRequestCommand(t *testing.T) {
	s := newProjectSession(t)
	version := s.registeredVersion()
	id := version.ID.String()

	usage := []struct {
		args   []string
		stderr string
	}{
		{[]string{"approval", "request", id}, `invalid -stage "": want staging or prod`},
		{[]string{"approval", "request", id, "-stage", "dev"}, `invalid -stage "dev": want staging or prod`},
		{[]string{"approval", "request", "v1", "-stage", "prod"}, `invalid model version id "v1"`},
		{[]string{"approval", "request", "-stage", "prod"}, "usage: schedulerd approval request MODEL_VERSION_ID"},
	}
	for _, c := range usage {
		code, _, stderr := run(t, s.env, c.args...)
		if code != 2 || !strings.Contains(stderr, c.stderr) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.stderr)
		}
	}

	var request api.Approval
	created := s.ok("approval", "request", id, "-stage", "prod", "-o", "json")
	if err := json.Unmarshal([]byte(created), &request); err != nil {
		t.Fatal(err)
	}
	printed := s.ok("approval", "get", request.ID.String())
	for _, want := range []string{"to stage       prod", "status         pending", "by root", "workflow       -",
		`"current_stage":"dev"`} {
		if !strings.Contains(printed, want) {
			t.Errorf("approval get printed:\n%s\nwant a line with %q", printed, want)
		}
	}
	code, _, stderr := run(t, s.env, "approval", "request", id, "-stage", "prod")
	if code != 1 || !strings.Contains(stderr, "409") || !strings.Contains(stderr, request.ID.String()) {
		t.Errorf("second request: exit %d, stderr %q; want exit 1, the API's 409 and the pending approval's id",
			code, stderr)
	}
	code, _, stderr = run(t, s.env, "approval", "approve", request.ID.String(), "-reason", "mine")
	if code != 1 || !strings.Contains(stderr, "403") {
		t.Errorf("approval by the requester: exit %d, stderr %q; want exit 1 and the API's 403", code, stderr)
	}

	var olga struct{ Secret string }
	token := s.ok("token", "create", "-name", "olga", "-role", "operator", "-o", "json")
	if err := json.Unmarshal([]byte(token), &olga); err != nil {
		t.Fatal(err)
	}
	decided := s.ok("approval", "approve", request.ID.String(), "-reason", "accuracy 0.9", "-token", olga.Secret)
	if !strings.Contains(decided, "status         approved") {
		t.Errorf("approval approve printed:\n%s\nwant status approved", decided)
	}
	promoted, err := s.openStore().GetModelVersion(context.Background(), version.ID)
	if err != nil {
		t.Fatal(err)
	}
	if promoted.Stage != "prod" {
		t.Errorf("version is %s after the approval, want prod", promoted.Stage)
	}
}
