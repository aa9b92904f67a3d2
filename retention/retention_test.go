package retention_test

import (
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/retention"
)

const day = 24 * time.Hour

var globalPolicy = retention.Policy{
	KeepLatest: 2, BestMetric: "eval_loss", BestDirection: retention.Min, MinAge: day,
}

// scenario builds runs that exercise every rule and returns each checkpoint by name.
func scenario(f *fixture) map[string]uuid.UUID {
	ids := make(map[string]uuid.UUID)
	uris := make(map[string]string)
	add := func(name string, run uuid.UUID, c ckpt) {
		if c.size == 0 {
			c.size = 1000
		}
		ids[name], uris[name] = f.checkpoint(run, c)
	}
	loss := func(v float64) map[string]any { return map[string]any{"eval_loss": v} }
	f.project("vision")
	f.project("nlp")
	f.exec(`INSERT INTO checkpoint_retention_overrides (project_id, keep_latest, best_metric, min_age)
		VALUES ('nlp', 1, '', '0')`)

	jobA := f.job("vision", "completed")
	a := f.run(jobA, 1)
	add("a1", a, ckpt{meta: step(100, loss(0.9)), age: 10 * day})
	add("a2", a, ckpt{meta: step(200, loss(0.3)), age: 9 * day})                 // best
	add("a3", a, ckpt{meta: step(300, loss(0.5)), age: 8 * day, shards: 3})      // a directory
	add("a4", a, ckpt{meta: step(400, loss(0.6)), age: 7 * day})                 // model version
	add("a5", a, ckpt{meta: step(500, loss(0.7)), age: 6 * day})                 // latest 2
	add("a6", a, ckpt{meta: step(600, loss(0.8)), age: 2 * time.Hour})           // latest 2, young
	add("a-log", a, ckpt{meta: step(50, loss(0.1)), age: 10 * day, kind: "log"}) // not a checkpoint
	f.modelVersion("vision", jobA, uris["a4"])

	jobB := f.job("vision", "running")
	b := f.run(jobB, 1)
	add("b1", b, ckpt{meta: step(10, loss(1)), age: 5 * day})            // best
	add("b2", b, ckpt{meta: step(20, loss(2)), age: 5 * day, shards: 2}) // resume point
	add("b3", b, ckpt{meta: step(30, loss(3)), age: 5 * day})
	add("b4", b, ckpt{meta: step(40, loss(4)), age: 5 * day})
	add("b5", b, ckpt{meta: step(50, loss(5)), age: 5 * day})
	f.exec("UPDATE runs SET last_checkpoint_uri = $2 WHERE id = $1", b, uris["b2"])

	// A run's last checkpoint stays after its job completed, even when it is not the
	// latest by step.
	jobC := f.job("vision", "completed")
	c := f.run(jobC, 1)
	add("c1", c, ckpt{meta: step(1, loss(0.5)), age: 5 * day})
	add("c2", c, ckpt{meta: step(2, loss(0.4)), age: 5 * day})
	add("c3", c, ckpt{meta: step(3, loss(0.45)), age: 5 * day})
	f.exec("UPDATE runs SET last_checkpoint_uri = $2 WHERE id = $1", c, uris["c1"])

	d := f.run(f.job("vision", "failed"), 1)
	add("d1", d, ckpt{meta: step(1, loss(0.5)), age: 5 * day})
	add("d2", d, ckpt{meta: step(2, nil), age: 5 * day}) // no metrics: run left whole
	add("d3", d, ckpt{meta: step(3, loss(0.4)), age: 5 * day})

	// A model version points at one file of a checkpoint saved as a directory.
	jobH := f.job("vision", "completed")
	hr := f.run(jobH, 1)
	add("h1", hr, ckpt{meta: step(1, loss(0.9)), age: 5 * day, shards: 2})
	add("h2", hr, ckpt{meta: step(2, loss(0.1)), age: 5 * day})
	add("h3", hr, ckpt{meta: step(3, loss(0.2)), age: 5 * day})
	f.modelVersion("vision", jobH, uris["h1"]+"shard-1")

	e := f.run(f.job("vision", "failed"), 1)
	add("e1", e, ckpt{meta: step(1, loss(0.5)), age: 50 * day}) // the last one

	jobF := f.job("nlp", "completed")
	fr := f.run(jobF, 1)
	add("f1", fr, ckpt{meta: step(1, nil), age: 5 * day})
	add("f2", fr, ckpt{meta: step(2, nil), age: 4 * day})
	add("f3", fr, ckpt{meta: step(3, nil), age: 3 * day})

	gr := f.run(jobF, 2)
	add("g1", gr, ckpt{meta: step(5, nil), age: 3 * day}) // same step, older
	add("g2", gr, ckpt{meta: step(5, nil), age: 2 * day})
	return ids
}

var scenarioDeleted = []string{"a1", "a3", "b3", "f1", "f2", "g1"}

func TestRetentionScenario(t *testing.T) {
	f := newFixture(t)
	ids := scenario(f)
	r := f.retainer(globalPolicy)

	dry, err := r.Run(f.ctx, f.now, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedNames(dry, ids); !equal(got, scenarioDeleted) {
		t.Errorf("dry run plans %v, want %v", got, scenarioDeleted)
	}
	if dry.BytesFreed != int64(1000*len(scenarioDeleted)) {
		t.Errorf("dry run frees %d bytes, want %d", dry.BytesFreed, 1000*len(scenarioDeleted))
	}
	if dry.RunsSkipped != 1 || dry.Deleted != 0 {
		t.Errorf("dry run skipped %d runs and deleted %d, want 1 and 0", dry.RunsSkipped, dry.Deleted)
	}
	for name, id := range ids {
		if started, deleted := f.rowState(id); started || deleted {
			t.Errorf("dry run changed %s: started %v, deleted %v", name, started, deleted)
		}
	}

	report, err := r.Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedNames(report, ids); !equal(got, scenarioDeleted) {
		t.Errorf("run deleted %v, want %v", got, scenarioDeleted)
	}
	if report.Deleted != len(scenarioDeleted) || report.Resumed != 0 || report.Refused != 0 {
		t.Errorf("deleted %d, resumed %d, refused %d; want %d, 0, 0",
			report.Deleted, report.Resumed, report.Refused, len(scenarioDeleted))
	}
	if report.BytesFreed != dry.BytesFreed {
		t.Errorf("freed %d bytes, dry run said %d", report.BytesFreed, dry.BytesFreed)
	}
	assertDeleted(f, ids, scenarioDeleted)

	again, err := r.Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Planned) != 0 || again.Deleted != 0 {
		t.Errorf("second run planned %d and deleted %d, want nothing", len(again.Planned), again.Deleted)
	}
}

func TestRetentionKeepsLastBesideBest(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	run := f.run(f.job("vision", "completed"), 1)
	ids := make(map[string]uuid.UUID)
	ids["step-100"], _ = f.checkpoint(run, ckpt{meta: step(100, map[string]any{"eval_loss": 0.1}), age: 5 * day})
	ids["step-200"], _ = f.checkpoint(run, ckpt{meta: step(200, map[string]any{"eval_loss": 0.5}), age: 4 * day})
	ids["step-300"], _ = f.checkpoint(run, ckpt{meta: step(300, map[string]any{"eval_loss": 0.9}), age: 3 * day})
	policy := retention.Policy{KeepLatest: 0, BestMetric: "eval_loss", BestDirection: retention.Min}

	report, err := f.retainer(policy).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedNames(report, ids); !equal(got, []string{"step-200"}) {
		t.Errorf("run deleted %v, want [step-200]", got)
	}
	assertDeleted(f, ids, []string{"step-200"})
}

func TestRetentionKeepsLastCheckpointOfEndedJob(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	run := f.run(f.job("vision", "completed"), 1)
	ids := make(map[string]uuid.UUID)
	var uri string
	ids["step-100"], _ = f.checkpoint(run, ckpt{meta: step(100, nil), age: 5 * day})
	ids["step-200"], uri = f.checkpoint(run, ckpt{meta: step(200, nil), age: 4 * day})
	ids["step-300"], _ = f.checkpoint(run, ckpt{meta: step(300, nil), age: 3 * day})
	f.exec("UPDATE runs SET last_checkpoint_uri = $2, last_checkpoint_step = 200 WHERE id = $1", run, uri)

	report, err := f.retainer(retention.Policy{KeepLatest: 1}).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedNames(report, ids); !equal(got, []string{"step-100"}) {
		t.Errorf("run deleted %v, want [step-100]", got)
	}
	assertDeleted(f, ids, []string{"step-100"})
}

func TestRetentionKeepsSharedObjects(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	j := f.job("vision", "completed")
	first, second := f.run(j, 1), f.run(j, 2)
	old := func(s float64) ckpt { return ckpt{meta: step(s, nil), age: 5 * day} }
	young := func(s float64) ckpt { return ckpt{meta: step(s, nil), age: time.Hour} }
	ids := make(map[string]uuid.UUID)

	// The first run's old checkpoints. The policy keeps only the latest.
	ids["same-uri"], _ = f.checkpointAt(first, "jobs/j/slot-a", old(100))
	ids["directory"], _ = f.checkpointAt(first, "jobs/j/shards", ckpt{meta: step(200, nil), age: 5 * day, shards: 2})
	ids["file-in-directory"], _ = f.checkpointAt(first, "jobs/j/export/step-300.pt", old(300))
	ids["unshared"], _ = f.checkpoint(first, old(400))
	ids["latest"], _ = f.checkpoint(first, old(500))

	// The second run's rows are young, so the policy keeps them, and each names objects of
	// one of the first run's rows.
	ids["second-same-uri"], _ = f.checkpointAt(second, "jobs/j/slot-a", young(600))
	ids["second-model"], _ = f.checkpointAt(second, "jobs/j/shards/shard-1", ckpt{meta: step(0, nil), age: time.Hour, kind: "model"})
	ids["second-directory"], _ = f.checkpointAt(second, "jobs/j/export", ckpt{meta: step(700, nil), age: time.Hour, shards: 1})

	report, err := f.retainer(retention.Policy{KeepLatest: 1, MinAge: day}).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedNames(report, ids); !equal(got, []string{"unshared"}) {
		t.Errorf("run deleted %v, want [unshared]", got)
	}
	assertDeleted(f, ids, []string{"unshared"})
}

// assertDeleted checks that exactly the named checkpoints are deleted, row and object.
func assertDeleted(f *fixture, ids map[string]uuid.UUID, names []string) {
	f.t.Helper()
	gone := make(map[string]bool)
	for _, n := range names {
		gone[n] = true
	}
	for name, id := range ids {
		uri := uriOf(f, id)
		_, deleted := f.rowState(id)
		exists := f.objectExists(uri)
		if deleted != gone[name] || exists == gone[name] {
			f.t.Errorf("%s: row deleted %v, object exists %v; want deleted %v", name, deleted, exists, gone[name])
		}
	}
}

func uriOf(f *fixture, id uuid.UUID) string {
	f.t.Helper()
	var uri string
	if err := f.pool.QueryRow(f.ctx, "SELECT storage_uri FROM artifacts WHERE id = $1", id).Scan(&uri); err != nil {
		f.t.Fatal(err)
	}
	return uri
}

func plannedNames(report retention.Report, ids map[string]uuid.UUID) []string {
	names := make(map[uuid.UUID]string)
	for n, id := range ids {
		names[id] = n
	}
	var out []string
	for _, d := range report.Planned {
		out = append(out, names[d.ID])
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
