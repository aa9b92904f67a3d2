package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A promotion request made through the API names no workflow, because the version's job
// workflow may have ended long ago. Nothing waits for its decision, so the approval of
// such a request promotes the version in the same transaction (promoteApproved). The
// rules are those of a workflow's promotion: prod archives the previous prod version, the
// order of the approvals decides, and an archived version stays archived.
//
// Promotions to prod and approvals that promote hold the model's row FOR UPDATE. A request
// holds it FOR SHARE while it checks the stage and inserts, so it never checks a stage they
// are about to change. A workflow's promotion to staging takes no lock on the model, so a
// request may be stored for the stage a version is just reaching, and its approval then
// changes nothing. An approval that promotes locks the model before it updates the
// approval, the order a request takes, so the two cannot deadlock.

// promotionStages are the stages a request may name, as the approval_target_stage type.
var promotionStages = []string{"staging", "prod"}

// PromotionRequest is a request, made through the API, to promote an existing version.
type PromotionRequest struct {
	ModelVersionID uuid.UUID
	TargetStage    string // staging or prod
	// Audit names the requester and is recorded with the new approval. Its Actor.Name is
	// stored as requested_by and Actor.OwnerOrName() as requester_owner, so no token of
	// that owner can decide the request.
	Audit *Audit
}

// sqlModelOfVersion selects the id of version $1's model. Callers append the lock clause.
const sqlModelOfVersion = `SELECT m.id FROM models m JOIN model_versions v ON v.model_id = m.id WHERE v.id = $1`

const sqlPendingRequest = `
SELECT id FROM approvals WHERE model_version_id = $1 AND target_stage = $2 AND status = 'pending'`

// RequestPromotion stores a pending request to promote an existing version, with its audit
// record, in one transaction. It returns ErrNotFound for a version that does not exist, a
// *PromotionConflictError when the version is archived, already in the stage, or in prod
// and asked for staging, and a *PendingApprovalError when a request for the version and
// stage is pending. Nothing waits for the decision: DecideApproval promotes on approval.
func (s *Store) RequestPromotion(ctx context.Context, req PromotionRequest) (Approval, error) {
	doing := fmt.Sprintf("request promotion of model version %s to %s", req.ModelVersionID, req.TargetStage)
	if !slices.Contains(promotionStages, req.TargetStage) {
		return Approval{}, fmt.Errorf("%s: %w: the target stage must be staging or prod", doing, ErrInvalid)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Approval{}, fmt.Errorf("%s: %w", doing, err)
	}

	var created Approval
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		v, err := lockedVersion(ctx, tx, req.ModelVersionID, sqlModelOfVersion+` FOR SHARE OF m`)
		if err != nil {
			return err
		}
		if err := checkPromotable(v, req.TargetStage); err != nil {
			return err
		}
		if err := checkNoPendingRequest(ctx, tx, v.ID, req.TargetStage); err != nil {
			return err
		}
		snapshot, err := promotionSnapshot(v, req.TargetStage)
		if err != nil {
			return err
		}
		actor := req.Audit.Actor
		_, err = tx.Exec(ctx, sqlInsertApproval, id, v.ID, actor.Name, req.TargetStage, snapshot, "",
			actor.OwnerOrName())
		if err != nil {
			return err
		}
		if created, err = getApproval(ctx, tx, id); err != nil {
			return err
		}
		return writeAudit(ctx, tx, req.Audit, v.ProjectID, nil, nil, created)
	})
	if isUniqueViolation(err, "approvals_one_pending_idx") {
		// A concurrent request for the same version and stage committed first.
		return Approval{}, fmt.Errorf("%s: %w", doing, s.pendingRequestError(ctx, req))
	}
	if err != nil {
		return Approval{}, wrap(err, doing)
	}
	return created, nil
}

// lockedVersion takes the lock of lockModel, a sqlModelOfVersion statement, on the version's
// model and then reads the version, so that the stage it returns stays current until the
// transaction ends.
func lockedVersion(ctx context.Context, tx pgx.Tx, id uuid.UUID, lockModel string) (ModelVersion, error) {
	var modelID uuid.UUID
	if err := tx.QueryRow(ctx, lockModel, id).Scan(&modelID); err != nil {
		return ModelVersion{}, err
	}
	return getModelVersion(ctx, tx, id)
}

// checkPromotable returns a *PromotionConflictError when v's stage rules out a request for
// stage: an archived version stays archived, a version already in the stage needs no
// request, and a prod version moved to staging would leave its model without one.
func checkPromotable(v ModelVersion, stage string) error {
	name := fmt.Sprintf("version %d of model %s/%s", v.VersionNumber, v.ProjectID, v.ModelName)
	var reason string
	switch {
	case v.Stage == "archived":
		reason = name + " is archived, and an archived version stays archived"
	case v.Stage == stage:
		reason = name + " is already in " + stage
	case v.Stage == "prod":
		reason = name + " is in prod; moving it to " + stage + " would leave the model without a prod version"
	default:
		return nil
	}
	return &PromotionConflictError{VersionID: v.ID, Reason: reason}
}

func checkNoPendingRequest(ctx context.Context, tx pgx.Tx, versionID uuid.UUID, stage string) error {
	var pending uuid.UUID
	err := tx.QueryRow(ctx, sqlPendingRequest, versionID, stage).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return &PendingApprovalError{ApprovalID: pending}
}

// pendingRequestError names the pending request that made req's insert fail. When that
// request was decided before this read, it returns ErrStaleStatus, and a new request may
// succeed.
func (s *Store) pendingRequestError(ctx context.Context, req PromotionRequest) error {
	var pending uuid.UUID
	err := s.pool.QueryRow(ctx, sqlPendingRequest, req.ModelVersionID, req.TargetStage).Scan(&pending)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: a concurrent request for this version and stage was decided meanwhile",
			ErrStaleStatus)
	}
	if err != nil {
		return wrap(err, "find the pending request")
	}
	return &PendingApprovalError{ApprovalID: pending}
}

// promotionSnapshot is the evaluation shown to the approver of a request made through the
// API: the version's stage and the metrics it was registered with, fixed at the request.
func promotionSnapshot(v ModelVersion, stage string) (json.RawMessage, error) {
	metrics := v.EvalMetrics
	if len(metrics) == 0 {
		metrics = json.RawMessage("{}")
	}
	snapshot, err := json.Marshal(map[string]any{
		"model_version_id": v.ID, "target_stage": stage, "current_stage": v.Stage,
		"evaluation": map[string]any{"metrics": metrics},
	})
	if err != nil {
		return nil, fmt.Errorf("encode the evaluation snapshot: %w", err)
	}
	return snapshot, nil
}

// promoteApproved moves v, read under its model's lock, to stage for an approval decided in
// tx, and audits each changed version. A version that reached the stage meanwhile is left
// as it is. The rules of PromoteVersion apply. A promotion they rule out returns a
// *PromotionConflictError, which rolls the decision back, so the request stays pending.
func promoteApproved(ctx context.Context, tx pgx.Tx, v ModelVersion, stage string, audit *Audit) error {
	if v.Stage == stage {
		return nil
	}
	if err := checkPromotable(v, stage); err != nil {
		return err
	}
	if stage == "prod" {
		if err := replaceProd(ctx, tx, v, audit); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, sqlPromote, v.ID, stage, audit.Actor.Name); err != nil {
		return err
	}
	return auditVersionChange(ctx, tx, audit, "model_version.promote", v)
}

// replaceProd archives the model's prod version for v, unless that version was approved for
// prod after v's approval of this transaction. That happens when another replica's clock
// runs ahead, or when an approval whose time was taken after this one's committed first.
func replaceProd(ctx context.Context, tx pgx.Tx, v ModelVersion, audit *Audit) error {
	later, err := laterProdVersion(ctx, tx, v)
	if err != nil {
		return err
	}
	if later != 0 {
		return &PromotionConflictError{VersionID: v.ID, Reason: fmt.Sprintf(
			"version %d of model %s/%s was approved for prod after this decision and stays in prod; "+
				"approve again to replace it", later, v.ProjectID, v.ModelName)}
	}

	rows, err := tx.Query(ctx, `SELECT `+versionColumns+sqlVersionFrom+`
		WHERE v.model_id = $1 AND v.stage = 'prod' AND v.id <> $2`, v.ModelID, v.ID)
	if err != nil {
		return err
	}
	previous, err := collectAll[ModelVersion](rows)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlArchiveProd, v.ModelID, v.ID); err != nil {
		return err
	}
	for _, p := range previous {
		if err := auditVersionChange(ctx, tx, audit, "model_version.archive", p); err != nil {
			return err
		}
	}
	return nil
}

// auditVersionChange records the change of version before under action, with the version
// as tx now has it, on behalf of the approval's decider.
func auditVersionChange(ctx context.Context, tx pgx.Tx, decision *Audit, action string, before ModelVersion) error {
	after, err := getModelVersion(ctx, tx, before.ID)
	if err != nil {
		return err
	}
	record := *decision
	record.Action = action
	return writeAudit(ctx, tx, &record, before.ProjectID, nil, before, after)
}
