package accounting_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// runFor admits one job of project with gpuMilli and ends its run after minutes, started at
// start. It returns the run's GPU-hours as stored.
func runFor(t *testing.T, s *store.Store, project string, gpuMilli int, start time.Time, minutes int) float64 {
	t.Helper()
	ctx := context.Background()
	_, err := s.SubmitJob(ctx, store.Submission{ProjectID: project, JobType: "fine_tune", Priority: 5,
		Config: json.RawMessage(`{}`), GPUMilli: gpuMilli, MaxRuntimeSeconds: 36000, MaxAttempts: 1,
		MaxPreemptions: 20})
	if err != nil {
		t.Fatal(err)
	}
	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 1}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 10 * float64(gpuMilli) / 1000}}, nil
	})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("admit: %d admissions, err %v", len(admissions), err)
	}
	run := admissions[0].RunID
	if err := s.StartRun(ctx, run, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	result, err := s.EndRun(ctx, store.RunEnd{RunID: run, Status: store.RunCompleted, EndedAt: start.Add(time.Duration(minutes) * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	return result.GPUHoursUsed
}

func TestReportByProjectAndOrg(t *testing.T) {
	ctx := context.Background()
	s := store.New(pgtest.NewPool(t))
	for _, p := range []struct{ id, org string }{{"vision", "acme"}, {"speech", "acme"}, {"search", "globex"}} {
		if _, err := s.UpsertProject(ctx, store.Project{ID: p.id, OrgID: p.org, K8sNamespace: p.id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertQuota(ctx, store.Quota{ProjectID: p.id, GPUHoursBudget: 100, MaxConcurrentJobs: 10,
			PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SyncGPUCapacity(ctx, []store.ModelCapacity{{Model: "A10", CapacityMilli: 100000, Nodes: 10, LargestNodeMilli: 8000}}); err != nil {
		t.Fatal(err)
	}
	june := time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC)

	runFor(t, s, "vision", 2000, june, 90)                   // 3 GPU-hours
	runFor(t, s, "vision", 500, june, 60)                    // 0.5
	runFor(t, s, "speech", 1000, june, 30)                   // 0.5
	runFor(t, s, "search", 4000, june, 15)                   // 1
	runFor(t, s, "search", 1000, june.AddDate(0, 1, 0), 600) // July: outside the period

	lines, err := accounting.Report(ctx, s, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := []accounting.Line{
		{OrgID: "acme", ProjectID: "speech", Jobs: 1, Runs: 1, GPUHours: 0.5, Budget: 100},
		{OrgID: "acme", ProjectID: "vision", Jobs: 2, Runs: 2, GPUHours: 3.5, Budget: 100},
		{OrgID: "acme", Jobs: 3, Runs: 3, GPUHours: 4},
		{OrgID: "globex", ProjectID: "search", Jobs: 1, Runs: 1, GPUHours: 1, Budget: 100},
		{OrgID: "globex", Jobs: 1, Runs: 1, GPUHours: 1},
		{Jobs: 4, Runs: 4, GPUHours: 5},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines %+v, want %d", len(lines), lines, len(want))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, lines[i], want[i])
		}
	}

	var out bytes.Buffer
	if err := accounting.WriteReport(&out, lines); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "3.5000") || !strings.Contains(out.String(), "(org total)") {
		t.Errorf("table lacks vision's 3.5000 GPU-hours or the org totals:\n%s", out.String())
	}
}

func TestReportRejectsEmptyPeriod(t *testing.T) {
	s := store.New(pgtest.NewPool(t))
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := accounting.Report(context.Background(), s, day, day); err == nil {
		t.Error("report over an empty period succeeded, want an error")
	}
}
