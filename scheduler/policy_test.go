package scheduler_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// Decide rejects the candidates of a project whose budget period does not contain the
// snapshot's time, and admits the others.
func TestDecideChecksBudgetPeriod(t *testing.T) {
	snap := snapshot(20, true)
	midnight := snap.Now.Truncate(24 * time.Hour)
	ended, future := snap.Quotas["project-1"], snap.Quotas["project-2"]
	ended.PeriodStart, ended.PeriodEnd = midnight.AddDate(0, -1, 0), midnight
	future.PeriodStart, future.PeriodEnd = midnight.AddDate(0, 0, 1), midnight.AddDate(0, 1, 0)
	snap.Quotas["project-1"], snap.Quotas["project-2"] = ended, future

	decisions, refusals := scheduler.Policy{StarvationBound: time.Hour}.Decide(snap)

	reasons := map[string]string{}
	for _, r := range refusals {
		reasons[r.Job.ID.String()] = r.Reason
	}
	for _, c := range snap.Candidates {
		want := ""
		switch c.ProjectID {
		case "project-1":
			want = scheduler.ReasonPeriodEnded
		case "project-2":
			want = scheduler.ReasonPeriodNotStarted
		}
		if got := reasons[c.JobID.String()]; got != want {
			t.Errorf("job of %s: reason %q, want %q", c.ProjectID, got, want)
		}
	}
	if len(decisions) != 16 {
		t.Errorf("%d admitted, want the 16 jobs of the other projects", len(decisions))
	}
}

// modelSnapshot is a snapshot at noon with the quota of project "vision", the models, and
// the candidates, which ask for no CPU or memory.
func modelSnapshot(models []store.ModelCapacity, candidates ...store.Candidate) store.Snapshot {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	quota := store.Quota{ProjectID: "vision", GPUHoursBudget: 1000, MaxConcurrentJobs: 100,
		PeriodStart: now.AddDate(0, -1, 0), PeriodEnd: now.AddDate(0, 1, 0)}
	for i := range candidates {
		candidates[i].JobID, candidates[i].ProjectID, candidates[i].MaxRuntimeSeconds = uuid.New(), "vision", 3600
		if candidates[i].QueuedAt.IsZero() {
			candidates[i].QueuedAt = now
		}
	}
	return store.Snapshot{Now: now, Candidates: candidates, Quotas: map[string]store.Quota{"vision": quota}, Models: models}
}

// A starving job holds back only the models with a node that could run it: a T4 job is
// admitted beside an 8-GPU job that waits for the one A100 node, which no T4 node could
// hold.
func TestStarvingJobHoldsOnlyFittingModels(t *testing.T) {
	snap := modelSnapshot([]store.ModelCapacity{
		{Model: "A100", CapacityMilli: 8000, AllocatedMilli: 8000, Nodes: 1, LargestNodeMilli: 8000},
		{Model: "T4", CapacityMilli: 40000, Nodes: 10, LargestNodeMilli: 4000},
	},
		store.Candidate{GPUMilli: 8000, QueuedAt: time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)},
		store.Candidate{GPUMilli: 1000},
	)

	decisions, refusals := scheduler.Policy{StarvationBound: 10 * time.Minute}.Decide(snap)
	if len(decisions) != 1 || decisions[0].Candidate.JobID != snap.Candidates[1].JobID {
		t.Fatalf("decisions %+v, want the 1-GPU job only", decisions)
	}
	if decisions[0].GPUModel != "T4" {
		t.Errorf("1-GPU job on %q, want T4", decisions[0].GPUModel)
	}
	if len(refusals) != 1 || refusals[0].Job.ID != snap.Candidates[0].JobID {
		t.Errorf("refusals %+v, want the starving 8-GPU job", refusals)
	}
}

// DecideUpTo leaves the candidates after its last admission unjudged: the third job would
// find no room only because of the second, which this dequeue does not admit.
func TestDecideUpToStopsAtMaxAdmit(t *testing.T) {
	snap := modelSnapshot([]store.ModelCapacity{{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000}},
		store.Candidate{GPUMilli: 4000}, store.Candidate{GPUMilli: 4000}, store.Candidate{GPUMilli: 4000})

	decisions, refusals := scheduler.Policy{StarvationBound: time.Hour}.DecideUpTo(snap, 1, scheduler.NewHolds())
	if len(decisions) != 1 || decisions[0].Candidate.JobID != snap.Candidates[0].JobID {
		t.Errorf("decisions %+v, want the first job only", decisions)
	}
	if len(refusals) != 0 {
		t.Errorf("refusals %+v, want none: the jobs after the first are not judged", refusals)
	}
}

// DecideUpTo respects the holds of earlier pages and adds its own.
func TestDecideUpToCarriesHolds(t *testing.T) {
	models := []store.ModelCapacity{
		{Model: "A10", CapacityMilli: 8000, AllocatedMilli: 4000, Nodes: 1, LargestNodeMilli: 8000},
		{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000},
	}
	held := scheduler.NewHolds()
	held.Models["H100"] = true
	page := modelSnapshot(models,
		store.Candidate{GPUMilli: 1000, GPUModels: []string{"H100"}},
		store.Candidate{GPUMilli: 8000, GPUModels: []string{"A10"}, QueuedAt: time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)},
	)

	decisions, refusals := scheduler.Policy{StarvationBound: 10 * time.Minute}.DecideUpTo(page, 2, held)
	if len(decisions) != 0 {
		t.Errorf("decisions %+v, want none", decisions)
	}
	if len(refusals) != 2 || refusals[0].Reason != scheduler.ReasonReserved {
		t.Errorf("refusals %+v, want the H100 job held back by an earlier page first", refusals)
	}
	if !held.Models["A10"] || !held.Models["H100"] {
		t.Errorf("held %v after the page, want A10 added to H100", held.Models)
	}
}

// A job that exactly fills a budget of a hundred million GPU-hours is admitted: the policy
// adds the quota's hours in its 4 decimals, as the dequeue's SQL does, not in float64.
func TestDecideAdmitsExactlyFullBudget(t *testing.T) {
	snap := modelSnapshot([]store.ModelCapacity{{Model: "A10", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000}},
		store.Candidate{GPUMilli: 1000})
	snap.Candidates[0].MaxRuntimeSeconds = 26 * 3600 // 26 GPU-hours
	quota := snap.Quotas["vision"]
	quota.GPUHoursBudget, quota.GPUHoursUsed, quota.GPUHoursReserved = 145175020.3011, 74982056.1744, 70192938.1267
	snap.Quotas["vision"] = quota

	decisions, refusals := scheduler.Policy{StarvationBound: time.Hour}.Decide(snap)
	if len(decisions) != 1 {
		t.Errorf("%d admitted with refusals %+v, want the job that fills the budget", len(decisions), refusals)
	}
}

// A starving job's share of its project's quota holds on later pages too: a later job of the
// project finds the last slot taken.
func TestDecideUpToCarriesQuotaHolds(t *testing.T) {
	models := []store.ModelCapacity{
		{Model: "A10", CapacityMilli: 8000, AllocatedMilli: 8000, Nodes: 1, LargestNodeMilli: 8000},
		{Model: "H100", CapacityMilli: 8000, Nodes: 1, LargestNodeMilli: 8000},
	}
	policy := scheduler.Policy{StarvationBound: 10 * time.Minute}
	held := scheduler.NewHolds()
	first := modelSnapshot(models,
		store.Candidate{GPUMilli: 8000, GPUModels: []string{"A10"}, QueuedAt: time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)})
	quota := first.Quotas["vision"]
	quota.MaxConcurrentJobs, quota.CurrentConcurrent = 2, 1
	first.Quotas["vision"] = quota

	if decisions, _ := policy.DecideUpTo(first, 2, held); len(decisions) != 0 {
		t.Fatalf("first page: decisions %+v, want none", decisions)
	}
	if got := held.Quotas["vision"]; got.Jobs != 1 || got.GPUHours != 8 {
		t.Errorf("held share of vision %+v, want 1 job and 8 GPU-hours", got)
	}

	second := modelSnapshot(models, store.Candidate{GPUMilli: 1000, GPUModels: []string{"H100"}})
	second.Quotas["vision"] = quota
	decisions, refusals := policy.DecideUpTo(second, 2, held)
	if len(decisions) != 0 {
		t.Errorf("second page: decisions %+v, want none", decisions)
	}
	if len(refusals) != 1 || refusals[0].Reason != scheduler.ReasonConcurrency {
		t.Errorf("second page: refusals %+v, want the H100 job with %q", refusals, scheduler.ReasonConcurrency)
	}
}

// BudgetRefusal on a budget of 10 GPU-hours with 2 used and 5 reserved: 3 are left, and
// 8 once the running jobs end.
func TestBudgetRefusal(t *testing.T) {
	quota := store.Quota{ProjectID: "vision", GPUHoursBudget: 10, GPUHoursUsed: 2, GPUHoursReserved: 5}
	cases := []struct {
		name     string
		held     float64
		hours    float64
		starving bool
		reason   string
		hold     bool
	}{
		{"fits what is left", 0, 3, true, "", false},
		{"fits beside the held hours", 1, 2, false, "", false},
		{"exceeds what is left", 0, 4, false, scheduler.ReasonBudget, false},
		{"starving, fits once running jobs end", 0, 8, true, scheduler.ReasonBudget, true},
		{"starving, fits beside the held hours", 3, 5, true, scheduler.ReasonBudget, true},
		{"starving, fits only without the held hours", 3, 6, true, scheduler.ReasonBudgetHeld, false},
		{"fits what is left only without the held hours", 1, 3, false, scheduler.ReasonBudgetHeld, false},
		{"exceeds what is left even without the held hours", 1, 4, false, scheduler.ReasonBudget, false},
		{"exceeds budget minus used", 0, 9, true, scheduler.ReasonBudgetTooSmall, false},
		{"exceeds budget minus used, not starving", 0, 9, false, scheduler.ReasonBudgetTooSmall, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reason, hold := scheduler.BudgetRefusal(quota, c.held, c.hours, c.starving)
			if reason != c.reason {
				t.Errorf("reason %q, want %q", reason, c.reason)
			}
			if hold != c.hold {
				t.Errorf("hold %v, want %v", hold, c.hold)
			}
		})
	}
}
