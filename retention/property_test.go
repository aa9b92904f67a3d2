package retention_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/retention"
)

// genCheckpoint is a generated checkpoint and the facts the expected outcome depends on.
type genCheckpoint struct {
	id         uuid.UUID
	uri        string
	step       *float64
	created    time.Time
	metrics    map[string]float64
	referenced bool // by a model version, its own run, or a resumable run as last checkpoint
	gone       bool // deleted before retention runs
}

type genRun struct {
	project     string
	checkpoints []*genCheckpoint
}

// propertySeed is fixed so failures repeat; SCHEDULERD_RETENTION_SEED picks another.
func propertySeed(t *testing.T) uint64 {
	seed := uint64(20261204)
	if s := os.Getenv("SCHEDULERD_RETENTION_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SCHEDULERD_RETENTION_SEED=%q is not a number", s)
		}
		seed = v
	}
	return seed
}

func TestRetentionProperty(t *testing.T) {
	base := propertySeed(t)
	for i := range uint64(3) {
		seed := base + i
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("rerun with SCHEDULERD_RETENTION_SEED=%d", seed)
				}
			})
			checkProperty(t, seed)
		})
	}
}

func checkProperty(t *testing.T, seed uint64) {
	f := newFixture(t)
	rng := rand.New(rand.NewPCG(seed, seed))
	global := retention.Policy{KeepLatest: rng.IntN(4), MinAge: 2 * day}
	if rng.IntN(2) == 0 {
		global.BestMetric, global.BestDirection = "eval_loss", retention.Min
	}
	override := retention.Policy{KeepLatest: rng.IntN(3), BestMetric: "accuracy", BestDirection: retention.Max, MinAge: day}
	f.project("p1")
	f.project("p2")
	f.exec(`INSERT INTO checkpoint_retention_overrides (project_id, keep_latest, best_metric, best_direction, min_age)
		VALUES ('p2', $1, 'accuracy', 'max', '1 day')`, override.KeepLatest)
	policies := map[string]retention.Policy{"p1": global, "p2": override}

	runs := make([]genRun, 30)
	for i := range runs {
		runs[i] = generateRun(f, rng, []string{"p1", "p2"}[rng.IntN(2)])
	}

	report, err := f.retainer(global).Run(f.ctx, f.now, false)
	if err != nil {
		t.Fatal(err)
	}

	wantDeleted := 0
	for i, run := range runs {
		keep := expectedKeep(run, policies[run.project], f.now)
		for j, c := range run.checkpoints {
			_, deleted := f.rowState(c.id)
			exists := f.objectExists(c.uri)
			switch {
			case c.gone:
				if !deleted {
					t.Errorf("run %d checkpoint %d: an already deleted row came back", i, j)
				}
			case keep[c]:
				if deleted || !exists {
					t.Errorf("run %d checkpoint %d must stay: row deleted %v, object exists %v", i, j, deleted, exists)
				}
			default:
				wantDeleted++
				if !deleted || exists {
					t.Errorf("run %d checkpoint %d must go: row deleted %v, object exists %v", i, j, deleted, exists)
				}
			}
		}
	}
	t.Logf("seed %d: %d deleted of %d runs", seed, wantDeleted, len(runs))
	if report.Deleted != wantDeleted {
		t.Errorf("report says %d deleted, want %d", report.Deleted, wantDeleted)
	}
}

// generateRun makes a run with one to seven checkpoints with random steps (often equal),
// metrics, ages, shards and references, in a job of random status.
func generateRun(f *fixture, rng *rand.Rand, project string) genRun {
	statuses := []string{"queued", "running", "paused", "completed", "failed", "cancelled", "eval_failed"}
	status := statuses[rng.IntN(len(statuses))]
	j := f.job(project, status)
	runID := f.run(j, 1)
	resumable := status != "completed" && status != "failed" && status != "cancelled" && status != "eval_failed"

	run := genRun{project: project}
	for i := range 1 + rng.IntN(7) {
		meta := map[string]any{}
		c := &genCheckpoint{metrics: map[string]float64{}}
		if rng.IntN(100) >= 3 {
			s := float64(rng.IntN(5) * 100)
			c.step, meta["step"] = &s, s
		}
		if rng.IntN(100) >= 5 {
			c.metrics["eval_loss"], c.metrics["accuracy"] = rng.Float64(), rng.Float64()
			meta["metrics"] = c.metrics
		}
		// Distinct ages within a run, so that the latest is never decided by the id.
		age := time.Duration(rng.IntN(10*24))*time.Hour + time.Duration(i)*time.Second
		c.created = f.now.Add(-age)
		shards := 0
		if rng.IntN(5) == 0 {
			shards = 1 + rng.IntN(3)
		}
		c.id, c.uri = f.checkpoint(runID, ckpt{meta: meta, age: age, shards: shards, size: int64(1 + rng.IntN(1000))})
		run.checkpoints = append(run.checkpoints, c)

		if rng.IntN(100) < 8 {
			f.modelVersion(project, j, c.uri)
			c.referenced = true
		}
		if rng.IntN(100) < 10 {
			f.exec("UPDATE artifacts SET delete_started_at = $2, deleted_at = $2 WHERE id = $1", c.id, f.now.Add(-day))
			c.gone = true
		}
	}

	if rng.IntN(100) < 40 {
		c := run.checkpoints[rng.IntN(len(run.checkpoints))]
		f.exec("UPDATE runs SET last_checkpoint_uri = $2 WHERE id = $1", runID, c.uri)
		c.referenced = true // the run's own last checkpoint, whatever its job's status
	}
	if rng.IntN(100) < 20 {
		// A later run of the job points at this run's checkpoint, which is a resume point
		// only while the job can run again.
		c := run.checkpoints[rng.IntN(len(run.checkpoints))]
		f.exec("UPDATE runs SET last_checkpoint_uri = $2 WHERE id = $1", f.run(j, 2), c.uri)
		c.referenced = c.referenced || resumable
	}
	f.exec("INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes, created_at) VALUES ($1, 'model', 's3://elsewhere/model', repeat('a', 64), 1, $2)",
		runID, f.now.Add(-30*day))
	return run
}

// expectedKeep applies the policy's rules to a run's live checkpoints, written apart from
// the package's own code.
func expectedKeep(run genRun, p retention.Policy, now time.Time) map[*genCheckpoint]bool {
	var live []*genCheckpoint
	for _, c := range run.checkpoints {
		if !c.gone {
			live = append(live, c)
		}
	}
	keep := make(map[*genCheckpoint]bool)
	for _, c := range live {
		_, hasMetric := c.metrics[p.BestMetric]
		if c.step == nil || (p.BestMetric != "" && !hasMetric) {
			for _, c := range live {
				keep[c] = true
			}
			return keep
		}
	}

	slices.SortFunc(live, func(a, b *genCheckpoint) int {
		return cmp.Or(cmp.Compare(*b.step, *a.step), b.created.Compare(a.created))
	})
	var best *genCheckpoint
	for i, c := range live {
		if i < p.KeepLatest || c.referenced || now.Sub(c.created) < p.MinAge {
			keep[c] = true
		}
		if p.BestMetric == "" {
			continue
		}
		v := c.metrics[p.BestMetric]
		if best == nil || (p.BestDirection == retention.Min && v < best.metrics[p.BestMetric]) ||
			(p.BestDirection == retention.Max && v > best.metrics[p.BestMetric]) {
			best = c
		}
	}
	if best != nil {
		keep[best] = true
	}
	if len(live) > 0 {
		keep[live[0]] = true
	}
	return keep
}
