package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// The tokens of the promotion tests: alice requests, olga decides.
var (
	alice = store.Actor{Name: "alice", Role: store.RoleSubmitter}
	olga  = store.Actor{Name: "olga", Role: store.RoleOperator}
)

func requestPromotion(s *store.Store, version uuid.UUID, stage string, by store.Actor) (store.Approval, error) {
	return s.RequestPromotion(context.Background(), store.PromotionRequest{ModelVersionID: version,
		TargetStage: stage, Audit: &store.Audit{Actor: by, Action: "approval.request", At: time.Now()}})
}

// mustRequestPromotion is requestPromotion by alice that must succeed.
func mustRequestPromotion(t *testing.T, s *store.Store, version uuid.UUID, stage string) store.Approval {
	t.Helper()
	a, err := requestPromotion(s, version, stage, alice)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func decide(s *store.Store, approval uuid.UUID, approve bool, by store.Actor, at time.Time) (store.Approval, error) {
	action := "approval.reject"
	if approve {
		action = "approval.approve"
	}
	return s.DecideApproval(context.Background(), store.ApprovalDecision{ApprovalID: approval, Approve: approve,
		Reason: "checked", Audit: &store.Audit{Actor: by, Action: action, At: at}})
}

// mustApprove approves as olga now and returns the decided approval.
func mustApprove(t *testing.T, s *store.Store, approval uuid.UUID) store.Approval {
	t.Helper()
	decided, err := decide(s, approval, true, olga, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return decided
}

func stageOf(t *testing.T, s *store.Store, version uuid.UUID) string {
	t.Helper()
	v, err := s.GetModelVersion(context.Background(), version)
	if err != nil {
		t.Fatal(err)
	}
	return v.Stage
}

// A request through the API names no workflow, and its approval promotes the version in the
// same transaction: the second prod version archives the first.
func TestPromotionRequestApprovedPromotes(t *testing.T) {
	s := setup(t)
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")

	request := mustRequestPromotion(t, s, first.ID, "prod")
	if request.Status != "pending" || request.WorkflowID != nil {
		t.Errorf("request %s with workflow %v, want pending without a workflow", request.Status, request.WorkflowID)
	}
	if request.RequestedBy != "alice" || request.RequesterOwner != "alice" || request.TargetStage != "prod" {
		t.Errorf("request by %s of owner %s for %s, want alice's for prod",
			request.RequestedBy, request.RequesterOwner, request.TargetStage)
	}
	var snapshot struct {
		CurrentStage string `json:"current_stage"`
		Evaluation   struct {
			Metrics map[string]float64 `json:"metrics"`
		} `json:"evaluation"`
	}
	if err := json.Unmarshal(request.EvalSnapshot, &snapshot); err != nil {
		t.Fatal(err)
	}
	if snapshot.CurrentStage != "dev" || snapshot.Evaluation.Metrics["accuracy"] != 0.9 {
		t.Errorf("snapshot %s, want stage dev and accuracy 0.9", request.EvalSnapshot)
	}
	if stage := stageOf(t, s, first.ID); stage != "dev" {
		t.Errorf("version 1 is %s while the request is pending, want dev", stage)
	}

	decided := mustApprove(t, s, request.ID)
	if decided.Status != "approved" {
		t.Errorf("approval %s, want approved", decided.Status)
	}
	promoted, err := s.GetModelVersion(context.Background(), first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if promoted.Stage != "prod" || promoted.PromotedBy == nil || *promoted.PromotedBy != "olga" {
		t.Errorf("version 1 is %s promoted by %v, want prod by olga", promoted.Stage, promoted.PromotedBy)
	}

	mustApprove(t, s, mustRequestPromotion(t, s, second.ID, "prod").ID)
	if stage := stageOf(t, s, first.ID); stage != "archived" {
		t.Errorf("version 1 is %s after version 2 went to prod, want archived", stage)
	}
	if stage := stageOf(t, s, second.ID); stage != "prod" {
		t.Errorf("version 2 is %s, want prod", stage)
	}

	for action, want := range map[string]int{"approval.request": 2, "approval.approve": 2,
		"model_version.promote": 2, "model_version.archive": 1} {
		if n := countRows(t, s, `SELECT count(*) FROM audit_log WHERE action = $1 AND project_id = 'vision'`,
			action); n != want {
			t.Errorf("%d %s audit records, want %d", n, action, want)
		}
	}
	archive := countRows(t, s, `SELECT count(*) FROM audit_log WHERE action = 'model_version.archive'
		AND actor = 'olga' AND before_json->>'stage' = 'prod' AND after_json->>'stage' = 'archived'
		AND after_json->>'id' = $1`, first.ID.String())
	if archive != 1 {
		t.Errorf("%d archive records of version 1 from prod to archived by olga, want 1", archive)
	}
	if n := countRows(t, s, `SELECT count(*) FROM workflow_events WHERE kind = 'approval_decided'`); n != 0 {
		t.Errorf("%d approval_decided events, want none: no workflow waits", n)
	}
}

// A workflow's request keeps its promotion to the workflow: the approval alone leaves the
// version in dev.
func TestWorkflowRequestApprovalLeavesStage(t *testing.T) {
	s := setup(t)
	v := register(t, s, completedJob(t, s), "resnet")
	approve(t, s, v.ID, "prod")
	if stage := stageOf(t, s, v.ID); stage != "dev" {
		t.Errorf("version is %s after its workflow's request was approved, want dev until the workflow promotes", stage)
	}
}

func TestPromotionRequestRejected(t *testing.T) {
	s := setup(t)
	v := register(t, s, completedJob(t, s), "resnet")
	request := mustRequestPromotion(t, s, v.ID, "staging")

	decided, err := decide(s, request.ID, false, olga, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if decided.Status != "rejected" {
		t.Errorf("approval %s, want rejected", decided.Status)
	}
	if stage := stageOf(t, s, v.ID); stage != "dev" {
		t.Errorf("version is %s after the rejection, want dev", stage)
	}
	if n := countRows(t, s, `SELECT count(*) FROM audit_log WHERE action LIKE 'model_version.%'`); n != 0 {
		t.Errorf("%d model_version audit records after a rejection, want none", n)
	}
	// A rejected request no longer blocks a new one.
	mustRequestPromotion(t, s, v.ID, "staging")
}

// Neither the requester nor another token of the requester's owner can approve.
func TestPromotionRequestSelfApproval(t *testing.T) {
	s := setup(t)
	v := register(t, s, completedJob(t, s), "resnet")
	request := mustRequestPromotion(t, s, v.ID, "prod")

	for _, by := range []store.Actor{
		{Name: "alice", Role: store.RoleOperator},
		{Name: "alice-ops", Owner: "alice", Role: store.RoleOperator},
	} {
		if _, err := decide(s, request.ID, true, by, time.Now()); !errors.Is(err, store.ErrSelfApproval) {
			t.Errorf("approval by %s of owner %s: %v, want ErrSelfApproval", by.Name, by.OwnerOrName(), err)
		}
	}
	got, err := s.GetApproval(context.Background(), request.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "pending" {
		t.Errorf("approval %s after the refused decisions, want pending", got.Status)
	}
	if stage := stageOf(t, s, v.ID); stage != "dev" {
		t.Errorf("version is %s, want dev", stage)
	}
}

// The version's stage and the pending requests decide which requests are accepted, and a
// refused request writes nothing.
func TestPromotionRequestRules(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	archived := register(t, s, completedJob(t, s), "resnet")
	prod := register(t, s, completedJob(t, s), "resnet")
	dev := register(t, s, completedJob(t, s), "resnet")
	mustApprove(t, s, mustRequestPromotion(t, s, archived.ID, "prod").ID)
	mustApprove(t, s, mustRequestPromotion(t, s, prod.ID, "prod").ID)
	pending := mustRequestPromotion(t, s, dev.ID, "prod")
	workflows, err := s.RequestApproval(ctx, store.ApprovalRequest{ModelVersionID: dev.ID, TargetStage: "staging",
		RequestedBy: "bob", Snapshot: json.RawMessage(`{}`), WorkflowID: "job-x"})
	if err != nil {
		t.Fatal(err)
	}
	approvals := countRows(t, s, `SELECT count(*) FROM approvals`)
	audits := countRows(t, s, `SELECT count(*) FROM audit_log`)

	conflicts := []struct {
		name    string
		version uuid.UUID
		stage   string
		reason  string
	}{
		{"archived version", archived.ID, "prod", "version 1 of model vision/resnet is archived"},
		{"archived version to staging", archived.ID, "staging", "is archived"},
		{"stage it has", prod.ID, "prod", "version 2 of model vision/resnet is already in prod"},
		{"prod to staging", prod.ID, "staging", "would leave the model without a prod version"},
	}
	for _, c := range conflicts {
		t.Run(c.name, func(t *testing.T) {
			_, err := requestPromotion(s, c.version, c.stage, alice)
			var conflict *store.PromotionConflictError
			if !errors.As(err, &conflict) {
				t.Fatalf("error %v, want a PromotionConflictError", err)
			}
			if !strings.Contains(conflict.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", conflict.Reason, c.reason)
			}
		})
	}

	pendings := []struct {
		name   string
		stage  string
		holder uuid.UUID
	}{
		{"pending request", "prod", pending.ID},
		{"pending workflow request", "staging", workflows.ID},
	}
	for _, c := range pendings {
		t.Run(c.name, func(t *testing.T) {
			_, err := requestPromotion(s, dev.ID, c.stage, olga)
			var holder *store.PendingApprovalError
			if !errors.As(err, &holder) {
				t.Fatalf("error %v, want a PendingApprovalError", err)
			}
			if holder.ApprovalID != c.holder {
				t.Errorf("pending approval %s, want %s", holder.ApprovalID, c.holder)
			}
		})
	}

	if _, err := requestPromotion(s, dev.ID, "archived", alice); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("request for stage archived: %v, want ErrInvalid", err)
	}
	if _, err := requestPromotion(s, uuid.New(), "prod", alice); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("request for a version that does not exist: %v, want ErrNotFound", err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM approvals`); n != approvals {
		t.Errorf("%d approvals after the refused requests, want %d", n, approvals)
	}
	if n := countRows(t, s, `SELECT count(*) FROM audit_log`); n != audits {
		t.Errorf("%d audit records after the refused requests, want %d", n, audits)
	}
}

// Requests for one version and stage sent at once store one pending request, and the others
// name it.
func TestConcurrentPromotionRequests(t *testing.T) {
	s := setup(t)
	v := register(t, s, completedJob(t, s), "resnet")
	const n = 8
	var wg sync.WaitGroup
	created := make([]store.Approval, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { created[i], errs[i] = requestPromotion(s, v.ID, "prod", alice) })
	}
	wg.Wait()

	var winner uuid.UUID
	for i, err := range errs {
		if err == nil {
			if winner != uuid.Nil {
				t.Errorf("requests %s and %s both stored", winner, created[i].ID)
			}
			winner = created[i].ID
		}
	}
	if winner == uuid.Nil {
		t.Fatalf("no request stored: %v", errs)
	}
	for _, err := range errs {
		var holder *store.PendingApprovalError
		if err != nil && (!errors.As(err, &holder) || holder.ApprovalID != winner) {
			t.Errorf("refused request: %v, want a PendingApprovalError naming %s", err, winner)
		}
	}
	if got := countRows(t, s, `SELECT count(*) FROM approvals`); got != 1 {
		t.Errorf("%d approvals, want 1", got)
	}
}

// An approval that cannot promote its version changes nothing: the request stays pending,
// and a rejection still closes it.
func TestApprovalThatCannotPromoteStaysPending(t *testing.T) {
	s := setup(t)
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")
	toStaging := mustRequestPromotion(t, s, first.ID, "staging")
	mustApprove(t, s, mustRequestPromotion(t, s, first.ID, "prod").ID)
	audits := countRows(t, s, `SELECT count(*) FROM audit_log`)

	_, err := decide(s, toStaging.ID, true, olga, time.Now())
	var conflict *store.PromotionConflictError
	if !errors.As(err, &conflict) || !strings.Contains(conflict.Reason, "without a prod version") {
		t.Errorf("approving staging for the prod version: %v, want a PromotionConflictError", err)
	}

	mustApprove(t, s, mustRequestPromotion(t, s, second.ID, "prod").ID)
	_, err = decide(s, toStaging.ID, true, olga, time.Now())
	if !errors.As(err, &conflict) || !strings.Contains(conflict.Reason, "is archived") {
		t.Errorf("approving staging for the archived version: %v, want a PromotionConflictError", err)
	}
	audits = countRows(t, s, `SELECT count(*) FROM audit_log`) - audits

	got, err := s.GetApproval(context.Background(), toStaging.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "pending" || got.DecidedBy != nil {
		t.Errorf("approval %s decided by %v after the refused approvals, want pending", got.Status, got.DecidedBy)
	}
	if stage := stageOf(t, s, first.ID); stage != "archived" {
		t.Errorf("version 1 is %s, want archived", stage)
	}
	// Only the second version's request, approval, promotion and archive were audited.
	if audits != 4 {
		t.Errorf("%d audit records since version 1 went to prod, want 4", audits)
	}
	if _, err := decide(s, toStaging.ID, false, olga, time.Now()); err != nil {
		t.Errorf("rejecting the request: %v", err)
	}
}

// The order of the approvals decides. A request decided at a time before the current prod
// version's approval cannot replace it, and a late workflow promotion of a version approved
// before a request's approval keeps its stage.
func TestPromotionRequestFollowsApprovalOrder(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")
	third := register(t, s, completedJob(t, s), "resnet")

	approve(t, s, first.ID, "prod") // a workflow's request, promoted late below
	mustApprove(t, s, mustRequestPromotion(t, s, second.ID, "prod").ID)
	if _, err := s.PromoteVersion(ctx, first.ID, "prod", "olga"); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("late workflow promotion of the version approved first: %v, want ErrStaleStatus", err)
	}
	if stage := stageOf(t, s, first.ID); stage != "dev" {
		t.Errorf("version 1 is %s, want dev", stage)
	}

	// A decision stamped an hour ago, as by a replica whose clock is behind.
	request := mustRequestPromotion(t, s, third.ID, "prod")
	_, err := decide(s, request.ID, true, olga, time.Now().Add(-time.Hour))
	var conflict *store.PromotionConflictError
	if !errors.As(err, &conflict) || !strings.Contains(conflict.Reason, "version 2 of model vision/resnet") {
		t.Errorf("approval before version 2's: %v, want a PromotionConflictError naming version 2", err)
	}
	if stage := stageOf(t, s, second.ID); stage != "prod" {
		t.Errorf("version 2 is %s, want prod", stage)
	}

	// Approved now, the request of the older version 1 rolls prod back to it.
	mustApprove(t, s, mustRequestPromotion(t, s, first.ID, "prod").ID)
	if stage := stageOf(t, s, first.ID); stage != "prod" {
		t.Errorf("version 1 is %s after its rollback request was approved, want prod", stage)
	}
	if stage := stageOf(t, s, second.ID); stage != "archived" {
		t.Errorf("version 2 is %s after the rollback, want archived", stage)
	}
}

// A request for a version and stage sent while the pending request for them is approved
// neither deadlocks nor stores a request for the stage the version reached: it names the
// pending request or finds the version in the stage.
func TestRequestDuringApproval(t *testing.T) {
	s := setup(t)
	for range 10 {
		v := register(t, s, completedJob(t, s), "resnet")
		pending := mustRequestPromotion(t, s, v.ID, "staging")

		var wg sync.WaitGroup
		var approveErr, requestErr error
		wg.Go(func() { _, approveErr = decide(s, pending.ID, true, olga, time.Now()) })
		wg.Go(func() { _, requestErr = requestPromotion(s, v.ID, "staging", alice) })
		wg.Wait()

		if approveErr != nil {
			t.Fatalf("approval: %v", approveErr)
		}
		var holder *store.PendingApprovalError
		var conflict *store.PromotionConflictError
		switch {
		case errors.As(requestErr, &holder):
			if holder.ApprovalID != pending.ID {
				t.Errorf("request names approval %s, want %s", holder.ApprovalID, pending.ID)
			}
		case errors.As(requestErr, &conflict):
			if !strings.Contains(conflict.Reason, "already in staging") {
				t.Errorf("request refused with %q, want already in staging", conflict.Reason)
			}
		default:
			t.Errorf("request during the approval: %v, want a pending or stage conflict", requestErr)
		}
		if stage := stageOf(t, s, v.ID); stage != "staging" {
			t.Errorf("version is %s, want staging", stage)
		}
	}
}

// A workflow's approved staging request that it promotes only after a request through the
// API put the version in prod leaves the version in prod, so the model keeps a prod
// version. Once another version replaced it, the archived version stays archived.
func TestLateWorkflowStagingKeepsProd(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")
	approve(t, s, first.ID, "staging") // the workflow's request, promoted late below
	mustApprove(t, s, mustRequestPromotion(t, s, first.ID, "prod").ID)

	late, err := s.PromoteVersion(ctx, first.ID, "staging", "olga")
	if !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("late staging promotion of the prod version: %v, want ErrStaleStatus", err)
	}
	if late.ID != first.ID || late.Stage != "prod" {
		t.Errorf("late staging promotion returned version %s in %s, want %s in prod", late.ID, late.Stage, first.ID)
	}
	if stage := stageOf(t, s, first.ID); stage != "prod" {
		t.Errorf("version 1 is %s after a late staging promotion, want prod", stage)
	}

	mustApprove(t, s, mustRequestPromotion(t, s, second.ID, "prod").ID)
	if _, err := s.PromoteVersion(ctx, first.ID, "staging", "olga"); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("late staging promotion of the archived version: %v, want ErrStaleStatus", err)
	}
	if stage := stageOf(t, s, first.ID); stage != "archived" {
		t.Errorf("version 1 is %s, want archived", stage)
	}
}
