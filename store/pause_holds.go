package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A pause by an operator or admin token holds the job: a submitter's resume of it changes
// no row, while the submitter may still cancel the job or change its priority. The store
// enforces the hold in the guarded statement itself (sqlSetJobStatus), so that a pause
// that lands between a caller's read and its resume still holds. Each method reads the
// actor from its audit argument, which the API passes for every job action of every role.
// A nil audit is a caller without a token (the replay, the workflows, tests): its pause
// holds nothing and its resume is never held back.

// PauseHeldError is returned by a resume that a pause hold stopped. Nothing was written.
type PauseHeldError struct {
	Job uuid.UUID
	// Role and Token are the role (operator or admin) and name of the token whose pause
	// holds the job.
	Role  Role
	Token string
}

func (e *PauseHeldError) Error() string {
	return fmt.Sprintf("job %s was paused by %s token %q, so an operator or admin must resume it",
		e.Job, e.Role, e.Token)
}

// pauserOf returns the role and token name that a pause by the actor of audit records, both
// nil for a nil audit.
func pauserOf(audit *Audit) (*Role, *string) {
	if audit == nil {
		return nil, nil
	}
	return &audit.Actor.Role, &audit.Actor.Name
}

// liftsHolds reports whether the actor of audit may resume a job under a pause hold.
func liftsHolds(audit *Audit) bool {
	return audit == nil || audit.Actor.Role != RoleSubmitter
}

// resumes reports whether moving a job from one status to another resumes it: a paused job
// back to the queue, or a paused hpo parent back to running.
func resumes(from, to JobStatus) bool {
	return from == JobPaused && (to == JobQueued || to == JobRunning)
}

// heldPauseError returns a *PauseHeldError when the move is a resume by an actor that may
// not lift holds and the job ref is still paused under a hold. It explains a guarded
// statement that changed no row, and returns nil in every other case.
func (s *Store) heldPauseError(ctx context.Context, ref JobRef, from, to JobStatus, audit *Audit) error {
	if !resumes(from, to) || liftsHolds(audit) {
		return nil
	}
	var role *Role
	var token *string
	err := s.pool.QueryRow(ctx, `SELECT paused_by_role::text, paused_by_token FROM jobs
		WHERE id = $1 AND created_at = $2 AND status = 'paused'`, ref.ID, ref.CreatedAt).Scan(&role, &token)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the pause of job %s: %w", ref.ID, err)
	}
	if role == nil || *role == RoleSubmitter || token == nil {
		return nil
	}
	return &PauseHeldError{Job: ref.ID, Role: *role, Token: *token}
}

// sqlClaimPause makes a paused job's pause the caller's own. Any caller may claim the pause
// of a trial that its hpo parent's pause paused. An operator or admin ($3) may also claim a
// pause without a hold, which then holds the job.
const sqlClaimPause = `
UPDATE jobs SET paused_by_parent = false, paused_by_role = $3, paused_by_token = $4
WHERE id = $1 AND created_at = $2 AND status = 'paused'
  AND (paused_by_parent
       OR (coalesce($3::api_role, 'submitter') <> 'submitter'
           AND coalesce(paused_by_role, 'submitter') = 'submitter'))
RETURNING ` + jobColumns

// ClaimPause makes the pause of a paused job the pause of the actor of audit, and records
// the change when audit is not nil. A trial that its hpo parent's pause paused then stays
// paused when the parent is resumed. An operator's or admin's claim also holds the job, as
// its own pause would have. It returns ErrStaleStatus when the job is no longer paused, or
// no longer in a pause that the actor may claim: a pause by its parent for any actor, or
// one without a hold for an operator or admin.
func (s *Store) ClaimPause(ctx context.Context, ref JobRef, audit *Audit) (Job, error) {
	doing := fmt.Sprintf("claim the pause of job %s", ref.ID)
	role, token := pauserOf(audit)
	var job Job
	err := s.inTxRetry(ctx, func(tx pgx.Tx) error {
		before, err := lockPausedJob(ctx, tx, ref)
		if err != nil {
			return err
		}

		rows, err := tx.Query(ctx, sqlClaimPause, ref.ID, ref.CreatedAt, role, token)
		if err != nil {
			return err
		}
		if job, err = collectOne[Job](rows); err != nil {
			return err
		}
		return writeAudit(ctx, tx, audit, job.ProjectID, &job.ID, before.image(), jobImage(job))
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("%s: %w (it is no longer in a pause that the caller may claim)", doing,
			ErrStaleStatus)
	}
	return job, wrap(err, doing)
}

// pausedJob is the part of a job that ClaimPause and the moves of an hpo parent's trials
// change, as read before the change.
type pausedJob struct {
	Status         JobStatus `db:"status"`
	Priority       int       `db:"priority"`
	PausedByParent bool      `db:"paused_by_parent"`
	PausedByRole   *Role     `db:"paused_by_role"`
}

// image is the job as audit records show it.
func (p pausedJob) image() map[string]any {
	return statusImage(p.Status, p.Priority, p.PausedByParent, p.PausedByRole)
}

// lockPausedJob locks the job's row and reads it as an audit record's before image shows
// it. A status change clears the pauser, so the image is read before the change.
func lockPausedJob(ctx context.Context, tx pgx.Tx, ref JobRef) (pausedJob, error) {
	rows, err := tx.Query(ctx, `SELECT status::text AS status, priority, paused_by_parent,
		    paused_by_role::text AS paused_by_role
		FROM jobs WHERE id = $1 AND created_at = $2 FOR UPDATE`, ref.ID, ref.CreatedAt)
	if err != nil {
		return pausedJob{}, err
	}
	return collectOne[pausedJob](rows)
}
