package retention_test

import (
	"context"
	"errors"
	"testing"

	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/retention"
)

// smallBatches returns a retainer that deletes three objects a request, so that a run of
// the scenario takes several batches.
func smallBatches(f *fixture) *retention.Retainer {
	f.t.Helper()
	r, err := retention.New(f.pool, f.s3, retention.Config{Policy: globalPolicy, BatchSize: 3})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func TestCrashAfterS3Delete(t *testing.T) {
	f := newFixture(t)
	ids := scenario(f)
	crashing := smallBatches(f)
	crash := errors.New("crash after DeleteObjects")
	retention.SetHooks(crashing, nil, func(context.Context) error { return crash })

	if _, err := crashing.Run(f.ctx, f.now, false); !errors.Is(err, crash) {
		t.Fatalf("run error %v, want the injected crash", err)
	}
	goners := make(map[string]bool)
	for _, n := range scenarioDeleted {
		goners[n] = true
	}
	for name, id := range ids {
		started, deleted := f.rowState(id)
		if deleted {
			t.Errorf("%s has deleted_at after a crash before any row update", name)
		}
		if started != goners[name] {
			t.Errorf("%s: delete started %v, want %v", name, started, goners[name])
		}
		// A row without delete_started_at must still have its object.
		if !started && !f.objectExists(uriOf(f, id)) {
			t.Errorf("%s: object gone while its row does not say so", name)
		}
	}

	report, err := smallBatches(f).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if report.Resumed != len(scenarioDeleted) || report.Deleted != len(scenarioDeleted) || len(report.Planned) != 0 {
		t.Errorf("next run resumed %d, deleted %d, planned %d; want %d, %d, 0",
			report.Resumed, report.Deleted, len(report.Planned), len(scenarioDeleted), len(scenarioDeleted))
	}
	assertDeleted(f, ids, scenarioDeleted)
}

func TestS3OutageDuringRetention(t *testing.T) {
	f := newFixture(t)
	ids := scenario(f)
	server := s3test.Shared(t)
	halted := false
	t.Cleanup(func() {
		if halted {
			if err := server.Restart(); err != nil {
				t.Errorf("restart S3 server: %v", err)
			}
		}
	})

	// The server stops after the first batch of three objects is deleted.
	r := smallBatches(f)
	batches := 0
	retention.SetHooks(r, func(context.Context) error {
		batches++
		if batches == 2 {
			halted = true
			return server.Halt()
		}
		return nil
	}, nil)

	report, err := r.Run(f.ctx, f.now, false)
	if err == nil {
		t.Fatal("run succeeded with the S3 server stopped, want an error")
	}
	if report.Deleted == 0 || report.Deleted == len(scenarioDeleted) {
		t.Errorf("run deleted %d before the outage, want some but not all", report.Deleted)
	}

	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	halted = false
	for name, id := range ids {
		if _, deleted := f.rowState(id); deleted && f.objectExists(uriOf(f, id)) {
			t.Errorf("%s marked deleted but its object exists", name)
		}
	}

	next, err := smallBatches(f).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if next.Resumed != len(scenarioDeleted)-report.Deleted {
		t.Errorf("next run resumed %d, want %d", next.Resumed, len(scenarioDeleted)-report.Deleted)
	}
	assertDeleted(f, ids, scenarioDeleted)
}
