package retention

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// checkpoint returns an old checkpoint at step s with an eval_loss of loss.
func checkpoint(s, loss float64) Checkpoint {
	return Checkpoint{
		ID: uuid.New(), URI: "s3://b/k" + uuid.NewString(), Step: &s, CreatedAt: now.Add(-30 * 24 * time.Hour),
		Metrics: map[string]float64{"eval_loss": loss},
	}
}

func steps(cs []Checkpoint) []float64 {
	var out []float64
	for _, c := range cs {
		out = append(out, *c.Step)
	}
	return out
}

func TestPlan(t *testing.T) {
	young := checkpoint(1, 0.5)
	young.CreatedAt = now.Add(-time.Hour)
	referenced := checkpoint(2, 0.5)
	referenced.Referenced = true

	cases := []struct {
		name   string
		run    []Checkpoint
		policy Policy
		want   []float64 // steps deleted, latest first
	}{
		{"keep latest two", []Checkpoint{checkpoint(1, 1), checkpoint(3, 1), checkpoint(2, 1)}, Policy{KeepLatest: 2}, []float64{1}},
		{"keep best min", []Checkpoint{checkpoint(1, 0.1), checkpoint(2, 0.5), checkpoint(3, 0.9)},
			Policy{KeepLatest: 1, BestMetric: "eval_loss", BestDirection: Min}, []float64{2}},
		{"keep best max", []Checkpoint{checkpoint(1, 0.1), checkpoint(2, 0.5), checkpoint(3, 0.9)},
			Policy{KeepLatest: 0, BestMetric: "eval_loss", BestDirection: Max}, []float64{2, 1}},
		{"keep young", []Checkpoint{young, checkpoint(3, 1), checkpoint(2, 1)}, Policy{KeepLatest: 0, MinAge: 24 * time.Hour}, []float64{2}},
		{"keep referenced", []Checkpoint{referenced, checkpoint(3, 1), checkpoint(4, 1)}, Policy{KeepLatest: 1}, []float64{3}},
		{"keep last", []Checkpoint{checkpoint(1, 1), checkpoint(2, 1)}, Policy{}, []float64{1}},
		{"keep last beside best", []Checkpoint{checkpoint(100, 0.1), checkpoint(200, 0.5), checkpoint(300, 0.9)},
			Policy{KeepLatest: 0, BestMetric: "eval_loss", BestDirection: Min}, []float64{200}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			deleted, kept, err := plan(c.run, c.policy, now)
			if err != nil {
				t.Fatal(err)
			}
			if got := steps(deleted); !equalSteps(got, c.want) {
				t.Errorf("deleted steps %v, want %v", got, c.want)
			}
			if kept+len(deleted) != len(c.run) {
				t.Errorf("kept %d + deleted %d, want %d in all", kept, len(deleted), len(c.run))
			}
		})
	}
}

func TestPlanLeavesRunWhole(t *testing.T) {
	noStep := checkpoint(1, 1)
	noStep.Step = nil
	noMetric := checkpoint(2, 1)
	noMetric.Metrics = nil
	badURI := checkpoint(3, 1)
	badURI.URI = "gs://bucket/key"
	best := Policy{BestMetric: "eval_loss", BestDirection: Min}
	outer := checkpoint(4, 1)
	outer.URI = "s3://b/runs/1/"

	cases := []struct {
		name   string
		odd    Checkpoint
		policy Policy
		want   error
	}{
		{"no step", noStep, Policy{}, errNoStep},
		{"no metric", noMetric, best, errNoMetric},
		{"not s3", badURI, Policy{}, errBadURI},
		{"nested directory", outer, Policy{}, errNested},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inner := checkpoint(11, 1)
			inner.URI = "s3://b/runs/1/step-11.pt"
			run := []Checkpoint{c.odd, checkpoint(10, 1), inner}
			deleted, kept, err := plan(run, c.policy, now)
			if !errors.Is(err, c.want) {
				t.Errorf("error %v, want %v", err, c.want)
			}
			if len(deleted) != 0 || kept != 3 {
				t.Errorf("deleted %d, kept %d; want 0 and 3", len(deleted), kept)
			}
		})
	}
}

func TestPlanEqualStepsByCreatedAt(t *testing.T) {
	older, newer := checkpoint(5, 1), checkpoint(5, 1)
	newer.CreatedAt = older.CreatedAt.Add(time.Minute)

	deleted, _, err := plan([]Checkpoint{newer, older}, Policy{KeepLatest: 1}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].ID != older.ID {
		t.Errorf("deleted %v, want only the older checkpoint", deleted)
	}
}

func TestOverrideApply(t *testing.T) {
	global := Policy{KeepLatest: 3, BestMetric: "eval_loss", BestDirection: Min, MinAge: time.Hour}
	keep, off, dir := 1, "", Max

	cases := []struct {
		name string
		o    override
		want Policy
	}{
		{"nothing", override{}, global},
		{"keep latest", override{KeepLatest: &keep}, Policy{KeepLatest: 1, BestMetric: "eval_loss", BestDirection: Min, MinAge: time.Hour}},
		{"best off", override{BestMetric: &off}, Policy{KeepLatest: 3, MinAge: time.Hour}},
		{"direction", override{BestDirection: &dir}, Policy{KeepLatest: 3, BestMetric: "eval_loss", BestDirection: Max, MinAge: time.Hour}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.o.apply(global); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseURI(t *testing.T) {
	cases := []struct {
		uri, bucket, key string
		ok               bool
	}{
		{"s3://ckpts/runs/1/step-100.pt", "ckpts", "runs/1/step-100.pt", true},
		{"s3://ckpts/runs/1/step-100/", "ckpts", "runs/1/step-100/", true},
		{"s3://ckpts/", "", "", false},
		{"s3://ckpts", "", "", false},
		{"gs://ckpts/a", "", "", false},
		{"/local/path", "", "", false},
		{"s3:///key", "", "", false},
		// As written: no decoding, no cleaning of the path.
		{"s3://ckpts/project-b%2Fmodels/", "ckpts", "project-b%2Fmodels/", true},
		{"s3://ckpts/a/../b/step-1", "ckpts", "a/../b/step-1", true},
		{"s3://ckpts/step?1#x", "ckpts", "step?1#x", true},
	}
	for _, c := range cases {
		t.Run(c.uri, func(t *testing.T) {
			bucket, key, err := parseURI(c.uri)
			if (err == nil) != c.ok || bucket != c.bucket || key != c.key {
				t.Errorf("parseURI = %q, %q, %v; want %q, %q, ok %v", bucket, key, err, c.bucket, c.key, c.ok)
			}
		})
	}
}

func equalSteps(a, b []float64) bool {
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
