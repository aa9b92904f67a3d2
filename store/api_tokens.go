package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Role is the permission level of an API token, a value of the api_role type. The api
// package decides what each role allows, except for pause holds, which the store enforces
// in its statements (PauseHeldError).
type Role string

const (
	RoleSubmitter Role = "submitter"
	RoleOperator  Role = "operator"
	RoleAdmin     Role = "admin"
)

// Token is one row of api_tokens, without its hash. Owner is the person or service account
// that holds the token, shared by all of their tokens. The requester of an approval and its
// decider must have different owners.
type Token struct {
	ID        uuid.UUID  `db:"id"`
	Name      string     `db:"name"`
	Owner     string     `db:"owner"`
	Role      Role       `db:"role"`
	Projects  []string   `db:"projects"`
	CreatedAt time.Time  `db:"created_at"`
	ExpiresAt *time.Time `db:"expires_at"`
	RevokedAt *time.Time `db:"revoked_at"`
}

// tokenColumns reads a NULL owner, that of a token created before migration 22, as the
// token's name.
const tokenColumns = `id, name, coalesce(owner, name) AS owner, role::text AS role,
    projects::text[] AS projects, created_at, expires_at, revoked_at`

const sqlInsertToken = `
INSERT INTO api_tokens (token_sha256, name, owner, role, projects, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING ` + tokenColumns

// CreateToken stores a token by the SHA-256 of its secret. The secret itself is never
// stored, so it cannot be shown again. An empty t.Owner stores the name as the owner.
func (s *Store) CreateToken(ctx context.Context, t Token, secretSHA256 []byte, audit *Audit) (Token, error) {
	doing := "create API token " + t.Name
	projects := t.Projects
	if projects == nil {
		projects = []string{}
	}
	owner := t.Owner
	if owner == "" {
		owner = t.Name
	}

	var created Token
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlInsertToken, secretSHA256, t.Name, owner, t.Role, projects,
			t.CreatedAt, t.ExpiresAt)
		if err != nil {
			return err
		}
		created, err = collectOne[Token](rows)
		if err != nil {
			return err
		}
		after := map[string]any{"id": created.ID, "name": created.Name, "owner": created.Owner,
			"role": created.Role, "projects": created.Projects, "expires_at": created.ExpiresAt}
		return writeAudit(ctx, tx, audit, "", nil, nil, after)
	})
	return created, wrap(err, doing)
}

const sqlTokenByHash = `
SELECT ` + tokenColumns + ` FROM api_tokens
WHERE token_sha256 = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)`

// TokenByHash finds the live token whose secret hashes to secretSHA256. A revoked or
// expired token is ErrNotFound, like an unknown one.
func (s *Store) TokenByHash(ctx context.Context, secretSHA256 []byte, now time.Time) (Token, error) {
	rows, err := s.pool.Query(ctx, sqlTokenByHash, secretSHA256, now)
	if err != nil {
		return Token{}, wrap(err, "look up API token")
	}
	token, err := collectOne[Token](rows)
	return token, wrap(err, "look up API token")
}

const sqlListTokens = `SELECT ` + tokenColumns + ` FROM api_tokens ORDER BY created_at, id`

// ListTokens reads every token, revoked ones included, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]Token, error) {
	rows, err := s.pool.Query(ctx, sqlListTokens)
	if err != nil {
		return nil, wrap(err, "list API tokens")
	}
	tokens, err := collectAll[Token](rows)
	return tokens, wrap(err, "list API tokens")
}

const sqlRevokeToken = `
UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL
RETURNING ` + tokenColumns

// RevokeToken stops a token from working. Revoking a revoked token changes nothing and
// returns a *RevokedTokenError (ErrAlreadyRevoked), and an unknown id ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id uuid.UUID, at time.Time, audit *Audit) (Token, error) {
	doing := "revoke API token " + id.String()
	var revoked Token
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlRevokeToken, id, at)
		if err != nil {
			return err
		}
		revoked, err = collectOne[Token](rows)
		if err != nil {
			return err
		}
		after := map[string]any{"id": revoked.ID, "name": revoked.Name, "owner": revoked.Owner,
			"projects": revoked.Projects, "revoked_at": revoked.RevokedAt}
		return writeAudit(ctx, tx, audit, "", nil, nil, after)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Token{}, s.revokedOrMissing(ctx, id, doing)
	}
	return revoked, wrap(err, doing)
}

func (s *Store) revokedOrMissing(ctx context.Context, id uuid.UUID, doing string) error {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, id)
	if err != nil {
		return wrap(err, doing)
	}
	token, err := collectOne[Token](rows)
	if err != nil {
		return wrap(err, doing)
	}
	return fmt.Errorf("%s: %w", doing, &RevokedTokenError{Token: token})
}
