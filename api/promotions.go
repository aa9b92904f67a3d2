package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// PromotionRequest is the body of POST /v1/approvals: a request to promote an existing model
// version, which an operator or admin of another owner than the caller's then decides.
type PromotionRequest struct {
	// ModelVersionID is the version's id, as GET /v1/projects/{project}/models/{model}/versions
	// lists it.
	ModelVersionID string `json:"model_version_id"`
	TargetStage    string `json:"target_stage"` // staging or prod
}

// promotionStages are the stages a request may name, those of a job's model.promote_to.
var promotionStages = []string{"staging", "prod"}

// requestPromotion serves POST /v1/approvals, audited as approval.request for every role
// because the requester's owner may not decide the request. The request names no workflow,
// so the approve call promotes the version itself (store.DecideApproval).
func (s *Server) requestPromotion(w http.ResponseWriter, r *http.Request, caller *principal) error {
	var req PromotionRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	versionID, err := parsePromotionRequest(req)
	if err != nil {
		return err
	}
	version, err := s.store.GetModelVersion(r.Context(), versionID)
	err = caller.hideOtherProject(err, version.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("model version %s does not exist", versionID)
	}
	if err != nil {
		return err
	}

	approval, err := s.store.RequestPromotion(r.Context(), store.PromotionRequest{ModelVersionID: versionID,
		TargetStage: req.TargetStage, Audit: s.audit(caller, "approval.request")})
	if err != nil {
		return promotionProblem(err, version, req.TargetStage)
	}
	s.cfg.Logger.Info("promotion requested", "approval_id", approval.ID, "project", approval.ProjectID,
		"model", approval.ModelName, "version", approval.VersionNumber, "target_stage", approval.TargetStage,
		"actor", caller.token.Name, "actor_owner", caller.token.Owner)
	w.Header().Set("Location", "/v1/approvals/"+approval.ID.String())
	writeJSON(w, http.StatusCreated, "application/json", approvalView(approval))
	return nil
}

// parsePromotionRequest checks the body's fields and returns the version id.
func parsePromotionRequest(req PromotionRequest) (uuid.UUID, error) {
	if req.ModelVersionID == "" {
		return uuid.Nil, invalid("model_version_id", "required: the id of the model version to promote")
	}
	id, err := uuid.Parse(req.ModelVersionID)
	if err != nil || len(req.ModelVersionID) != 36 {
		return uuid.Nil, invalid("model_version_id",
			"%q is not a model version id (a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d)", req.ModelVersionID)
	}
	if req.TargetStage == "" {
		return uuid.Nil, invalid("target_stage", "required: staging or prod")
	}
	if !slices.Contains(promotionStages, req.TargetStage) {
		return uuid.Nil, invalid("target_stage",
			"%q is not a stage a version can be promoted to; want staging or prod", req.TargetStage)
	}
	return id, nil
}

// promotionProblem turns a failed RequestPromotion into the response the client acts on. A
// pending request for the version and stage is named in the problem and in Location, so a
// client that retries after a lost response finds the request it made.
func promotionProblem(err error, version store.ModelVersion, stage string) error {
	var pending *store.PendingApprovalError
	if errors.As(err, &pending) {
		p := newProblem(TypeApprovalPending, http.StatusConflict, "", fmt.Sprintf(
			"approval %s to promote version %d of model %s to %s is already pending; an operator decides it "+
				"with POST /v1/approvals/%s/approve or /reject", pending.ApprovalID, version.VersionNumber,
			version.ModelName, stage, pending.ApprovalID))
		p.ApprovalID = pending.ApprovalID.String()
		p.location = "/v1/approvals/" + pending.ApprovalID.String()
		return p
	}
	var promotionConflict *store.PromotionConflictError
	if errors.As(err, &promotionConflict) {
		return conflict("%s", promotionConflict.Reason)
	}
	return err
}
