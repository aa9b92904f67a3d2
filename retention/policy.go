package retention

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Direction is the sense of a metric: whether a lower or a higher value is better.
type Direction string

const (
	Min Direction = "min" // lower is better, as for a loss
	Max Direction = "max" // higher is better, as for an accuracy
)

// Policy is the set of rules that keep checkpoints of a run. A checkpoint is kept when any
// rule keeps it, and retention deletes the rest. The run's last checkpoint, the one with the
// highest step, is kept under every policy.
type Policy struct {
	// KeepLatest is how many of a run's checkpoints are kept, latest first by the step in
	// metadata_json, then by created_at.
	KeepLatest int
	// BestMetric names a key of metadata_json's "metrics" object. The checkpoint with the
	// best value is kept. Empty turns the rule off.
	BestMetric string
	// BestDirection selects the lowest (Min) or the highest (Max) value as best.
	BestDirection Direction
	// MinAge keeps every checkpoint younger than this, so a run's newest checkpoints are
	// safe while they are still being written and registered.
	MinAge time.Duration
}

// DefaultPolicy keeps the latest 3 checkpoints of each run and those younger than a week.
var DefaultPolicy = Policy{KeepLatest: 3, MinAge: 7 * 24 * time.Hour}

// Validate reports the first invalid field.
func (p Policy) Validate() error {
	if p.KeepLatest < 0 {
		return fmt.Errorf("retention policy: keep latest must be 0 or more, got %d", p.KeepLatest)
	}
	if p.MinAge < 0 {
		return fmt.Errorf("retention policy: minimum age must be 0 or more, got %s", p.MinAge)
	}
	if p.BestMetric != "" && p.BestDirection != Min && p.BestDirection != Max {
		return fmt.Errorf("retention policy: best metric %q needs direction min or max, got %q", p.BestMetric, p.BestDirection)
	}
	return nil
}

// override is a row of checkpoint_retention_overrides. Nil fields keep the global value.
type override struct {
	KeepLatest    *int
	BestMetric    *string
	BestDirection *Direction
	MinAge        *time.Duration
}

// apply returns the global policy with the override's fields in place.
func (o override) apply(global Policy) Policy {
	p := global
	if o.KeepLatest != nil {
		p.KeepLatest = *o.KeepLatest
	}
	if o.BestMetric != nil {
		p.BestMetric = *o.BestMetric
		p.BestDirection = ""
	}
	if o.BestDirection != nil {
		p.BestDirection = *o.BestDirection
	}
	if o.MinAge != nil {
		p.MinAge = *o.MinAge
	}
	return p
}

// Checkpoint is one live checkpoint artifact and what retention needs to know of it.
type Checkpoint struct {
	ID        uuid.UUID
	RunID     uuid.UUID
	ProjectID string
	URI       string
	SizeBytes int64
	CreatedAt time.Time
	Step      *float64           // metadata_json's "step"; nil when absent or not a number
	Metrics   map[string]float64 // numeric entries of metadata_json's "metrics"
	// Referenced is true when a model version's artifact_uri, the last_checkpoint_uri of
	// the checkpoint's own run or of a run whose job can still resume, or the storage_uri
	// of another artifact row not being deleted names some of this checkpoint's objects.
	Referenced bool
}

// errSkipRun explains why nothing of a run may be deleted.
var (
	errNoStep   = errors.New("a checkpoint has no numeric step, so the latest ones are unknown")
	errNoMetric = errors.New("a checkpoint lacks the best metric, so the best one is unknown")
	errBadURI   = errors.New("a checkpoint's URI is not s3://bucket/key")
	errNested   = errors.New("a checkpoint directory contains another checkpoint")
)

// plan splits one run's live checkpoints into those to delete and the number kept. It
// returns an error, and deletes nothing, when the run's data cannot show which to keep.
func plan(run []Checkpoint, p Policy, now time.Time) (deletions []Checkpoint, kept int, err error) {
	for _, c := range run {
		if c.Step == nil {
			return nil, len(run), errNoStep
		}
		if _, ok := c.Metrics[p.BestMetric]; p.BestMetric != "" && !ok {
			return nil, len(run), fmt.Errorf("metric %q: %w", p.BestMetric, errNoMetric)
		}
		if _, _, err := parseURI(c.URI); err != nil {
			return nil, len(run), fmt.Errorf("%s: %w", c.URI, errBadURI)
		}
	}
	if dir, inner, ok := nested(run); ok {
		return nil, len(run), fmt.Errorf("%s contains %s: %w", dir, inner, errNested)
	}

	ordered := slices.Clone(run)
	slices.SortFunc(ordered, latestFirst)
	keep := make([]bool, len(ordered))
	for i := range ordered {
		keep[i] = i < p.KeepLatest || ordered[i].Referenced || now.Sub(ordered[i].CreatedAt) < p.MinAge
	}
	if best := bestIndex(ordered, p); best >= 0 {
		keep[best] = true
	}
	if len(ordered) > 0 {
		// The run's latest checkpoint is normally its resume point, and a completed run
		// without a model artifact registers it as the model, so it stays whatever the
		// other rules keep.
		keep[0] = true
	}

	for i, c := range ordered {
		if keep[i] {
			kept++
		} else {
			deletions = append(deletions, c)
		}
	}
	return deletions, kept, nil
}

// nested finds a checkpoint directory (a URI ending in "/") that contains another of the
// run's checkpoints, whose objects deleting the directory would take too. A directory that
// contains an artifact of another run is not nested, and Referenced keeps it instead.
func nested(run []Checkpoint) (dir, inner string, ok bool) {
	for _, d := range run {
		if !strings.HasSuffix(d.URI, "/") {
			continue
		}
		for _, c := range run {
			if c.ID != d.ID && strings.HasPrefix(c.URI, d.URI) {
				return d.URI, c.URI, true
			}
		}
	}
	return "", "", false
}

// latestFirst orders by step, then created_at, then id, all descending.
func latestFirst(a, b Checkpoint) int {
	if c := cmp.Compare(*b.Step, *a.Step); c != 0 {
		return c
	}
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(b.ID.String(), a.ID.String())
}

// bestIndex returns the index of the best checkpoint of ordered by p's metric, the latest
// one among equals, or -1 when the rule is off.
func bestIndex(ordered []Checkpoint, p Policy) int {
	if p.BestMetric == "" {
		return -1
	}
	best := -1
	for i, c := range ordered {
		v := c.Metrics[p.BestMetric]
		if best < 0 {
			best = i
			continue
		}
		b := ordered[best].Metrics[p.BestMetric]
		if (p.BestDirection == Min && v < b) || (p.BestDirection == Max && v > b) {
			best = i
		}
	}
	return best
}
