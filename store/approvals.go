package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ErrSelfApproval: the requester of an approval, or another token of the requester's
// owner, tried to decide it.
var ErrSelfApproval = errors.New("the requester of an approval cannot decide it")

// Approval is one row of approvals with the version's model and project. RequesterOwner
// and DeciderOwner are the owners (Token.Owner) of the requesting and the deciding token.
// No token of the requester's owner may decide the request.
type Approval struct {
	ID             uuid.UUID       `db:"id" json:"id"`
	ModelVersionID uuid.UUID       `db:"model_version_id" json:"model_version_id"`
	ProjectID      string          `db:"project_id" json:"project_id"`
	ModelName      string          `db:"model_name" json:"model_name"`
	VersionNumber  int             `db:"version_number" json:"version_number"`
	RequestedBy    string          `db:"requested_by" json:"requested_by"`
	RequesterOwner string          `db:"requester_owner" json:"requester_owner"`
	DecidedBy      *string         `db:"approved_by" json:"decided_by,omitempty"`
	DeciderOwner   *string         `db:"decider_owner" json:"decider_owner,omitempty"`
	Status         string          `db:"status" json:"status"`
	TargetStage    string          `db:"target_stage" json:"target_stage"`
	EvalSnapshot   json.RawMessage `db:"eval_snapshot_json" json:"eval_snapshot"`
	RequestedAt    time.Time       `db:"requested_at" json:"requested_at"`
	DecidedAt      *time.Time      `db:"decided_at" json:"decided_at,omitempty"`
	Reason         *string         `db:"reason" json:"reason,omitempty"`
	WorkflowID     *string         `db:"workflow_id" json:"workflow_id,omitempty"`
}

// approvalColumns reads a NULL owner, that of a row stored before migration 22, as the
// token name beside it.
const approvalColumns = `a.id, a.model_version_id, m.project_id, m.model_name, v.version_number,
    a.requested_by, coalesce(a.requester_owner, a.requested_by) AS requester_owner, a.approved_by,
    coalesce(a.decider_owner, a.approved_by) AS decider_owner, a.status::text AS status,
    a.target_stage::text AS target_stage, a.eval_snapshot_json, a.requested_at, a.decided_at,
    a.reason, a.workflow_id`

const sqlApprovalFrom = ` FROM approvals a JOIN model_versions v ON v.id = a.model_version_id
    JOIN models m ON m.id = v.model_id `

// ApprovalRequest is a request for a version's promotion. Snapshot is the evaluation as the
// requester saw it; the database keeps it unchanged, so the approver decides on exactly it.
type ApprovalRequest struct {
	ModelVersionID uuid.UUID
	TargetStage    string // staging or prod
	RequestedBy    string
	// RequesterOwner is the owner of the requesting token (Job.SubmitterOwner). Empty stores
	// NULL, which reads as RequestedBy. A workflow that read its job before migration 22
	// has no owner to give.
	RequesterOwner string
	Snapshot       json.RawMessage
	// WorkflowID is the workflow that promotes the version once approved; the decision is
	// sent to it through the outbox.
	WorkflowID string
}

const sqlFindRequest = `SELECT ` + approvalColumns + sqlApprovalFrom + `
WHERE a.model_version_id = $1 AND a.target_stage = $2 AND a.workflow_id = $3
ORDER BY a.requested_at DESC LIMIT 1`

const sqlInsertApproval = `
INSERT INTO approvals (id, model_version_id, requested_by, target_stage, eval_snapshot_json, workflow_id,
                       requester_owner)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), NULLIF($7, ''))`

// RequestApproval stores a pending request. A workflow that requests again (a retried step)
// gets the request it already made, whatever its status, instead of a second one.
func (s *Store) RequestApproval(ctx context.Context, req ApprovalRequest) (Approval, error) {
	doing := fmt.Sprintf("request approval of model version %s for %s", req.ModelVersionID, req.TargetStage)
	if req.WorkflowID != "" {
		rows, err := s.pool.Query(ctx, sqlFindRequest, req.ModelVersionID, req.TargetStage, req.WorkflowID)
		if err != nil {
			return Approval{}, wrap(err, doing)
		}
		existing, err := collectOne[Approval](rows)
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return existing, wrap(err, doing)
		}
	}

	id, err := uuid.NewV7()
	if err != nil {
		return Approval{}, fmt.Errorf("%s: %w", doing, err)
	}
	_, err = s.pool.Exec(ctx, sqlInsertApproval, id, req.ModelVersionID, req.RequestedBy, req.TargetStage,
		req.Snapshot, req.WorkflowID, req.RequesterOwner)
	if isUniqueViolation(err, "approvals_one_pending_idx") {
		return Approval{}, fmt.Errorf("%s: %w: a request for this version and stage is already pending", doing, ErrInvalid)
	}
	if err != nil {
		return Approval{}, wrap(err, doing)
	}
	return s.GetApproval(ctx, id)
}

// GetApproval reads one approval by id.
func (s *Store) GetApproval(ctx context.Context, id uuid.UUID) (Approval, error) {
	return getApproval(ctx, s.pool, id)
}

func getApproval(ctx context.Context, db querier, id uuid.UUID) (Approval, error) {
	doing := "get approval " + id.String()
	rows, err := db.Query(ctx, `SELECT `+approvalColumns+sqlApprovalFrom+`WHERE a.id = $1`, id)
	if err != nil {
		return Approval{}, wrap(err, doing)
	}
	a, err := collectOne[Approval](rows)
	return a, wrap(err, doing)
}

// ListApprovals returns approvals in a status (all when empty), oldest request first, at
// most limit of them.
func (s *Store) ListApprovals(ctx context.Context, status string, limit int) ([]Approval, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+approvalColumns+sqlApprovalFrom+`
		WHERE $1 = '' OR a.status::text = $1 ORDER BY a.requested_at, a.id LIMIT $2`, status, limit)
	if err != nil {
		return nil, wrap(err, "list approvals")
	}
	list, err := collectAll[Approval](rows)
	return list, wrap(err, "list approvals")
}

// ApprovalDecision is an approver's decision on a pending request.
type ApprovalDecision struct {
	ApprovalID uuid.UUID
	Approve    bool
	Reason     string
	// Audit names the approver. Its Actor.Name is recorded as the decider and
	// Actor.OwnerOrName() as the decider's owner.
	Audit *Audit
}

const sqlDecide = `
UPDATE approvals SET status = $2, approved_by = $3, decider_owner = $6, reason = $4, decided_at = $5
WHERE id = $1 AND status = 'pending'`

// DecideApproval approves or rejects a pending request and audits the decision, in one
// transaction. No token of the requester's owner, and no token with the requester's name,
// can decide the request (ErrSelfApproval). A request already decided returns
// ErrStaleStatus.
//
// The database's outbox trigger sends the decision to the request's workflow, which
// promotes the version. A request without a workflow (RequestPromotion) has nothing
// waiting for it, so its approval promotes the version in the same transaction. When the
// version can no longer be promoted, such as an archived one, the approval returns a
// *PromotionConflictError and the request stays pending.
func (s *Store) DecideApproval(ctx context.Context, d ApprovalDecision) (Approval, error) {
	doing := "decide approval " + d.ApprovalID.String()
	before, err := s.GetApproval(ctx, d.ApprovalID)
	if err != nil {
		return Approval{}, err
	}
	// A decided request is a conflict for every caller, its requester included.
	if before.Status != "pending" {
		return Approval{}, fmt.Errorf("%s: %w (it is %s)", doing, ErrStaleStatus, before.Status)
	}
	actor := d.Audit.Actor
	decider := actor.OwnerOrName()
	if before.RequesterOwner == decider || before.RequestedBy == actor.Name {
		return Approval{}, fmt.Errorf("%s: %w (requester %s of owner %s, decider %s of owner %s)",
			doing, ErrSelfApproval, before.RequestedBy, before.RequesterOwner, actor.Name, decider)
	}

	status := "rejected"
	if d.Approve {
		status = "approved"
	}
	promotes := d.Approve && before.WorkflowID == nil
	var after Approval
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		var version ModelVersion
		if promotes {
			// The model's lock comes first, in the order RequestPromotion takes it.
			locked, err := lockedVersion(ctx, tx, before.ModelVersionID, sqlModelOfVersion+` FOR UPDATE OF m`)
			if err != nil {
				return err
			}
			version = locked
		}
		tag, err := tx.Exec(ctx, sqlDecide, d.ApprovalID, status, actor.Name, d.Reason, d.Audit.At, decider)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w (decided meanwhile)", ErrStaleStatus)
		}
		after = before
		after.Status, after.DecidedBy, after.Reason, after.DecidedAt = status, &actor.Name, &d.Reason, &d.Audit.At
		after.DeciderOwner = &decider
		if err := writeAudit(ctx, tx, d.Audit, before.ProjectID, nil, before, after); err != nil {
			return err
		}
		if !promotes {
			return nil
		}
		return promoteApproved(ctx, tx, version, before.TargetStage, d.Audit)
	})
	if err != nil {
		return Approval{}, wrap(err, doing)
	}
	return s.GetApproval(ctx, d.ApprovalID)
}

// ListApprovalsOfVersion returns every request for a model version, oldest first.
func (s *Store) ListApprovalsOfVersion(ctx context.Context, versionID uuid.UUID) ([]Approval, error) {
	doing := "list approvals of model version " + versionID.String()
	rows, err := s.pool.Query(ctx, `SELECT `+approvalColumns+sqlApprovalFrom+`
		WHERE a.model_version_id = $1 ORDER BY a.requested_at, a.id`, versionID)
	if err != nil {
		return nil, wrap(err, doing)
	}
	list, err := collectAll[Approval](rows)
	return list, wrap(err, doing)
}

// ApprovalFilter selects approvals for a listing page.
type ApprovalFilter struct {
	Status   string   // pending, approved or rejected; empty for all
	Projects []string // the versions' projects; empty for all
	// AfterRequestedAt and AfterID are the last approval of the previous page; the page
	// starts after it. A zero AfterID starts at the oldest request.
	AfterRequestedAt time.Time
	AfterID          uuid.UUID
	Limit            int
}

// FilterApprovals returns a page of approvals, oldest request first.
func (s *Store) FilterApprovals(ctx context.Context, f ApprovalFilter) ([]Approval, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+approvalColumns+sqlApprovalFrom+`
		WHERE ($1 = '' OR a.status::text = $1)
		  AND (coalesce(cardinality($2::text[]), 0) = 0 OR m.project_id = ANY ($2))
		  AND ($3::uuid = '00000000-0000-0000-0000-000000000000' OR (a.requested_at, a.id) > ($4, $3))
		ORDER BY a.requested_at, a.id LIMIT $5`,
		f.Status, f.Projects, f.AfterID, f.AfterRequestedAt, f.Limit)
	if err != nil {
		return nil, wrap(err, "list approvals")
	}
	list, err := collectAll[Approval](rows)
	return list, wrap(err, "list approvals")
}
