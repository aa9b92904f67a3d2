package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/schedulerd/schedulerd/store"
)

// ownedToken stores a token named name of owner ("" for the default, the name).
func ownedToken(t *testing.T, s *store.Store, name, owner string, role store.Role) store.Token {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	token, err := s.CreateToken(context.Background(), store.Token{Name: name, Owner: owner, Role: role,
		CreatedAt: time.Now()}, sum[:], nil)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func actorOf(token store.Token) store.Actor {
	return store.Actor{TokenID: &token.ID, Name: token.Name, Owner: token.Owner, Role: token.Role}
}

// requestAsSubmitter submits a job as token, registers its model and requests the
// version's promotion with the job's submitter and owner, as the job's workflow does.
func requestAsSubmitter(t *testing.T, s *store.Store, token store.Token) store.Approval {
	t.Helper()
	ctx := context.Background()
	sub := submission("")
	sub.SubmittedBy, sub.SubmitterOwner = token.Name, token.Owner
	job, err := s.SubmitJob(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	if job.SubmitterOwner == nil || *job.SubmitterOwner != token.Owner {
		t.Fatalf("job's submitter owner %v, want %q", job.SubmitterOwner, token.Owner)
	}
	version := register(t, s, job.Ref(), "resnet")
	approval, err := s.RequestApproval(ctx, store.ApprovalRequest{ModelVersionID: version.ID,
		TargetStage: "prod", RequestedBy: *job.SubmittedBy, RequesterOwner: *job.SubmitterOwner,
		Snapshot: json.RawMessage(`{"accuracy": 0.9}`), WorkflowID: "job-" + job.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	return approval
}

func decideAs(s *store.Store, approval store.Approval, actor store.Actor) (store.Approval, error) {
	return s.DecideApproval(context.Background(), store.ApprovalDecision{ApprovalID: approval.ID, Approve: true,
		Reason: "good", Audit: &store.Audit{Actor: actor, Action: "approval.approve", At: time.Now()}})
}

// A second token of the requester's owner, under another name, cannot decide the request.
// A token of another owner can, and the approval records both owners.
func TestSecondTokenOfOwnerCannotDecide(t *testing.T) {
	s := setup(t)
	alice := ownedToken(t, s, "alice", "", store.RoleOperator)
	aliceOps := ownedToken(t, s, "alice-ops", "alice", store.RoleOperator)
	olga := ownedToken(t, s, "olga", "", store.RoleOperator)
	approval := requestAsSubmitter(t, s, alice)
	if approval.RequesterOwner != "alice" {
		t.Errorf("requester owner %q, want alice", approval.RequesterOwner)
	}

	_, err := decideAs(s, approval, actorOf(aliceOps))
	if !errors.Is(err, store.ErrSelfApproval) {
		t.Errorf("decision by alice-ops of owner alice: %v, want ErrSelfApproval", err)
	}
	got, err := s.GetApproval(context.Background(), approval.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "pending" {
		t.Errorf("status %q after the refused decision, want pending", got.Status)
	}

	decided, err := decideAs(s, approval, actorOf(olga))
	if err != nil {
		t.Fatal(err)
	}
	if decided.DecidedBy == nil || *decided.DecidedBy != "olga" {
		t.Errorf("decided by %v, want olga", decided.DecidedBy)
	}
	if decided.DeciderOwner == nil || *decided.DeciderOwner != "olga" {
		t.Errorf("decider owner %v, want olga", decided.DeciderOwner)
	}
}

// A token stored without an owner is its own owner, under its name.
func TestTokenOwnerDefaultsToName(t *testing.T) {
	s := setup(t)
	created := ownedToken(t, s, "ci", "", store.RoleAdmin)
	if created.Owner != "ci" {
		t.Errorf("owner of a token created without one: %q, want its name ci", created.Owner)
	}
	tokens, err := s.ListTokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 1 || tokens[0].Owner != "ci" {
		t.Errorf("listed tokens %+v, want ci of owner ci", tokens)
	}
}

// The database rejects a decision whose owner is the requester's, and a change of the
// requester's owner, also when they are written in SQL directly.
func TestDatabaseRejectsOwnerDecidingOwnRequest(t *testing.T) {
	s := setup(t)
	approval := requestAsSubmitter(t, s, ownedToken(t, s, "alice", "", store.RoleOperator))

	_, err := s.Pool().Exec(context.Background(), `UPDATE approvals SET status = 'approved',
		approved_by = 'alice-ops', decider_owner = 'alice', decided_at = now() WHERE id = $1`, approval.ID)
	wantSQLState(t, "decision by the requester's owner", err, "23514")
	_, err = s.Pool().Exec(context.Background(), `UPDATE approvals SET requester_owner = 'bob' WHERE id = $1`,
		approval.ID)
	wantSQLState(t, "change of the requester's owner", err, "SD002")
}

func wantSQLState(t *testing.T, statement string, err error, code string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != code {
		t.Errorf("%s: error %v, want SQLSTATE %s", statement, err, code)
	}
}
