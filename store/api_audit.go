package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Actor is who takes an action: the holder of an API token, or a person with direct
// database access (TokenID nil), such as the one who creates the first token.
type Actor struct {
	TokenID *uuid.UUID
	Name    string
	// Owner is the person or service account behind the token (Token.Owner). Empty means
	// Name.
	Owner string
	Role  Role
}

// OwnerOrName returns the actor's owner, or its name when the owner is empty.
func (a Actor) OwnerOrName() string {
	if a.Owner != "" {
		return a.Owner
	}
	return a.Name
}

// Audit is a request to a store method to record its change in audit_log, in the same
// transaction as the change, so that no change lands without its record. The method fills
// in the before and after images of the rows it changed.
type Audit struct {
	Actor  Actor
	Action string
	At     time.Time
}

// AuditRecord is one row of audit_log.
type AuditRecord struct {
	ID        int64           `db:"id"`
	At        time.Time       `db:"at"`
	TokenID   *uuid.UUID      `db:"token_id"`
	Actor     string          `db:"actor"`
	Role      Role            `db:"role"`
	Action    string          `db:"action"`
	ProjectID *string         `db:"project_id"`
	JobID     *uuid.UUID      `db:"job_id"`
	Before    json.RawMessage `db:"before_json"`
	After     json.RawMessage `db:"after_json"`
}

const sqlInsertAudit = `
INSERT INTO audit_log (at, token_id, actor, role, action, project_id, job_id, before_json, after_json)
VALUES ($1, $2, $3, $4, $5, NULLIF($6, ''), $7, $8, $9)`

// writeAudit records one change in tx. A nil audit records nothing; a nil before or
// after image is stored as NULL.
func writeAudit(ctx context.Context, tx pgx.Tx, a *Audit, project string, job *uuid.UUID, before, after any) error {
	if a == nil {
		return nil
	}
	beforeJSON, err := imageJSON(before)
	if err != nil {
		return err
	}
	afterJSON, err := imageJSON(after)
	if err != nil {
		return err
	}

	_, err = tx.Exec(ctx, sqlInsertAudit, a.At, a.Actor.TokenID, a.Actor.Name, a.Actor.Role, a.Action,
		project, job, beforeJSON, afterJSON)
	if err != nil {
		return fmt.Errorf("record %s in the audit log: %w", a.Action, err)
	}
	return nil
}

func imageJSON(image any) ([]byte, error) {
	if image == nil {
		return nil, nil
	}
	encoded, err := json.Marshal(image)
	if err != nil {
		return nil, fmt.Errorf("encode audit image: %w", err)
	}
	return encoded, nil
}

// AuditFilter selects audit records, newest first.
type AuditFilter struct {
	// ProjectID selects the records of one project; empty selects every project's. A
	// token's records count for each project that their after image lists. Revocations
	// recorded before the list was added to their image have none.
	ProjectID string
	BeforeID  int64 // only records with a smaller id, for paging; 0 for the newest
	Limit     int
}

const sqlListAudit = `
SELECT id, at, token_id, actor, role::text AS role, action, project_id, job_id, before_json, after_json
FROM audit_log
WHERE ($1 = '' OR project_id = $1 OR (project_id IS NULL AND after_json -> 'projects' ? $1))
  AND ($2 = 0 OR id < $2)
ORDER BY id DESC
LIMIT $3`

// ListAudit reads audit records, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	rows, err := s.pool.Query(ctx, sqlListAudit, f.ProjectID, f.BeforeID, f.Limit)
	if err != nil {
		return nil, wrap(err, "list audit records")
	}
	records, err := collectAll[AuditRecord](rows)
	return records, wrap(err, "list audit records")
}

// quotaImage is a quota as audit records show it.
func quotaImage(q QuotaState) map[string]any {
	return map[string]any{
		"gpu_hours_budget":    q.GPUHoursBudget,
		"max_concurrent_jobs": q.MaxConcurrentJobs,
		"priority_tier":       q.PriorityTier,
		"period_start":        q.PeriodStart.Format(time.DateOnly),
		"period_end":          q.PeriodEnd.Format(time.DateOnly),
		"drained_at":          q.DrainedAt,
		"drain_deadline":      q.DrainDeadline,
	}
}

// jobImage is the part of a job that API actions change, as audit records show it.
func jobImage(j Job) map[string]any {
	return statusImage(j.Status, j.Priority, j.PausedByParent, j.PausedByRole)
}

// statusImage is jobImage from its parts. paused_by_parent appears only when true, so the
// images of jobs outside an hpo search read as before it existed. paused_by, the role of
// the token whose pause paused the job, appears only when the job records one.
func statusImage(status JobStatus, priority int, pausedByParent bool, pausedBy *Role) map[string]any {
	image := map[string]any{"status": status, "priority": priority}
	if pausedByParent {
		image["paused_by_parent"] = true
	}
	if pausedBy != nil {
		image["paused_by"] = *pausedBy
	}
	return image
}
