package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/store"
)

// pendingApproval runs a job of vision to completion, registers its model version and
// requests the version's promotion to prod as alice, as a job's workflow does.
func (s *apiSession) pendingApproval() store.Approval {
	s.t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, s.env["SCHEDULERD_DATABASE_URL"], store.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
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
	approval, err := db.RequestApproval(ctx, store.ApprovalRequest{ModelVersionID: version.ID, TargetStage: "prod",
		RequestedBy: "alice", Snapshot: json.RawMessage(`{"accuracy": 0.9}`)})
	if err != nil {
		s.t.Fatal(err)
	}
	return approval
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
