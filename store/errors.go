package store

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinel errors callers test with errors.Is. Every error the store returns wraps one of
// these or a driver error, with what was being done.
var (
	// ErrNotFound: no row has the given id.
	ErrNotFound = errors.New("not found")
	// ErrDuplicateIdempotencyKey: the project already has a job with this key. The error is
	// a *DuplicateKeyError that names the job.
	ErrDuplicateIdempotencyKey = errors.New("duplicate idempotency key")
	// ErrIllegalTransition: the status change is not in the transition table.
	ErrIllegalTransition = errors.New("illegal status transition")
	// ErrStaleStatus: the row is no longer in the status the caller read, because another
	// writer changed it first. Read it again and decide again.
	ErrStaleStatus = errors.New("status changed since it was read")
	// ErrImmutable: the change touches a column that cannot change after insert.
	ErrImmutable = errors.New("column cannot change after insert")
	// ErrBudgetExceeded: the GPU-hour debit would take the project past its budget.
	ErrBudgetExceeded = errors.New("GPU-hour budget exceeded")
	// ErrNoPartition: no jobs partition covers the submission time. The partition task
	// creates them months ahead; run `schedulerd cron run partitions` to create them now.
	ErrNoPartition = errors.New("no jobs partition for this month")
	// ErrInvalid: a value breaks a rule of the schema (range, format or reference).
	ErrInvalid = errors.New("invalid value")
	// ErrAlreadyRevoked: the API token was revoked before. The error is a
	// *RevokedTokenError that carries the token as stored.
	ErrAlreadyRevoked = errors.New("API token already revoked")
	// ErrApprovalPending: a request for the model version and stage is already pending.
	// The error is a *PendingApprovalError that names it.
	ErrApprovalPending = errors.New("approval already pending")
	// ErrPromotionConflict: the model version's stage, or a later prod approval of its
	// model, rules out the requested promotion. The error is a *PromotionConflictError
	// with the reason.
	ErrPromotionConflict = errors.New("promotion conflicts with the model's stages")
)

// PendingApprovalError is returned when a promotion request finds a pending request for the
// same version and stage, which may be a workflow's.
type PendingApprovalError struct {
	ApprovalID uuid.UUID
}

func (e *PendingApprovalError) Error() string {
	return fmt.Sprintf("approval %s for this version and stage is already pending", e.ApprovalID)
}

func (e *PendingApprovalError) Unwrap() error { return ErrApprovalPending }

// PromotionConflictError is returned when a version cannot be requested for, or promoted
// to, a stage. Reason names the version and the rule, such as "version 3 of model
// vision/resnet is archived, and an archived version stays archived".
type PromotionConflictError struct {
	VersionID uuid.UUID
	Reason    string
}

func (e *PromotionConflictError) Error() string { return e.Reason }

func (e *PromotionConflictError) Unwrap() error { return ErrPromotionConflict }

// DuplicateKeyError is returned when a submission reuses an idempotency key.
type DuplicateKeyError struct {
	JobID uuid.UUID
	// SameRequest is true when the earlier submission had the same content, so the caller
	// is retrying; false when the key was reused for a different request.
	SameRequest bool
}

func (e *DuplicateKeyError) Error() string {
	if e.SameRequest {
		return fmt.Sprintf("idempotency key already used by job %s", e.JobID)
	}
	return fmt.Sprintf("idempotency key already used by job %s with a different request", e.JobID)
}

func (e *DuplicateKeyError) Unwrap() error { return ErrDuplicateIdempotencyKey }

// RevokedTokenError is returned when a revoke finds its token already revoked. Token has
// the revoked_at of the first revoke.
type RevokedTokenError struct {
	Token Token
}

func (e *RevokedTokenError) Error() string {
	if e.Token.RevokedAt == nil {
		return ErrAlreadyRevoked.Error()
	}
	return "already revoked at " + e.Token.RevokedAt.UTC().Format(time.RFC3339)
}

func (e *RevokedTokenError) Unwrap() error { return ErrAlreadyRevoked }

// Unreachable reports whether err means that the database could not be reached: a failed
// connection, or a network error on an open one. The statement that failed wrote nothing,
// unless the error came while a COMMIT was in flight.
func Unreachable(err error) bool {
	var connectErr *pgconn.ConnectError
	var netErr *net.OpError
	return errors.As(err, &connectErr) || errors.As(err, &netErr)
}

// wrap adds what the store was doing to err and maps PostgreSQL errors that callers act on
// to the sentinels above.
func wrap(err error, doing string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", doing, ErrNotFound)
	}

	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return fmt.Errorf("%s: %w", doing, err)
	}
	switch {
	case pgErr.Code == "SD001":
		return fmt.Errorf("%s: %w: %s", doing, ErrIllegalTransition, pgErr.Message)
	case pgErr.Code == "SD002":
		return fmt.Errorf("%s: %w: %s", doing, ErrImmutable, pgErr.Message)
	case pgErr.Code == "23514" && pgErr.ConstraintName == "":
		// A check violation without a constraint is the partition router finding no
		// partition for the row.
		return fmt.Errorf("%s: %w", doing, ErrNoPartition)
	case pgErr.Code == "23514", pgErr.Code == "23503", pgErr.Code == "23502", pgErr.Code == "22P02",
		// Text PostgreSQL cannot store: a NUL byte, or invalid UTF-8.
		pgErr.Code == "22021", pgErr.Code == "22P05":
		return fmt.Errorf("%s: %w: %s (%s)", doing, ErrInvalid, pgErr.Message, pgErr.ConstraintName)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
