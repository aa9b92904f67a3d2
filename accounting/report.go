package accounting

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/store"
)

// Line is one row of a GPU-hour report. Project is empty on an org's total line; both are
// empty on the grand total.
type Line struct {
	OrgID     string  `json:"org_id"`
	ProjectID string  `json:"project_id"`
	Jobs      int     `json:"jobs"`
	Runs      int     `json:"runs"`
	GPUHours  float64 `json:"gpu_hours"`
	Budget    float64 `json:"gpu_hours_budget,omitempty"`
}

// The hours of runs that started in the period, by org and project with totals. Ended runs
// come from gpu_hours_daily, which a trigger on runs keeps (migrations/008_gpu_hours_daily.sql).
// The runs still running come from runs, through the partial index on live runs. Jobs
// counts each job on the run that first started it, so a job retried across two periods
// counts in the first one only.
const sqlReport = `
WITH period AS (
    SELECT org_id, project_id, jobs, runs, gpu_hours
    FROM gpu_hours_daily
    WHERE day >= ($1::timestamptz AT TIME ZONE 'UTC')::date
      AND day < ($2::timestamptz AT TIME ZONE 'UTC')::date
    UNION ALL
    SELECT j.org_id, j.project_id, run_is_first_start(r.job_id, r.run_number)::int, 1,
           r.gpu_hours_used
    FROM runs r
    JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE r.status IN ('pending', 'running') AND r.started_at >= $1 AND r.started_at < $2
)
SELECT COALESCE(p.org_id, '') AS org_id, COALESCE(p.project_id, '') AS project_id,
       COALESCE(sum(p.jobs), 0)::int AS jobs, COALESCE(sum(p.runs), 0)::int AS runs,
       COALESCE(sum(p.gpu_hours), 0)::float8 AS gpu_hours,
       CASE WHEN GROUPING(p.project_id) = 0 THEN max(q.gpu_hours_budget)::float8 ELSE 0 END AS budget
FROM period p
LEFT JOIN quotas q ON q.project_id = p.project_id
GROUP BY ROLLUP (p.org_id, p.project_id)
ORDER BY GROUPING(p.org_id), p.org_id, GROUPING(p.project_id), p.project_id`

// Report returns GPU-hours by org and project for runs that started in [from, to). Both
// bounds must be midnight UTC, because ended runs are summed by UTC day.
func Report(ctx context.Context, s *store.Store, from, to time.Time) ([]Line, error) {
	if err := checkPeriod(from, to); err != nil {
		return nil, err
	}
	rows, err := s.Pool().Query(ctx, sqlReport, from, to)
	if err != nil {
		return nil, fmt.Errorf("query GPU-hour report: %w", err)
	}
	lines, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Line, error) {
		var l Line
		err := row.Scan(&l.OrgID, &l.ProjectID, &l.Jobs, &l.Runs, &l.GPUHours, &l.Budget)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("read GPU-hour report: %w", err)
	}
	return lines, nil
}

// checkPeriod rejects an empty period and bounds that are not whole UTC days.
func checkPeriod(from, to time.Time) error {
	if !to.After(from) {
		return fmt.Errorf("report period: end %s is not after start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	for _, bound := range []time.Time{from, to} {
		if !bound.Equal(bound.UTC().Truncate(24 * time.Hour)) {
			return fmt.Errorf("invalid report period bound %s: it must be midnight UTC, so pass whole days",
				bound.Format(time.RFC3339))
		}
	}
	return nil
}

// WriteReport prints lines as an aligned table for people.
func WriteReport(w io.Writer, lines []Line) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "org\tproject\tjobs\truns\tGPU-hours\tbudget\t")
	for _, l := range lines {
		org, project, budget := l.OrgID, l.ProjectID, ""
		switch {
		case org == "":
			org, project = "all", ""
		case project == "":
			project = "(org total)"
		default:
			budget = fmt.Sprintf("%.2f", l.Budget)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.4f\t%s\t\n", org, project, l.Jobs, l.Runs, l.GPUHours, budget)
	}
	return tw.Flush()
}
