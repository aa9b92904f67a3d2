package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// A Drain whose overlap lock's session ends keeps overlapping until its next check of the
// session, then gives the lock up and keeps its rounds apart until it ends, also once the
// lock is free again.
func TestPipelineStopsOverlappingWhenLockLost(t *testing.T) {
	s := store.New(pgtest.NewPool(t))
	ctx := context.Background()
	p := &pipeline{s: New(s, Config{})}
	if !p.mayOverlap(ctx) {
		t.Fatal("the first round may not overlap, want it to take the free lock")
	}

	var pid int
	err := s.Pool().QueryRow(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	// The last check is now, however long the steps above took on a loaded machine.
	p.checked = time.Now()
	if !p.mayOverlap(ctx) {
		t.Error("stopped overlapping before the next check of the lock's session")
	}

	p.checked = time.Now().Add(-lockCheckInterval)
	if p.mayOverlap(ctx) {
		t.Error("still overlapping after a check found the lock's session gone")
	}
	if p.lock != nil {
		t.Error("the pipeline keeps the lost lock")
	}
	p.checked = time.Now().Add(-lockCheckInterval)
	if p.mayOverlap(ctx) {
		t.Error("overlapping again within the same Drain, want rounds apart until it ends")
	}
	pgtest.WaitAdvisoryLocksReleased(t, s.Pool(), pid)
	other, err := s.TryOverlapLock(ctx)
	if err != nil || other == nil {
		t.Fatalf("TryOverlapLock by another scheduler = %v, %v; want the lock its ended session freed", other, err)
	}
	other.Release(ctx)
}
