package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// snapshot builds what one dequeue decides on: candidates (four per admitted job, as the
// scheduler reads) over ten projects and four GPU models. With ample capacity every
// candidate fits; with tight capacity most wait for it.
func snapshot(candidates int, ample bool) store.Snapshot {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	models := []string{"A100", "H100", "L4", "V100"}
	snap := store.Snapshot{Now: now, Quotas: map[string]store.Quota{}}
	for i, m := range models {
		capacity := int64(1 << 40)
		if !ample {
			capacity = int64(4000 * (i + 1))
		}
		snap.Models = append(snap.Models, store.ModelCapacity{Model: m, CapacityMilli: capacity,
			Nodes: 100, LargestNodeMilli: 8000})
	}
	for p := range 10 {
		id := fmt.Sprintf("project-%d", p)
		snap.Quotas[id] = store.Quota{ProjectID: id, GPUHoursBudget: 1e9, MaxConcurrentJobs: 1_000_000,
			PeriodStart: now.AddDate(0, -1, 0), PeriodEnd: now.AddDate(0, 1, 0)}
	}
	milli := []int{1000, 2000, 500, 4000}
	for i := range candidates {
		c := store.Candidate{JobID: uuid.New(), JobCreatedAt: now.Add(-time.Duration(candidates-i) * time.Second),
			ProjectID: fmt.Sprintf("project-%d", i%10), Priority: i % 10 * 10, GPUMilli: milli[i%4],
			MaxRuntimeSeconds: 3600, QueuedAt: now.Add(-time.Minute), Namespace: "bench"}
		switch i % 3 {
		case 0:
			c.GPUModels = []string{models[0]}
		case 1:
			c.GPUModels = []string{models[0], models[1]}
		}
		snap.Candidates = append(snap.Candidates, c)
	}
	return snap
}

// BenchmarkPolicyDecide times the admission decision of one wide dequeue: 256 candidates
// read for the default batch of 64.
func BenchmarkPolicyDecide(b *testing.B) {
	policy := scheduler.Policy{StarvationBound: 10 * time.Minute}
	for _, tc := range []struct {
		name          string
		ample         bool
		wantDecisions int
	}{
		{"ample capacity", true, 256},
		{"tight capacity", false, -1},
	} {
		b.Run(tc.name, func(b *testing.B) {
			snap := snapshot(256, tc.ample)
			decisions, refusals := policy.Decide(snap)
			if len(decisions)+len(refusals) != len(snap.Candidates) {
				b.Fatalf("%d decisions and %d refusals for %d candidates", len(decisions), len(refusals),
					len(snap.Candidates))
			}
			if tc.wantDecisions >= 0 && len(decisions) != tc.wantDecisions {
				b.Fatalf("%d decisions, want %d", len(decisions), tc.wantDecisions)
			}
			if !tc.ample && len(refusals) == 0 {
				b.Fatal("no refusal with tight capacity; the case measures nothing different")
			}
			for b.Loop() {
				policy.Decide(snap)
			}
		})
	}
}
