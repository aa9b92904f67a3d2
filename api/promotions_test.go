package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

func promotion(version uuid.UUID, stage string) map[string]any {
	return map[string]any{"model_version_id": version.String(), "target_stage": stage}
}

// requestPromotion requests the promotion of version to stage as token and returns the
// pending approval.
func (f *fixture) requestPromotion(token string, version uuid.UUID, stage string) api.Approval {
	f.t.Helper()
	var a api.Approval
	f.do(token, "POST", "/v1/approvals", promotion(version, stage)).want(201).decode(&a)
	return a
}

// versions trains n versions of vision's model llama-ft, version 1 first.
func (f *fixture) versions(n int) []store.ModelVersion {
	f.t.Helper()
	f.useWorkflows()
	var out []store.ModelVersion
	for range n {
		out = append(out, f.train(f.submitter, "llama-ft").version)
	}
	return out
}

func (f *fixture) stage(version uuid.UUID) string {
	f.t.Helper()
	v, err := f.store.GetModelVersion(context.Background(), version)
	if err != nil {
		f.t.Fatal(err)
	}
	return v.Stage
}

// A submitter requests prod for two versions one after the other. Each approval promotes its
// version at once, and the second archives the first.
func TestRequestPromotionApprovedToProd(t *testing.T) {
	f := setup(t)
	versions := f.versions(2)

	resp := f.do(f.submitter, "POST", "/v1/approvals", promotion(versions[0].ID, "prod")).want(201)
	var request api.Approval
	resp.decode(&request)
	if got, want := resp.header.Get("Location"), approvalPath(request.ID); got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if request.Status != "pending" || request.TargetStage != "prod" || request.ModelVersionID != versions[0].ID {
		t.Errorf("approval %+v, want a pending request for prod of version 1", request)
	}
	if request.RequestedBy != "vision-ci" || request.RequesterOwner != "vision-ci" || request.WorkflowID != nil {
		t.Errorf("requested by %s of owner %s with workflow %v, want vision-ci's without a workflow",
			request.RequestedBy, request.RequesterOwner, request.WorkflowID)
	}
	wantJSON(t, "eval_snapshot", request.EvalSnapshot, `{"model_version_id": "`+versions[0].ID.String()+
		`", "target_stage": "prod", "current_stage": "dev", "evaluation": {"metrics": {"accuracy": 0.91}}}`)

	var decided api.Approval
	f.do(f.operator, "POST", approvalPath(request.ID)+"/approve", decision("holdout accuracy 0.91")).
		want(200).decode(&decided)
	if decided.Status != "approved" || decided.DecidedBy == nil || *decided.DecidedBy != "oncall" {
		t.Errorf("approval %s by %v, want approved by oncall", decided.Status, decided.DecidedBy)
	}
	if stage := f.stage(versions[0].ID); stage != "prod" {
		t.Errorf("version 1 is %s after the approval, want prod", stage)
	}

	second := f.requestPromotion(f.submitter, versions[1].ID, "prod")
	f.do(f.admin, "POST", approvalPath(second.ID)+"/approve", decision("better on the holdout set")).want(200)
	if stage := f.stage(versions[0].ID); stage != "archived" {
		t.Errorf("version 1 is %s after version 2 went to prod, want archived", stage)
	}
	if stage := f.stage(versions[1].ID); stage != "prod" {
		t.Errorf("version 2 is %s after the approval, want prod", stage)
	}

	var v2 api.ModelVersion
	f.do(f.submitter, "GET", "/v1/model-versions/"+versions[1].ID.String(), nil).want(200).decode(&v2)
	if v2.Stage != "prod" || v2.PromotedBy == nil || *v2.PromotedBy != "root" {
		t.Errorf("version 2 read back in %s promoted by %v, want prod by root", v2.Stage, v2.PromotedBy)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'approval.request' AND actor = 'vision-ci'
		AND project_id = 'vision'`); n != 2 {
		t.Errorf("%d approval.request records by vision-ci, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'model_version.promote'`); n != 2 {
		t.Errorf("%d model_version.promote records, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'model_version.archive'
		AND actor = 'root'`); n != 1 {
		t.Errorf("%d model_version.archive records by root, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE kind = 'approval_decided'`); n != 0 {
		t.Errorf("%d approval_decided events, want none", n)
	}
}

// The approval of a workflow's request still leaves the promotion to the workflow.
func TestWorkflowRequestApprovalPromotesNothing(t *testing.T) {
	f := setup(t)
	tr, id := f.pendingApproval()
	f.do(f.admin, "POST", approvalPath(id)+"/approve", decision("ship it")).want(200)
	if stage := f.stage(tr.version.ID); stage != "dev" {
		t.Errorf("version is %s after its workflow's request was approved, want dev until the workflow promotes",
			stage)
	}
}

func TestRequestPromotionRejected(t *testing.T) {
	f := setup(t)
	v := f.versions(1)[0]
	request := f.requestPromotion(f.submitter, v.ID, "staging")

	var decided api.Approval
	f.do(f.operator, "POST", approvalPath(request.ID)+"/reject", decision("eval set too small")).
		want(200).decode(&decided)
	if decided.Status != "rejected" {
		t.Errorf("approval %s, want rejected", decided.Status)
	}
	if stage := f.stage(v.ID); stage != "dev" {
		t.Errorf("version is %s after the rejection, want dev", stage)
	}
}

// An operator's own request, like a workflow's, needs an operator of another owner.
func TestRequestPromotionSelfApproval(t *testing.T) {
	f := setup(t)
	v := f.versions(1)[0]
	request := f.requestPromotion(f.operator, v.ID, "prod")
	laptop := f.ownedToken("oncall-laptop", "oncall", store.RoleOperator)

	p := f.do(f.operator, "POST", approvalPath(request.ID)+"/approve", decision("looks good")).
		problem(403, api.TypeSelfApproval)
	if !strings.Contains(p.Detail, `"oncall"`) {
		t.Errorf("detail %q, want it to name the requesting token", p.Detail)
	}
	f.do(laptop, "POST", approvalPath(request.ID)+"/approve", decision("looks good")).
		problem(403, api.TypeSelfApproval)
	if stage := f.stage(v.ID); stage != "dev" {
		t.Errorf("version is %s after the refused approvals, want dev", stage)
	}

	f.do(f.admin, "POST", approvalPath(request.ID)+"/approve", decision("looks good")).want(200)
	if stage := f.stage(v.ID); stage != "prod" {
		t.Errorf("version is %s after root's approval, want prod", stage)
	}
}

// A second request for a version and stage names the pending one, also when a workflow
// made it, so a client that retries finds its request.
func TestRequestPromotionAlreadyPending(t *testing.T) {
	f := setup(t)
	v := f.versions(1)[0]
	first := f.requestPromotion(f.submitter, v.ID, "prod")

	for _, token := range []string{f.submitter, f.operator} {
		resp := f.do(token, "POST", "/v1/approvals", promotion(v.ID, "prod"))
		p := resp.problem(409, api.TypeApprovalPending)
		if p.ApprovalID != first.ID.String() {
			t.Errorf("approval_id %q, want %s", p.ApprovalID, first.ID)
		}
		if got, want := resp.header.Get("Location"), approvalPath(first.ID); got != want {
			t.Errorf("Location %q, want %q", got, want)
		}
	}
	f.requestPromotion(f.submitter, v.ID, "staging")

	tr, workflowRequest := f.pendingApproval()
	p := f.do(f.operator, "POST", "/v1/approvals", promotion(tr.version.ID, "prod")).
		problem(409, api.TypeApprovalPending)
	if p.ApprovalID != workflowRequest.String() {
		t.Errorf("approval_id %q, want the workflow's request %s", p.ApprovalID, workflowRequest)
	}
	if n := f.count(`SELECT count(*) FROM approvals`); n != 3 {
		t.Errorf("%d approvals, want 3", n)
	}
}

// A submitter can request only versions of its projects. Another project's version is not
// found, like one that does not exist.
func TestRequestPromotionOtherProject(t *testing.T) {
	f := setup(t)
	v := f.versions(1)[0]

	p := f.do(f.audioSubmitter, "POST", "/v1/approvals", promotion(v.ID, "prod")).problem(404, api.TypeNotFound)
	if !strings.Contains(p.Detail, v.ID.String()) {
		t.Errorf("detail %q, want it to name the version", p.Detail)
	}
	missing := uuid.New()
	p = f.do(f.operator, "POST", "/v1/approvals", promotion(missing, "prod")).problem(404, api.TypeNotFound)
	if p.Detail != "model version "+missing.String()+" does not exist" {
		t.Errorf("detail %q, want model version %s does not exist", p.Detail, missing)
	}
	if n := f.count(`SELECT count(*) FROM approvals`); n != 0 {
		t.Errorf("%d approvals, want none", n)
	}
}

func TestRequestPromotionInvalid(t *testing.T) {
	f := setup(t)
	v := f.versions(1)[0]
	id := v.ID.String()

	cases := []struct {
		name  string
		body  any
		field string
	}{
		{"no body", nil, "body"},
		{"no version", map[string]any{"target_stage": "prod"}, "model_version_id"},
		{"version not a UUID", map[string]any{"model_version_id": "v1", "target_stage": "prod"}, "model_version_id"},
		{"version in braces", map[string]any{"model_version_id": "{" + id + "}", "target_stage": "prod"},
			"model_version_id"},
		{"no stage", map[string]any{"model_version_id": id}, "target_stage"},
		{"stage dev", promotion(v.ID, "dev"), "target_stage"},
		{"stage archived", promotion(v.ID, "archived"), "target_stage"},
		{"stage in capitals", promotion(v.ID, "PROD"), "target_stage"},
		{"unknown field", map[string]any{"model_version_id": id, "target_stage": "prod", "reason": "x"}, "reason"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.do(f.submitter, "POST", "/v1/approvals", c.body).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}
	p := f.do(f.submitter, "POST", "/v1/approvals?status=pending", promotion(v.ID, "prod")).
		problem(400, api.TypeInvalidRequest)
	if p.Field != "status" {
		t.Errorf("query parameter: field %q, want status", p.Field)
	}
	f.do("", "POST", "/v1/approvals", promotion(v.ID, "prod")).problem(401, api.TypeUnauthorized)
	if n := f.count(`SELECT count(*) FROM approvals`); n != 0 {
		t.Errorf("%d approvals after the invalid requests, want none", n)
	}
}

// The version's stage rules out some requests, each with a 409 that names the cause.
func TestRequestPromotionStageConflicts(t *testing.T) {
	f := setup(t)
	versions := f.versions(2)
	f.do(f.operator, "POST", approvalPath(f.requestPromotion(f.submitter, versions[0].ID, "prod").ID)+"/approve",
		decision("ok")).want(200)
	f.do(f.operator, "POST", approvalPath(f.requestPromotion(f.submitter, versions[1].ID, "prod").ID)+"/approve",
		decision("ok")).want(200)

	cases := []struct {
		name    string
		version uuid.UUID
		stage   string
		detail  string
	}{
		{"archived", versions[0].ID, "staging", "version 1 of model vision/llama-ft is archived"},
		{"in the stage", versions[1].ID, "prod", "version 2 of model vision/llama-ft is already in prod"},
		{"prod to staging", versions[1].ID, "staging", "would leave the model without a prod version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.do(f.submitter, "POST", "/v1/approvals", promotion(c.version, c.stage)).
				problem(409, api.TypeConflict)
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, c.detail)
			}
		})
	}
}

// An approval that can no longer promote its version is a 409, and the request stays
// pending until it is rejected.
func TestApproveArchivedVersionConflicts(t *testing.T) {
	f := setup(t)
	versions := f.versions(2)
	toStaging := f.requestPromotion(f.submitter, versions[0].ID, "staging")
	for _, v := range versions {
		f.do(f.operator, "POST", approvalPath(f.requestPromotion(f.submitter, v.ID, "prod").ID)+"/approve",
			decision("ok")).want(200)
	}

	p := f.do(f.admin, "POST", approvalPath(toStaging.ID)+"/approve", decision("ok")).problem(409, api.TypeConflict)
	for _, want := range []string{"stays pending", "version 1 of model vision/llama-ft is archived"} {
		if !strings.Contains(p.Detail, want) {
			t.Errorf("detail %q, want it to contain %q", p.Detail, want)
		}
	}
	var got api.Approval
	f.do(f.admin, "GET", approvalPath(toStaging.ID), nil).want(200).decode(&got)
	if got.Status != "pending" {
		t.Errorf("approval %s after the refused approval, want pending", got.Status)
	}
	if n := f.count(`SELECT count(*) FROM audit_log WHERE action = 'approval.approve' AND actor = 'root'`); n != 0 {
		t.Errorf("%d approval.approve records by root, want none", n)
	}
	f.do(f.admin, "POST", approvalPath(toStaging.ID)+"/reject", decision("archived meanwhile")).want(200)
	if stage := f.stage(versions[0].ID); stage != "archived" {
		t.Errorf("version 1 is %s, want archived", stage)
	}
}
