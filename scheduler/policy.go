package scheduler

import (
	"fmt"
	"maps"
	"time"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// Wait reasons stored on queued jobs. They are stable strings that the API shows as is.
const (
	ReasonNoQuota     = "project has no quota"
	ReasonBudget      = "GPU-hour budget left is less than the job would reserve"
	ReasonConcurrency = "concurrency limit reached"
	ReasonDrained     = "queue drained"
	ReasonNoModel     = "no node has an allowed GPU model"
	ReasonTooLarge    = "larger than any node of the allowed GPU models"
	ReasonNoCapacity  = "no free capacity of the allowed GPU models"
	ReasonReserved    = "GPU capacity held for an older job that has waited too long"
	// ReasonPeriodEnded lasts until the period is renewed, which the scheduler does within
	// its RenewInterval.
	ReasonPeriodEnded = "GPU-hour budget period has ended and awaits renewal"
	// ReasonPeriodNotStarted lasts until the period's first day (UTC).
	ReasonPeriodNotStarted = "GPU-hour budget period has not started yet"
)

// Policy holds the rules of a dequeue.
type Policy struct {
	// StarvationBound is how long a job may wait for capacity before later jobs stop
	// backfilling the GPU models it can use and taking its project's slot and GPU-hours, so
	// that a stream of small jobs cannot keep a large one waiting for ever.
	StarvationBound time.Duration
}

// Holds is the set of GPU models and quota shares that the starving jobs of one round of
// dequeues keep from the candidates after them, in this page and the later ones.
type Holds struct {
	// Models are the GPU models that could run a starving job.
	Models map[string]bool
	// Quotas are, by project, the slots and GPU-hours that its starving jobs would take.
	// Later jobs of the project are judged as if those jobs were admitted. Otherwise they
	// could take the project's last slot or budget, the starving job would drop out of the
	// next rounds' candidates, and other projects would backfill its models again.
	Quotas map[string]QuotaShare
}

// QuotaShare is the part of a project's quota that its starving jobs would take.
type QuotaShare struct {
	Jobs     int
	GPUHours float64
}

// NewHolds returns the empty holds of a round's first dequeue.
func NewHolds() Holds {
	return Holds{Models: map[string]bool{}, Quotas: map[string]QuotaShare{}}
}

// Clone returns a copy that a dequeue can add to and drop, if it decides again on locked rows.
func (h Holds) Clone() Holds {
	return Holds{Models: maps.Clone(h.Models), Quotas: maps.Clone(h.Quotas)}
}

// decision state: the snapshot's quotas and models as admissions and holds so far changed them.
type plan struct {
	policy Policy
	now    time.Time
	quotas map[string]store.Quota
	models map[string]*store.ModelCapacity
	order  []string // model names, sorted, for deterministic choices
	held   Holds    // shared by a round's pages
}

// Decide walks the candidates in queue order and admits each one its project and the
// cluster can take, choosing for each GPU job the allowed model with the most free capacity.
func (p Policy) Decide(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
	return p.DecideUpTo(snap, len(snap.Candidates), NewHolds())
}

// DecideUpTo is Decide for one dequeue of a round that reads the queue page by page. It
// stops at maxAdmit admissions and leaves the candidates after that unjudged, since the
// capacity and quota that the rest would be judged against are then spent. held is what
// starving jobs of earlier pages hold back; DecideUpTo adds what starving jobs of this
// page hold back.
func (p Policy) DecideUpTo(snap store.Snapshot, maxAdmit int, held Holds) ([]store.Decision, []store.Refusal) {
	pl := newPlan(p, snap, held)
	var decisions []store.Decision
	var refusals []store.Refusal
	for _, c := range snap.Candidates {
		if len(decisions) == maxAdmit {
			break
		}
		decision, reason := pl.place(c)
		if reason != "" {
			refusals = append(refusals, store.Refusal{Job: c.Ref(), Reason: reason})
			continue
		}
		decisions = append(decisions, decision)
	}
	return decisions, refusals
}

func newPlan(p Policy, snap store.Snapshot, held Holds) *plan {
	pl := &plan{policy: p, now: snap.Now, quotas: map[string]store.Quota{},
		models: map[string]*store.ModelCapacity{}, held: held}
	for id, q := range snap.Quotas {
		share := held.Quotas[id]
		q.CurrentConcurrent += share.Jobs
		q.GPUHoursReserved += share.GPUHours
		pl.quotas[id] = q
	}
	for i := range snap.Models {
		m := snap.Models[i]
		pl.models[m.Model] = &m
		pl.order = append(pl.order, m.Model)
	}
	return pl
}

// place admits c or returns why it waits.
func (pl *plan) place(c store.Candidate) (store.Decision, string) {
	hours := jobspec.ReservedGPUHours(c.GPUMilli, c.MaxRuntimeSeconds)
	if reason := pl.quotaRefusal(c.ProjectID, hours); reason != "" {
		return store.Decision{}, reason
	}

	model := ""
	if c.GPUMilli > 0 {
		var reason string
		model, reason = pl.chooseModel(c)
		if reason != "" {
			return store.Decision{}, reason
		}
		pl.models[model].AllocatedMilli += int64(c.GPUMilli)
	}

	q := pl.quotas[c.ProjectID]
	q.CurrentConcurrent++
	q.GPUHoursReserved += hours
	pl.quotas[c.ProjectID] = q
	return store.Decision{Candidate: c, GPUModel: model, GPUHoursReserved: hours}, ""
}

// PeriodReason returns why the quota's budget period admits nothing at now, or "" when now
// is inside the period. Period bounds are UTC dates, read as midnight UTC.
func PeriodReason(q store.Quota, now time.Time) string {
	switch {
	case !now.Before(q.PeriodEnd):
		return ReasonPeriodEnded
	case now.Before(q.PeriodStart):
		return ReasonPeriodNotStarted
	}
	return ""
}

func (pl *plan) quotaRefusal(project string, hours float64) string {
	q, ok := pl.quotas[project]
	period := PeriodReason(q, pl.now)
	switch {
	case !ok:
		return ReasonNoQuota
	case q.DrainedAt != nil:
		return ReasonDrained
	case period != "":
		return period
	case q.CurrentConcurrent >= q.MaxConcurrentJobs:
		return ReasonConcurrency
	case !jobspec.FitsBudget(q.GPUHoursBudget, q.GPUHoursUsed, q.GPUHoursReserved, hours):
		return ReasonBudget
	}
	return ""
}

// chooseModel picks the allowed, unreserved model with the most free capacity that has a
// node large enough. A job that finds none after waiting StarvationBound holds the models
// with a node large enough for it, and its share of its project's quota, so later candidates
// of this round may not use them. Models it could never run on stay open to others.
func (pl *plan) chooseModel(c store.Candidate) (string, string) {
	best, bestFree := "", int64(-1)
	known, heldBack := false, false
	var fitting []string
	for _, name := range pl.allowed(c) {
		m := pl.models[name]
		if m == nil || m.Nodes == 0 {
			continue
		}
		known = true
		if !m.Holds(c.GPUMilli, c.CPUMilli, c.MemoryMiB) {
			continue
		}
		fitting = append(fitting, name)
		free := m.CapacityMilli - m.AllocatedMilli
		if free < int64(c.GPUMilli) || free <= bestFree {
			continue
		}
		if pl.held.Models[name] {
			heldBack = true
			continue
		}
		best, bestFree = name, free
	}

	switch {
	case best != "":
		return best, ""
	case !known:
		return "", ReasonNoModel
	case len(fitting) == 0:
		return "", ReasonTooLarge
	case heldBack:
		return "", ReasonReserved
	}
	if !pl.policy.starving(c, pl.now) {
		return "", ReasonNoCapacity
	}
	pl.hold(c, fitting)
	return "", fmt.Sprintf("%s; waiting since %s, later jobs no longer backfill its models",
		ReasonNoCapacity, c.QueuedAt.UTC().Format(time.RFC3339))
}

// hold keeps models, which could run the starving job c, from the later candidates of the
// round, and takes c's slot and reservation from its project's quota as those candidates
// see it.
func (pl *plan) hold(c store.Candidate, models []string) {
	for _, name := range models {
		pl.held.Models[name] = true
	}
	hours := jobspec.ReservedGPUHours(c.GPUMilli, c.MaxRuntimeSeconds)
	share := pl.held.Quotas[c.ProjectID]
	share.Jobs++
	share.GPUHours += hours
	pl.held.Quotas[c.ProjectID] = share

	q := pl.quotas[c.ProjectID]
	q.CurrentConcurrent++
	q.GPUHoursReserved += hours
	pl.quotas[c.ProjectID] = q
}

// starving reports whether c, if refused for want of capacity at now, would hold capacity
// back from the candidates after it.
func (p Policy) starving(c store.Candidate, now time.Time) bool {
	return c.GPUMilli > 0 && now.Sub(c.QueuedAt) >= p.StarvationBound
}

func (pl *plan) allowed(c store.Candidate) []string {
	if len(c.GPUModels) > 0 {
		return c.GPUModels
	}
	return pl.order
}
