package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// A second revoke changes nothing and returns the token with the first revoke's time, so
// that the caller can say when it was revoked. Only the first revoke is audited.
func TestRevokeTokenTwice(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	token, err := s.CreateToken(ctx, store.Token{Name: "ci", Role: store.RoleAdmin, CreatedAt: time.Now()},
		[]byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	audit := func(action string) *store.Audit {
		return &store.Audit{Actor: store.Actor{Name: "test", Role: store.RoleAdmin}, Action: action, At: time.Now()}
	}
	first, err := s.RevokeToken(ctx, token.ID, time.Now(), audit("token.revoke"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.RevokeToken(ctx, token.ID, time.Now().Add(time.Hour), audit("token.revoke"))
	if !errors.Is(err, store.ErrAlreadyRevoked) {
		t.Fatalf("second revoke: %v, want ErrAlreadyRevoked", err)
	}
	var revoked *store.RevokedTokenError
	if !errors.As(err, &revoked) {
		t.Fatalf("second revoke: %T, want a *store.RevokedTokenError", err)
	}
	if revoked.Token.ID != token.ID {
		t.Errorf("error's token %s, want %s", revoked.Token.ID, token.ID)
	}
	if revoked.Token.RevokedAt == nil || !revoked.Token.RevokedAt.Equal(*first.RevokedAt) {
		t.Errorf("error's revoked_at %v, want the first revoke's %v", revoked.Token.RevokedAt, *first.RevokedAt)
	}
	want := "revoke API token " + token.ID.String() + ": already revoked at " +
		first.RevokedAt.UTC().Format(time.RFC3339)
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	var audits int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'token.revoke'`).
		Scan(&audits); err != nil {
		t.Fatal(err)
	}
	if audits != 1 {
		t.Errorf("%d token.revoke audit records, want 1", audits)
	}
}

func TestRevokeUnknownToken(t *testing.T) {
	s := setup(t)
	_, err := s.RevokeToken(context.Background(), uuid.New(), time.Now(), nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke of an unknown id: %v, want ErrNotFound", err)
	}
}
