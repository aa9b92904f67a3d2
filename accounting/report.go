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

// The hours of runs that started in the period, by org and project with totals. Runs join
// jobs on the partition key, and the period bounds the runs, so the report reads only runs
// of the period and the job partitions they point at.
const sqlReport = `
SELECT COALESCE(j.org_id, '') AS org_id, COALESCE(j.project_id, '') AS project_id,
       count(DISTINCT j.id)::int AS jobs, count(*)::int AS runs,
       COALESCE(sum(r.gpu_hours_used), 0)::float8 AS gpu_hours,
       CASE WHEN GROUPING(j.project_id) = 0 THEN max(q.gpu_hours_budget)::float8 ELSE 0 END AS budget
FROM runs r
JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
LEFT JOIN quotas q ON q.project_id = j.project_id
WHERE r.started_at >= $1 AND r.started_at < $2
GROUP BY ROLLUP (j.org_id, j.project_id)
ORDER BY GROUPING(j.org_id), j.org_id, GROUPING(j.project_id), j.project_id`

// Report returns GPU-hours by org and project for runs that started in [from, to).
func Report(ctx context.Context, s *store.Store, from, to time.Time) ([]Line, error) {
	if !to.After(from) {
		return nil, fmt.Errorf("report period: end %s is not after start %s", to.Format(time.RFC3339), from.Format(time.RFC3339))
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
