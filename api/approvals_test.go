package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

func approvalPath(id uuid.UUID) string { return "/v1/approvals/" + id.String() }

func decision(reason string) map[string]any { return map[string]any{"reason": reason} }

// pendingApproval trains a version whose job the operator submitted, so that the
// operator's token "oncall" requested its approval.
func (f *fixture) pendingApproval() (trained, uuid.UUID) {
	f.t.Helper()
	f.useWorkflows()
	tr := f.train(f.operator, "llama-ft")
	return tr, f.requestApproval(tr).ID
}

func TestApproveSendsDecisionToWorkflow(t *testing.T) {
	f := setup(t)
	tr, id := f.pendingApproval()

	var got api.Approval
	f.do(f.admin, "POST", approvalPath(id)+"/approve", decision("metrics above the bar")).want(200).decode(&got)

	if got.Status != "approved" || got.DecidedBy == nil || *got.DecidedBy != "root" {
		t.Errorf("approval %s by %v, want approved by root", got.Status, got.DecidedBy)
	}
	if got.Reason == nil || *got.Reason != "metrics above the bar" || got.DecidedAt == nil {
		t.Errorf("reason %v decided at %v, want the reason and a time", got.Reason, got.DecidedAt)
	}
	if got.RequestedBy != "oncall" || got.TargetStage != "prod" || got.ModelVersionID != tr.version.ID {
		t.Errorf("approval %+v, want oncall's request for prod of %s", got, tr.version.ID)
	}
	workflow := *tr.job.TemporalWorkflowID
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE workflow_id = $1 AND kind = 'approval_decided'`,
		workflow); n != 1 {
		t.Errorf("%d approval_decided events for %s, want 1", n, workflow)
	}
	var payload json.RawMessage
	err := f.store.Pool().QueryRow(t.Context(), `SELECT payload FROM workflow_events
		WHERE kind = 'approval_decided'`).Scan(&payload)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON(t, "event payload", payload, `{"approval_id": "`+id.String()+`", "status": "approved"}`)
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'approval.approve' AND actor = 'root'
		AND project_id = 'vision'`); n != 1 {
		t.Errorf("%d approval.approve audit records by root, want 1", n)
	}
}

func TestRejectApproval(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()

	var got api.Approval
	f.do(f.admin, "POST", approvalPath(id)+"/reject", decision("eval set too small")).want(200).decode(&got)

	if got.Status != "rejected" || got.Reason == nil || *got.Reason != "eval set too small" {
		t.Errorf("approval %s with reason %v, want rejected with the reason", got.Status, got.Reason)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'approval.reject'`); n != 1 {
		t.Errorf("%d approval.reject audit records, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE kind = 'approval_decided'
		AND payload->>'status' = 'rejected'`); n != 1 {
		t.Errorf("%d rejected approval_decided events, want 1", n)
	}
}

func TestSelfApprovalRejected(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()

	p := f.do(f.operator, "POST", approvalPath(id)+"/approve", decision("looks good")).
		problem(403, api.TypeSelfApproval)
	if !strings.Contains(p.Detail, `"oncall"`) {
		t.Errorf("detail %q, want it to name the requesting token", p.Detail)
	}
	f.do(f.operator, "POST", approvalPath(id)+"/reject", decision("never mind")).problem(403, api.TypeSelfApproval)

	var got api.Approval
	f.do(f.operator, "GET", approvalPath(id), nil).want(200).decode(&got)
	if got.Status != "pending" {
		t.Errorf("status %q after the refused decisions, want pending", got.Status)
	}
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE kind = 'approval_decided'`); n != 0 {
		t.Errorf("%d approval_decided events, want 0", n)
	}
}

// A second token of the requester's owner, under another name, may not decide the request.
// An operator of another owner may, and the approval shows both owners.
func TestSecondTokenOfOwnerCannotDecide(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()
	laptop := f.ownedToken("oncall-laptop", "oncall", store.RoleOperator)

	p := f.do(laptop, "POST", approvalPath(id)+"/approve", decision("looks good")).
		problem(403, api.TypeSelfApproval)
	if !strings.Contains(p.Detail, `"oncall-laptop" of owner "oncall"`) {
		t.Errorf("detail %q, want it to name the token and its owner", p.Detail)
	}
	f.do(laptop, "POST", approvalPath(id)+"/reject", decision("never mind")).problem(403, api.TypeSelfApproval)

	var got api.Approval
	f.do(f.admin, "GET", approvalPath(id), nil).want(200).decode(&got)
	if got.Status != "pending" {
		t.Errorf("status %q after the refused decisions, want pending", got.Status)
	}
	if got.RequesterOwner != "oncall" {
		t.Errorf("requester_owner %q, want oncall", got.RequesterOwner)
	}

	other := f.ownedToken("olga-laptop", "olga", store.RoleOperator)
	f.do(other, "POST", approvalPath(id)+"/approve", decision("metrics above the bar")).want(200).decode(&got)
	if got.DecidedBy == nil || *got.DecidedBy != "olga-laptop" {
		t.Errorf("decided_by %v, want olga-laptop", got.DecidedBy)
	}
	if got.DeciderOwner == nil || *got.DeciderOwner != "olga" {
		t.Errorf("decider_owner %v, want olga", got.DeciderOwner)
	}
}

func TestSecondDecisionConflicts(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()
	f.do(f.admin, "POST", approvalPath(id)+"/approve", decision("ship it")).want(200)

	p := f.do(f.admin, "POST", approvalPath(id)+"/reject", decision("changed my mind")).problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "already approved by root") {
		t.Errorf("detail %q, want it to say approved by root", p.Detail)
	}
	f.do(f.admin, "POST", approvalPath(id)+"/approve", decision("again")).problem(409, api.TypeConflict)
	// The requester retrying a decided request gets the conflict too, not self-approval.
	f.do(f.operator, "POST", approvalPath(id)+"/approve", decision("again")).problem(409, api.TypeConflict)
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE kind = 'approval_decided'`); n != 1 {
		t.Errorf("%d approval_decided events, want 1", n)
	}
}

func TestDecideApprovalRequests(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()
	approve := approvalPath(id) + "/approve"

	f.do(f.submitter, "POST", approve, decision("ok")).problem(403, api.TypeForbidden)
	f.do(f.admin, "POST", approvalPath(uuid.New())+"/approve", decision("ok")).problem(404, api.TypeNotFound)

	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"no body", nil, "body"},
		{"no reason", map[string]any{}, "reason"},
		{"blank reason", decision("  "), "reason"},
		{"reason too long", decision(strings.Repeat("é", 2001)), "reason"},
		{"unknown field", map[string]any{"reason": "ok", "stage": "prod"}, "stage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.do(f.admin, "POST", approve, c.body).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}
	f.do(f.admin, "POST", approve, decision(strings.Repeat("é", 2000))).want(200)
}

func TestListApprovals(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	first := f.requestApproval(f.train(f.operator, "llama-ft"))
	second := f.requestApproval(f.train(f.operator, "llama-ft"))
	f.do(f.admin, "POST", approvalPath(first.ID)+"/approve", decision("ok")).want(200)

	list := func(token, query string) api.ApprovalList {
		t.Helper()
		var l api.ApprovalList
		f.do(token, "GET", "/v1/approvals"+query, nil).want(200).decode(&l)
		return l
	}
	ids := func(l api.ApprovalList) []uuid.UUID {
		var out []uuid.UUID
		for _, a := range l.Approvals {
			out = append(out, a.ID)
		}
		return out
	}

	if got := ids(list(f.operator, "?status=pending")); len(got) != 1 || got[0] != second.ID {
		t.Errorf("pending %v, want [%s]", got, second.ID)
	}
	if got := ids(list(f.operator, "?status=approved")); len(got) != 1 || got[0] != first.ID {
		t.Errorf("approved %v, want [%s]", got, first.ID)
	}
	if got := ids(list(f.submitter, "")); len(got) != 2 || got[0] != first.ID || got[1] != second.ID {
		t.Errorf("vision submitter sees %v, want [%s %s]", got, first.ID, second.ID)
	}
	if got := list(f.audioSubmitter, ""); len(got.Approvals) != 0 {
		t.Errorf("audio submitter sees %v, want none", ids(got))
	}
	f.do(f.audioSubmitter, "GET", "/v1/approvals?project=vision", nil).problem(403, api.TypeForbidden)
	f.do(f.audioSubmitter, "GET", approvalPath(first.ID), nil).problem(404, api.TypeNotFound)
	f.do(f.submitter, "GET", approvalPath(first.ID), nil).want(200)
	p := f.do(f.operator, "GET", "/v1/approvals?status=done", nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "status" {
		t.Errorf("field %q, want status", p.Field)
	}

	page := list(f.operator, "?limit=1")
	if got := ids(page); len(got) != 1 || got[0] != first.ID || page.NextPage == "" {
		t.Fatalf("first page %v next %q, want [%s] and a next page", got, page.NextPage, first.ID)
	}
	page = list(f.operator, "?limit=1&page_token="+page.NextPage)
	if got := ids(page); len(got) != 1 || got[0] != second.ID || page.NextPage != "" {
		t.Errorf("second page %v next %q, want [%s] and no next page", got, page.NextPage, second.ID)
	}
}

// TestDecisionReasonWithNUL: a reason PostgreSQL cannot store is a 400 on the field, and
// the request stays pending.
func TestDecisionReasonWithNUL(t *testing.T) {
	f := setup(t)
	_, id := f.pendingApproval()
	p := f.do(f.admin, "POST", approvalPath(id)+"/approve", decision("ok\u0000")).problem(400, api.TypeInvalidRequest)
	if p.Field != "reason" {
		t.Errorf("field %q, want reason", p.Field)
	}
	var got api.Approval
	f.do(f.admin, "GET", approvalPath(id), nil).want(200).decode(&got)
	if got.Status != "pending" {
		t.Errorf("approval %s, want still pending", got.Status)
	}
}
