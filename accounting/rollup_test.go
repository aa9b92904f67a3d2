package accounting_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

// sqlReportFromRuns is the report computed from every run, the way it was before the daily
// table: the reference the report from gpu_hours_daily must equal. A job counts on its
// first started run.
const sqlReportFromRuns = `
SELECT COALESCE(j.org_id, '') AS org_id, COALESCE(j.project_id, '') AS project_id,
       count(*) FILTER (WHERE run_is_first_start(r.job_id, r.run_number))::int AS jobs,
       count(*)::int AS runs, COALESCE(sum(r.gpu_hours_used), 0)::float8 AS gpu_hours,
       CASE WHEN GROUPING(j.project_id) = 0 THEN max(q.gpu_hours_budget)::float8 ELSE 0 END AS budget
FROM runs r
JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
LEFT JOIN quotas q ON q.project_id = j.project_id
WHERE r.started_at >= $1 AND r.started_at < $2
GROUP BY ROLLUP (j.org_id, j.project_id)
ORDER BY GROUPING(j.org_id), j.org_id, GROUPING(j.project_id), j.project_id`

// sqlDailyMismatch lists the (day, project, org) whose gpu_hours_daily row differs from
// the sum over its ended runs.
const sqlDailyMismatch = `
WITH truth AS (
    SELECT (r.started_at AT TIME ZONE 'UTC')::date AS day, j.project_id, j.org_id,
           count(*) AS runs,
           count(*) FILTER (WHERE run_is_first_start(r.job_id, r.run_number)) AS jobs,
           sum(r.gpu_hours_used) AS gpu_hours
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE r.started_at IS NOT NULL AND r.status NOT IN ('pending', 'running')
    GROUP BY 1, 2, 3
)
SELECT count(*) FROM truth t
FULL JOIN gpu_hours_daily d USING (day, project_id, org_id)
WHERE (t.runs, t.jobs, t.gpu_hours) IS DISTINCT FROM (d.runs, d.jobs, d.gpu_hours)`

// admitAndStart submits a job of project with gpuMilli, admits it and starts its run at
// start, returning the run id.
func admitAndStart(t *testing.T, s *store.Store, project string, gpuMilli int, start time.Time) store.Admission {
	t.Helper()
	ctx := context.Background()
	_, err := s.SubmitJob(ctx, store.Submission{ProjectID: project, JobType: "fine_tune", Priority: 5,
		Config: json.RawMessage(`{}`), GPUMilli: gpuMilli, MaxRuntimeSeconds: 36000, MaxAttempts: 3,
		MaxPreemptions: 20})
	if err != nil {
		t.Fatal(err)
	}
	return admitQueued(t, s, start)
}

// admitQueued admits the head of the queue on A10 and starts its run at start.
func admitQueued(t *testing.T, s *store.Store, start time.Time) store.Admission {
	t.Helper()
	ctx := context.Background()
	admissions, err := s.Dequeue(ctx, store.CandidateWindow{Limit: 1}, func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		c := snap.Candidates[0]
		return []store.Decision{{Candidate: c, GPUModel: "A10", GPUHoursReserved: 10 * float64(c.GPUMilli) / 1000}}, nil
	})
	if err != nil || len(admissions) != 1 {
		t.Fatalf("admit: %d admissions, err %v", len(admissions), err)
	}
	if err := s.StartRun(ctx, admissions[0].RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	return admissions[0]
}

func endRun(t *testing.T, s *store.Store, run store.Admission, status store.RunStatus, at time.Time) {
	t.Helper()
	_, err := s.EndRun(context.Background(), store.RunEnd{RunID: run.RunID, Status: status, EndedAt: at,
		Reason: "test", Retryable: true})
	if err != nil {
		t.Fatal(err)
	}
}

func reportFromRuns(t *testing.T, s *store.Store, from, to time.Time) []accounting.Line {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), sqlReportFromRuns, from, to)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (accounting.Line, error) {
		var l accounting.Line
		err := row.Scan(&l.OrgID, &l.ProjectID, &l.Jobs, &l.Runs, &l.GPUHours, &l.Budget)
		return l, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func checkReportMatchesRuns(t *testing.T, s *store.Store, from, to time.Time) {
	t.Helper()
	ctx := context.Background()
	got, err := accounting.Report(ctx, s, from, to)
	if err != nil {
		t.Fatal(err)
	}
	want := reportFromRuns(t, s, from, to)
	if len(got) != len(want) {
		t.Fatalf("report has %d lines %+v, the sum over runs %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: report %+v, sum over runs %+v", i, got[i], want[i])
		}
	}
	var mismatched int
	if err := s.Pool().QueryRow(ctx, sqlDailyMismatch).Scan(&mismatched); err != nil {
		t.Fatal(err)
	}
	if mismatched != 0 {
		t.Errorf("%d gpu_hours_daily rows differ from the sum over their ended runs", mismatched)
	}
}

func TestDailyRollupEqualsRunsAfterEndAndAccrual(t *testing.T) {
	ctx := context.Background()
	s := store.New(pgtest.NewPool(t))
	seedReportProjects(t, s)
	june := time.Date(2026, 6, 10, 8, 0, 0, 0, time.UTC)
	from, to := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)

	// A job preempted on the 10th and run again on the 11th counts once, on the 10th.
	first := admitAndStart(t, s, "vision", 2000, june)
	endRun(t, s, first, store.RunPreempted, june.Add(30*time.Minute))
	second := admitQueued(t, s, june.AddDate(0, 0, 1))
	endRun(t, s, second, store.RunCompleted, june.AddDate(0, 0, 1).Add(90*time.Minute))

	// Two projects of one org and one of another; one run still running.
	done := admitAndStart(t, s, "speech", 1000, june)
	endRun(t, s, done, store.RunCompleted, june.Add(2*time.Hour))
	running := admitAndStart(t, s, "search", 4000, june.Add(time.Hour))
	checkReportMatchesRuns(t, s, from, to)

	// Accrual grows the running run's hours, which the report reads from the run itself.
	if _, err := s.AccrueRunning(ctx, june.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkReportMatchesRuns(t, s, from, to)
	lines, err := accounting.Report(ctx, s, from, to)
	if err != nil {
		t.Fatal(err)
	}
	total := lines[len(lines)-1]
	// vision 1 + 3, speech 2, search 4 GPUs for 2 hours so far.
	if total.Runs != 4 || total.Jobs != 3 || total.GPUHours != 14 {
		t.Errorf("total %+v, want 4 runs of 3 jobs and 14 GPU-hours; lines %+v", total, lines)
	}

	endRun(t, s, running, store.RunCompleted, june.Add(4*time.Hour))
	checkReportMatchesRuns(t, s, from, to)
	// A month without runs reports only the empty total, as before.
	checkReportMatchesRuns(t, s, to, to.AddDate(0, 1, 0))
}

func TestReportRejectsBoundsInsideADay(t *testing.T) {
	s := store.New(pgtest.NewPool(t))
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	if _, err := accounting.Report(context.Background(), s, day.Add(time.Hour), day.AddDate(0, 1, 0)); err == nil {
		t.Error("report from 01:00 succeeded, want an error: bounds must be midnight UTC")
	}
	if _, err := accounting.Report(context.Background(), s, day, day.AddDate(0, 1, 0).Add(-time.Minute)); err == nil {
		t.Error("report to 23:59 succeeded, want an error: bounds must be midnight UTC")
	}
}

// seedReportProjects creates vision and speech of acme and search of globex, with budgets
// of 100 GPU-hours, and ample A10 capacity.
func seedReportProjects(t *testing.T, s *store.Store) {
	t.Helper()
	ctx := context.Background()
	for _, p := range []struct{ id, org string }{{"vision", "acme"}, {"speech", "acme"}, {"search", "globex"}} {
		if _, err := s.UpsertProject(ctx, store.Project{ID: p.id, OrgID: p.org, K8sNamespace: p.id}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpsertQuota(ctx, store.Quota{ProjectID: p.id, GPUHoursBudget: 100, MaxConcurrentJobs: 10,
			PeriodStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	capacity := []store.ModelCapacity{{Model: "A10", CapacityMilli: 100000, Nodes: 10, LargestNodeMilli: 8000}}
	if err := s.SyncGPUCapacity(ctx, capacity); err != nil {
		t.Fatal(err)
	}
}
