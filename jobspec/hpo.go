package jobspec

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
)

// Points returns the search's trial points in a stable order: the grid in row-major order
// of the sorted parameter names, cut at Trials when set, or Trials random draws from a
// generator seeded with Seed. The same HPO always gives the same points, so a workflow that
// retries trial creation creates the same trials.
func (h HPO) Points() []map[string]float64 {
	if h.Search == "grid" {
		return h.grid()
	}
	return h.random()
}

// grid enumerates the points by index, the last name varying fastest, and stops at Trials,
// so a huge grid cut to a few trials costs only those trials.
func (h HPO) grid() []map[string]float64 {
	names := h.names()
	n := h.GridSize()
	if h.Trials > 0 {
		n = min(n, h.Trials)
	}
	points := make([]map[string]float64, n)
	for i := range points {
		point := make(map[string]float64, len(names))
		rest := i
		for j := len(names) - 1; j >= 0; j-- {
			values := h.Parameters[names[j]].Values
			point[names[j]] = values[rest%len(values)]
			rest /= len(values)
		}
		points[i] = point
	}
	return points
}

func (h HPO) random() []map[string]float64 {
	rng := rand.New(rand.NewPCG(uint64(h.Seed), 0x5eed))
	names := h.names()
	points := make([]map[string]float64, h.Trials)
	for i := range points {
		p := make(map[string]float64, len(names))
		for _, name := range names {
			p[name] = h.Parameters[name].draw(rng)
		}
		points[i] = p
	}
	return points
}

func (p Param) draw(rng *rand.Rand) float64 {
	if len(p.Values) > 0 {
		return p.Values[rng.IntN(len(p.Values))]
	}
	lo, hi := *p.Min, *p.Max
	if p.Log {
		return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	}
	return lo + rng.Float64()*(hi-lo)
}

// TrialTypeOrDefault is the job type of the trials, with its default applied.
func (h HPO) TrialTypeOrDefault() string {
	if h.TrialType == "" {
		return "fine_tune"
	}
	return h.TrialType
}

// TrialConfig returns the config of one trial of the hpo job whose config is s: the same
// image, resources and limits, the point as hyperparameters, and neither the search nor
// the registration, which stay with the parent.
func (s Spec) TrialConfig(point map[string]float64) (json.RawMessage, error) {
	trial := s
	trial.HPO = nil
	trial.Model = nil
	trial.Evaluation = nil
	trial.Hyperparameters = point
	raw, err := json.Marshal(trial)
	if err != nil {
		return nil, fmt.Errorf("encode trial config: %w", err)
	}
	return raw, nil
}

// Better reports whether value a beats value b under the search's goal.
func (h HPO) Better(a, b float64) bool {
	if h.Goal == "min" {
		return a < b
	}
	return a > b
}
