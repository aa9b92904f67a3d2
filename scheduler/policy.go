package scheduler

import (
	"fmt"
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
	// backfilling the GPU models it can use, so that a stream of small jobs cannot keep a
	// large one waiting for ever.
	StarvationBound time.Duration
}

// decision state: the snapshot's quotas and models as admissions so far changed them.
type plan struct {
	policy   Policy
	now      time.Time
	quotas   map[string]store.Quota
	models   map[string]*store.ModelCapacity
	order    []string        // model names, sorted, for deterministic choices
	reserved map[string]bool // models held back for starving jobs, shared by a round's pages
}

// Decide walks the candidates in queue order and admits each one its project and the
// cluster can take, choosing for each GPU job the allowed model with the most free capacity.
func (p Policy) Decide(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
	return p.DecideUpTo(snap, len(snap.Candidates), map[string]bool{})
}

// DecideUpTo is Decide for one dequeue of a round that reads the queue page by page. It
// stops at maxAdmit admissions and leaves the candidates after that unjudged, since the
// capacity and quota that the rest would be judged against are then spent. held names the
// GPU models that starving jobs of earlier pages hold back; DecideUpTo adds the models it
// holds back for starving jobs of this page.
func (p Policy) DecideUpTo(snap store.Snapshot, maxAdmit int, held map[string]bool) ([]store.Decision, []store.Refusal) {
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

func newPlan(p Policy, snap store.Snapshot, held map[string]bool) *plan {
	pl := &plan{policy: p, now: snap.Now, quotas: map[string]store.Quota{},
		models: map[string]*store.ModelCapacity{}, reserved: held}
	for id, q := range snap.Quotas {
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
// node large enough. A job that finds none after waiting StarvationBound reserves the
// models with a node large enough for it: later candidates of this round may not use them.
// Models it could never run on stay open to others.
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
		if pl.reserved[name] {
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
	if pl.now.Sub(c.QueuedAt) < pl.policy.StarvationBound {
		return "", ReasonNoCapacity
	}
	for _, name := range fitting {
		pl.reserved[name] = true
	}
	return "", fmt.Sprintf("%s; waiting since %s, later jobs no longer backfill its models",
		ReasonNoCapacity, c.QueuedAt.UTC().Format(time.RFC3339))
}

func (pl *plan) allowed(c store.Candidate) []string {
	if len(c.GPUModels) > 0 {
		return c.GPUModels
	}
	return pl.order
}
