package store_test

import (
	"context"
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// A second session cannot take the overlap lock while the first holds it. Once the
// holder's session is terminated, its lock is no longer alive and another session gets it.
func TestOverlapLockEndsWithSession(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	lock, err := s.TryOverlapLock(ctx)
	if err != nil || lock == nil {
		t.Fatalf("TryOverlapLock = %v, %v; want the lock", lock, err)
	}
	if second, err := s.TryOverlapLock(ctx); err != nil || second != nil {
		t.Fatalf("second TryOverlapLock = %v, %v; want nil and no error while the first holds it", second, err)
	}
	if !lock.Alive(ctx) {
		t.Fatal("lock not alive right after it was taken")
	}

	var pid int
	err = s.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if lock.Alive(ctx) {
		t.Error("lock alive after its session was terminated")
	}
	lock.Release(ctx)
	pgtest.WaitAdvisoryLocksReleased(t, s.Pool(), pid)

	other, err := s.TryOverlapLock(ctx)
	if err != nil || other == nil {
		t.Fatalf("TryOverlapLock after the holder's session ended = %v, %v; want the lock", other, err)
	}
	other.Release(ctx)
}
