package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// DecisionRequest is the body of POST /v1/approvals/{id}/approve and /reject.
type DecisionRequest struct {
	// Reason is the approver's explanation of the decision. The approval and the audit log
	// store it.
	Reason string `json:"reason"`
}

// maxReasonLength bounds a decision's reason, in characters.
const maxReasonLength = 2000

var approvalStatuses = []string{"pending", "approved", "rejected"}

var (
	listApprovalsParams = []string{"status", "project", "limit", "page_token"}
	// listApprovalsMultiValued are the parameters of listApprovalsParams that take several
	// values.
	listApprovalsMultiValued = []string{"project"}
)

// listApprovals serves GET /v1/approvals: oldest request first, one page at a time. A
// submitter gets only the approvals of its projects' models.
func (s *Server) listApprovals(w http.ResponseWriter, r *http.Request, caller *principal) error {
	query, err := parseQuery(r, listApprovalsParams, listApprovalsMultiValued)
	if err != nil {
		return err
	}
	filter := store.ApprovalFilter{Status: query.Get("status")}
	if filter.Projects, err = listValues(query, "project"); err != nil {
		return err
	}
	if query.Has("status") && !slices.Contains(approvalStatuses, filter.Status) {
		return invalid("status", "%q is not an approval status; want one of %s",
			filter.Status, strings.Join(approvalStatuses, ", "))
	}
	for _, p := range filter.Projects {
		if !projectID.MatchString(p) {
			return invalid("project", "%q is not a project id", p)
		}
	}
	if err := restrictToCaller(caller, &filter.Projects); err != nil {
		return err
	}
	pageSize, err := limitParam(query, defaultPageSize, MaxPageSize)
	if err != nil {
		return err
	}
	listing := filterFingerprint("approvals", query)
	if token := query.Get("page_token"); token != "" {
		// The token has the format of a job page's: the last row's time and id.
		last, err := decodePageToken(token, listing)
		if err != nil {
			return err
		}
		filter.AfterRequestedAt, filter.AfterID = last.CreatedAt, last.ID
	}

	filter.Limit = pageSize + 1
	approvals, err := s.store.FilterApprovals(r.Context(), filter)
	if err != nil {
		return err
	}
	list := ApprovalList{}
	if len(approvals) > pageSize {
		approvals = approvals[:pageSize]
		last := approvals[pageSize-1]
		list.NextPage = encodePageToken(store.JobRef{ID: last.ID, CreatedAt: last.RequestedAt}, listing)
	}
	list.Approvals = approvalViews(approvals)
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}

func (s *Server) getApproval(w http.ResponseWriter, r *http.Request, caller *principal) error {
	id, err := pathUUID(r, "id", "approval")
	if err != nil {
		return err
	}
	approval, err := s.store.GetApproval(r.Context(), id)
	err = caller.hideOtherProject(err, approval.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("approval %s does not exist", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", approvalView(approval))
	return nil
}

func (s *Server) approve(w http.ResponseWriter, r *http.Request, caller *principal) error {
	return s.decideApproval(w, r, caller, true)
}

func (s *Server) reject(w http.ResponseWriter, r *http.Request, caller *principal) error {
	return s.decideApproval(w, r, caller, false)
}

// decideApproval approves or rejects a pending request, audited as approval.approve or
// approval.reject. The database's outbox carries the decision to the request's workflow,
// which promotes the version once it is approved. The approval of a request made with POST
// /v1/approvals, which names no workflow, promotes the version itself. No token of the
// requester's owner may decide the request.
//
// NOTE: an owner is whatever the admin gave at `token create`, so two owners that are one
// person count as two people here.
func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request, caller *principal, approve bool) error {
	id, err := pathUUID(r, "id", "approval")
	if err != nil {
		return err
	}
	var req DecisionRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if strings.TrimSpace(req.Reason) == "" {
		return invalid("reason", "required: why the request is approved or rejected")
	}
	if n := utf8.RuneCountInString(req.Reason); n > maxReasonLength {
		return invalid("reason", "longer than %d characters (%d)", maxReasonLength, n)
	}

	action := "approval.reject"
	if approve {
		action = "approval.approve"
	}
	decided, err := s.store.DecideApproval(r.Context(), store.ApprovalDecision{ApprovalID: id, Approve: approve,
		Reason: req.Reason, Audit: s.audit(caller, action)})
	if err != nil {
		return s.decisionProblem(r, id, caller, err)
	}
	s.cfg.Logger.Info("approval decided", "approval_id", id, "project", decided.ProjectID,
		"model", decided.ModelName, "version", decided.VersionNumber, "status", decided.Status,
		"actor", caller.token.Name, "actor_owner", caller.token.Owner)
	if approve && decided.WorkflowID == nil {
		s.cfg.Logger.Info("model version promoted", "approval_id", id, "model_version_id", decided.ModelVersionID,
			"stage", decided.TargetStage, "by", caller.token.Name)
	}
	writeJSON(w, http.StatusOK, "application/json", approvalView(decided))
	return nil
}

// decisionProblem turns a failed DecideApproval into the response the client acts on.
func (s *Server) decisionProblem(r *http.Request, id uuid.UUID, caller *principal, err error) error {
	var promotionConflict *store.PromotionConflictError
	switch {
	case errors.As(err, &promotionConflict):
		s.cfg.Logger.Info("approval not applied: the version cannot be promoted", "approval_id", id,
			"model_version_id", promotionConflict.VersionID, "reason", promotionConflict.Reason,
			"actor", caller.token.Name)
		return conflict("approval %s cannot promote its version, so it stays pending: %s. Reject it, or approve "+
			"it again once the cause is gone", id, promotionConflict.Reason)
	case errors.Is(err, store.ErrNotFound):
		return notFound("approval %s does not exist", id)
	case errors.Is(err, store.ErrSelfApproval):
		return newProblem(TypeSelfApproval, http.StatusForbidden, "",
			fmt.Sprintf("the token %q of owner %q cannot decide this approval, because a token of "+
				"that owner or name requested it; an operator or admin of another owner must",
				caller.token.Name, caller.token.Owner))
	case errors.Is(err, store.ErrStaleStatus), errors.Is(err, store.ErrIllegalTransition):
		current, getErr := s.store.GetApproval(r.Context(), id)
		if getErr != nil || current.DecidedBy == nil {
			return conflict("approval %s is already decided", id)
		}
		return conflict("approval %s is already %s by %s", id, current.Status, *current.DecidedBy)
	}
	return err
}
