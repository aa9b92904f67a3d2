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
	// ReasonBudgetHeld is the reason of a job that would fit its project's budget but for
	// the GPU-hours that older jobs of the project hold, having waited StarvationBound.
	ReasonBudgetHeld = "GPU-hour budget held for an older job that has waited too long"
	// ReasonBudgetTooSmall is the reason of a job that reserves more than the budget minus
	// the hours already used. Ending runs only add to the used hours, so it waits for the
	// next period or a larger budget.
	ReasonBudgetTooSmall = "GPU-hour budget left in this period is less than the job would reserve"
	// ReasonPeriodEnded lasts until the period is renewed, which the scheduler does within
	// its RenewInterval.
	ReasonPeriodEnded = "GPU-hour budget period has ended and awaits renewal"
	// ReasonPeriodNotStarted lasts until the period's first day (UTC).
	ReasonPeriodNotStarted = "GPU-hour budget period has not started yet"
)

// Policy holds the rules of a dequeue.
type Policy struct {
	// StarvationBound is how long a job may wait for capacity or for its project's budget
	// before later jobs stop backfilling the GPU models it can use and taking its project's
	// slot and GPU-hours. A stream of small jobs then cannot keep a large one waiting for ever.
	StarvationBound time.Duration
}

// DefaultStarvationBound is the StarvationBound that New uses when the Config has none.
const DefaultStarvationBound = 10 * time.Minute

// Holds is the set of GPU models and quota shares that the starving jobs of one round of
// dequeues keep from the candidates after them, in this page and the later ones.
type Holds struct {
	// Models are the GPU models that could run a starving job.
	Models map[string]bool
	// Quotas are, by project, the slots and GPU-hours that its starving jobs would take,
	// those that wait for capacity and those that wait for the budget. Later jobs of the
	// project are judged as if those jobs were admitted. Otherwise they could take the
	// project's last slot or budget. A job waiting for capacity would then drop out of the
	// next rounds' candidates, and other projects would backfill its models again. A job
	// waiting for the budget would see the small jobs after it spend what the end of the
	// project's running jobs frees.
	Quotas map[string]store.QuotaShare
}

// NewHolds returns the empty holds of a round's first dequeue.
func NewHolds() Holds {
	return Holds{Models: map[string]bool{}, Quotas: map[string]store.QuotaShare{}}
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
	if reason := pl.quotaRefusal(c, hours); reason != "" {
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

func (pl *plan) quotaRefusal(c store.Candidate, hours float64) string {
	q, ok := pl.quotas[c.ProjectID]
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
	}

	// The plan's quotas count the held GPU-hours as reserved, but BudgetRefusal takes them apart.
	// A job that no node could run holds no budget, just as chooseModel makes it hold no
	// capacity. Otherwise it would keep its project's later jobs waiting for nothing.
	held := pl.held.Quotas[c.ProjectID].GPUHours
	q.GPUHoursReserved -= held
	starving := pl.policy.starving(c, pl.now) && pl.runnable(c)
	reason, hold := BudgetRefusal(q, held, hours, starving)
	if !hold {
		return reason
	}
	pl.holdQuota(c.ProjectID, hours)
	return fmt.Sprintf("%s; waiting since %s, later jobs of its project no longer spend its GPU-hours",
		reason, c.QueuedAt.UTC().Format(time.RFC3339))
}

// BudgetRefusal returns why a job that would reserve hours waits for its project's budget,
// or "" when the budget takes it. q.GPUHoursReserved is what the project's admitted jobs
// reserve, and held what its older starving jobs hold on top (Holds.Quotas). starving is
// set when the job has waited StarvationBound. hold is set when the job should hold its
// reservation from the project's later jobs: it has waited the bound, and it fits the
// budget once the running jobs end and the older holders run.
//
// Ending runs release their reservations and add at most as many hours to the used ones,
// so the budget minus the used hours is the most a job can ever get in this period. A job
// larger than that holds nothing, or it would block its project until the period renews.
func BudgetRefusal(q store.Quota, held, hours float64, starving bool) (reason string, hold bool) {
	switch {
	case jobspec.FitsBudget(q.GPUHoursBudget, q.GPUHoursUsed, q.GPUHoursReserved, held, hours):
		return "", false
	case !jobspec.FitsBudget(q.GPUHoursBudget, q.GPUHoursUsed, hours):
		return ReasonBudgetTooSmall, false
	case starving && jobspec.FitsBudget(q.GPUHoursBudget, q.GPUHoursUsed, held, hours):
		return ReasonBudget, true
	case held > 0 && (starving || jobspec.FitsBudget(q.GPUHoursBudget, q.GPUHoursUsed, q.GPUHoursReserved, hours)):
		return ReasonBudgetHeld, false
	}
	return ReasonBudget, false
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

// runnable reports whether a node of one of c's allowed models is large enough for c.
func (pl *plan) runnable(c store.Candidate) bool {
	for _, name := range pl.allowed(c) {
		if m := pl.models[name]; m != nil && m.Holds(c.GPUMilli, c.CPUMilli, c.MemoryMiB) {
			return true
		}
	}
	return false
}

// hold keeps models, which could run the starving job c, from the later candidates of the
// round, and takes c's slot and reservation from its project's quota as those candidates
// see it.
func (pl *plan) hold(c store.Candidate, models []string) {
	for _, name := range models {
		pl.held.Models[name] = true
	}
	pl.holdQuota(c.ProjectID, jobspec.ReservedGPUHours(c.GPUMilli, c.MaxRuntimeSeconds))
}

// holdQuota takes a starving job's slot and its reservation of hours from project's quota,
// as the later candidates of the round see it.
func (pl *plan) holdQuota(project string, hours float64) {
	share := pl.held.Quotas[project]
	share.Jobs++
	share.GPUHours += hours
	pl.held.Quotas[project] = share

	q := pl.quotas[project]
	q.CurrentConcurrent++
	q.GPUHoursReserved += hours
	pl.quotas[project] = q
}

// starving reports whether c, if refused for want of capacity or budget at now, would hold
// capacity or GPU-hours back from the candidates after it.
func (p Policy) starving(c store.Candidate, now time.Time) bool {
	return c.GPUMilli > 0 && now.Sub(c.QueuedAt) >= p.StarvationBound
}

func (pl *plan) allowed(c store.Candidate) []string {
	if len(c.GPUModels) > 0 {
		return c.GPUModels
	}
	return pl.order
}
