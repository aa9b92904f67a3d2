package jobspec_test

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
)

func ptr(v float64) *float64 { return &v }

// TestGridPoints: the grid is every combination, in the order of the sorted parameter
// names, and Trials cuts it.
func TestGridPoints(t *testing.T) {
	h := jobspec.HPO{Search: "grid", Metric: "accuracy", Goal: "max", Parameters: map[string]jobspec.Param{
		"lr": {Values: []float64{0.1, 0.01}}, "batch": {Values: []float64{32, 64}},
	}}
	want := []map[string]float64{
		{"batch": 32, "lr": 0.1}, {"batch": 32, "lr": 0.01}, {"batch": 64, "lr": 0.1}, {"batch": 64, "lr": 0.01},
	}
	if got := h.Points(); !reflect.DeepEqual(got, want) {
		t.Errorf("points %v, want %v", got, want)
	}
	h.Trials = 3
	if got := h.Points(); len(got) != 3 || !reflect.DeepEqual(got, want[:3]) {
		t.Errorf("points with trials 3: %v, want the first three", got)
	}
}

// TestHugeGridCutByTrials: a grid of 10^16 points cut to 3 trials builds only those 3, the
// first ones in order.
func TestHugeGridCutByTrials(t *testing.T) {
	h := jobspec.HPO{Search: "grid", Trials: 3, Metric: "accuracy", Goal: "max", Parameters: map[string]jobspec.Param{}}
	for i := range 16 {
		values := make([]float64, 10)
		for v := range values {
			values[v] = float64(v)
		}
		h.Parameters[fmt.Sprintf("p%02d", i)] = jobspec.Param{Values: values}
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	if h.GridSize() != jobspec.MaxTrials+1 {
		t.Errorf("grid size %d, want %d for more than the maximum", h.GridSize(), jobspec.MaxTrials+1)
	}
	points := h.Points()
	if len(points) != 3 {
		t.Fatalf("%d points, want 3", len(points))
	}
	for i, p := range points {
		if p["p15"] != float64(i) || p["p00"] != 0 || len(p) != 16 {
			t.Errorf("point %d: %v, want p15=%d and every other parameter 0", i, p, i)
		}
	}
}

// TestRandomPoints: the same seed draws the same points, within the ranges, and a log
// range spreads over its orders of magnitude.
func TestRandomPoints(t *testing.T) {
	h := jobspec.HPO{Search: "random", Trials: 100, Seed: 7, Metric: "loss", Goal: "min", Parameters: map[string]jobspec.Param{
		"lr":      {Min: ptr(1e-5), Max: ptr(1e-1), Log: true},
		"dropout": {Min: ptr(0), Max: ptr(0.5)},
		"layers":  {Values: []float64{2, 4, 8}},
	}}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	first, second := h.Points(), h.Points()
	if !reflect.DeepEqual(first, second) || len(first) != 100 {
		t.Fatalf("two draws with seed 7 differ or have %d points", len(first))
	}
	belowMilli := 0
	for _, p := range first {
		if p["lr"] < 1e-5 || p["lr"] > 1e-1 || p["dropout"] < 0 || p["dropout"] > 0.5 ||
			(p["layers"] != 2 && p["layers"] != 4 && p["layers"] != 8) {
			t.Fatalf("point %v out of its ranges", p)
		}
		if p["lr"] < 1e-3 {
			belowMilli++
		}
	}
	// On a log scale half of the range 1e-5..1e-1 lies below 1e-3; on a linear scale 1%.
	if belowMilli < 35 || belowMilli > 65 {
		t.Errorf("%d of 100 learning rates below 1e-3, want about 50 on a log scale", belowMilli)
	}
	h.Seed = 8
	if reflect.DeepEqual(h.Points(), first) {
		t.Error("seed 8 drew the same points as seed 7")
	}
}

func TestHPOValidation(t *testing.T) {
	base := func() jobspec.HPO {
		return jobspec.HPO{Search: "grid", Metric: "accuracy", Goal: "max",
			Parameters: map[string]jobspec.Param{"lr": {Values: []float64{0.1}}}}
	}
	cases := []struct {
		name  string
		edit  func(*jobspec.HPO)
		field string
	}{
		{"unknown search", func(h *jobspec.HPO) { h.Search = "bayes" }, "config.hpo.search"},
		{"random without trials", func(h *jobspec.HPO) { h.Search = "random" }, "config.hpo.trials"},
		{"too many trials", func(h *jobspec.HPO) { h.Trials = jobspec.MaxTrials + 1 }, "config.hpo.trials"},
		{"no goal", func(h *jobspec.HPO) { h.Goal = "" }, "config.hpo.goal"},
		{"no metric", func(h *jobspec.HPO) { h.Metric = "" }, "config.hpo.metric"},
		{"grid range", func(h *jobspec.HPO) { h.Parameters["lr"] = jobspec.Param{Min: ptr(0), Max: ptr(1)} }, "config.hpo.parameters.lr.values"},
		{"grid of 121 points", func(h *jobspec.HPO) {
			values := make([]float64, 11)
			for i := range values {
				values[i] = float64(i)
			}
			h.Parameters = map[string]jobspec.Param{"a": {Values: values}, "b": {Values: values}}
		}, "config.hpo.parameters"},
		{"value listed twice", func(h *jobspec.HPO) { h.Parameters["lr"] = jobspec.Param{Values: []float64{0.1, 0.1}} }, "config.hpo.parameters.lr.values"},
		{"log range from 0", func(h *jobspec.HPO) {
			h.Search, h.Trials = "random", 4
			h.Parameters["lr"] = jobspec.Param{Min: ptr(0), Max: ptr(1), Log: true}
		}, "config.hpo.parameters.lr.min"},
		{"trial type eval_only", func(h *jobspec.HPO) { h.TrialType = "eval_only" }, "config.hpo.trial_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := base()
			c.edit(&h)
			var fieldErr *jobspec.FieldError
			if err := h.Validate(); !errors.As(err, &fieldErr) || fieldErr.Field != c.field {
				t.Errorf("error %v, want one on %s", err, c.field)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	e := &jobspec.Evaluation{Thresholds: map[string]jobspec.Threshold{
		"accuracy": {Min: ptr(0.8)}, "loss": {Max: ptr(0.3)}, "f1": {Min: ptr(0.5), Max: ptr(1)},
	}}
	cases := []struct {
		metrics map[string]float64
		want    string
	}{
		{map[string]float64{"accuracy": 0.9, "loss": 0.1, "f1": 0.7}, ""},
		{map[string]float64{"accuracy": 0.8, "loss": 0.3, "f1": 0.5}, ""},
		{map[string]float64{"accuracy": 0.61, "loss": 0.5, "f1": 0.7}, "accuracy 0.61 below min 0.8; loss 0.5 above max 0.3"},
		{map[string]float64{"accuracy": 0.9, "loss": 0.1}, "f1 missing from the eval report"},
	}
	for _, c := range cases {
		if got := e.Judge(c.metrics); got != c.want {
			t.Errorf("Judge(%v) = %q, want %q", c.metrics, got, c.want)
		}
	}
	empty := jobspec.Spec{Evaluation: &jobspec.Evaluation{}, Resources: jobspec.Resources{GPUs: 1}}
	var fieldErr *jobspec.FieldError
	if err := empty.ValidateFor("fine_tune"); !errors.As(err, &fieldErr) || fieldErr.Field != "config.evaluation.thresholds" {
		t.Errorf("empty thresholds: %v, want an error on config.evaluation.thresholds", err)
	}
	var none *jobspec.Evaluation
	if got := none.Judge(map[string]float64{"accuracy": math.NaN()}); got != "" {
		t.Errorf("no thresholds: %q, want a pass", got)
	}
}

// TestDecodeRejectsUnstorableEscapes: escapes Go decodes but jsonb rejects fail as a field
// error, while a surrogate pair and an escaped backslash before "u0000" pass.
func TestDecodeRejectsUnstorableEscapes(t *testing.T) {
	cases := []struct {
		image string // raw JSON string contents
		bad   bool
	}{
		{`a\u0000b`, true},
		{`a\ud800`, true},
		{`a\udc00b`, true},
		{`a\ud800\u0041`, true},
		{`a\ud83d\ude00`, false},
		{`a\\u0000`, false},
		{`a\u00e9`, false},
	}
	for _, c := range cases {
		raw := []byte(`{"image":"` + c.image + `","max_runtime_seconds":60,"resources":{"gpus":1}}`)
		_, err := jobspec.Decode(raw)
		var fieldErr *jobspec.FieldError
		if c.bad && (!errors.As(err, &fieldErr) || fieldErr.Field != "config") {
			t.Errorf("image %s: %v, want a config error", c.image, err)
		}
		if !c.bad && err != nil {
			t.Errorf("image %s: %v, want it accepted", c.image, err)
		}
	}
}
