package retention_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/retention"
)

// TestRetentionKeepsObjectsReportedAgain crashes a run after it marked two checkpoints of a
// preempted run. Before the next run, the job's second run writes its own checkpoints at
// the same URIs, reports them and makes one its resume point. The next run must not delete
// these objects, which now belong to live rows.
func TestRetentionKeepsObjectsReportedAgain(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	j := f.job("vision", "running")
	first, second := f.run(j, 1), f.run(j, 2)
	old := func(s float64) ckpt { return ckpt{meta: step(s, nil), age: 5 * day} }
	ids := make(map[string]uuid.UUID)
	ids["slot-a"], _ = f.checkpointAt(first, "jobs/j/slot-a", old(100))
	ids["shards"], _ = f.checkpointAt(first, "jobs/j/shards", ckpt{meta: step(150, nil), age: 5 * day, shards: 2})
	ids["step-200"], _ = f.checkpoint(first, old(200))
	var lastURI string
	ids["step-300"], lastURI = f.checkpoint(first, old(300))
	f.exec("UPDATE runs SET last_checkpoint_uri = $2, last_checkpoint_step = 300 WHERE id = $1", first, lastURI)

	crashing := f.retainer(retention.Policy{KeepLatest: 1, MinAge: day})
	crash := errors.New("crash before DeleteObjects")
	retention.SetHooks(crashing, func(context.Context) error { return crash }, nil)
	if _, err := crashing.Run(f.ctx, f.now, false); !errors.Is(err, crash) {
		t.Fatalf("run error %v, want the injected crash", err)
	}

	// The second run writes the objects again and reports them.
	young := ckpt{meta: step(400, nil), age: time.Minute}
	var slotURI string
	ids["second-slot-a"], slotURI = f.checkpointAt(second, "jobs/j/slot-a", young)
	ids["second-shards"], _ = f.checkpointAt(second, "jobs/j/shards",
		ckpt{meta: step(500, nil), age: time.Minute, shards: 2})
	f.exec("UPDATE runs SET last_checkpoint_uri = $2, last_checkpoint_step = 400 WHERE id = $1", second, slotURI)

	report, err := f.retainer(retention.Policy{KeepLatest: 1, MinAge: day}).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if report.Deleted != 1 {
		t.Errorf("next run deleted %d checkpoints, want 1 (step-200)", report.Deleted)
	}
	if report.Deferred != 2 {
		t.Errorf("next run deferred %d checkpoints, want 2 (slot-a and shards)", report.Deferred)
	}
	for _, name := range []string{"second-slot-a", "second-shards", "step-300"} {
		if !f.objectExists(uriOf(f, ids[name])) {
			t.Errorf("%s: object deleted while a live row names it", name)
		}
		if started, _ := f.rowState(ids[name]); started {
			t.Errorf("%s: row marked for deletion", name)
		}
	}
	for _, name := range []string{"slot-a", "shards"} {
		if started, deleted := f.rowState(ids[name]); !started || deleted {
			t.Errorf("%s: delete started %v and finished %v, want started and not finished", name, started, deleted)
		}
	}
	if _, deleted := f.rowState(ids["step-200"]); !deleted || f.objectExists(uriOf(f, ids["step-200"])) {
		t.Error("step-200: want its row deleted and its object gone")
	}
}
