package store

import (
	"context"
	"time"
)

// Project is a team's share of the cluster: its jobs run in its Kubernetes namespace.
type Project struct {
	ID           string    `db:"id"`
	OrgID        string    `db:"org_id"`
	DisplayName  string    `db:"display_name"`
	K8sNamespace string    `db:"k8s_namespace"`
	Owner        string    `db:"owner"`
	CreatedAt    time.Time `db:"created_at"`
}

// Quota is a project's GPU-hour budget and concurrency limit for one period.
type Quota struct {
	ProjectID         string     `db:"project_id"`
	GPUHoursBudget    float64    `db:"gpu_hours_budget"`
	GPUHoursUsed      float64    `db:"gpu_hours_used"`
	GPUHoursReserved  float64    `db:"gpu_hours_reserved"`
	MaxConcurrentJobs int        `db:"max_concurrent_jobs"`
	CurrentConcurrent int        `db:"current_concurrent"`
	PriorityTier      int        `db:"priority_tier"`
	PeriodStart       time.Time  `db:"period_start"`
	PeriodEnd         time.Time  `db:"period_end"`
	DrainedAt         *time.Time `db:"drained_at"`
}

const sqlUpsertProject = `
INSERT INTO projects (id, org_id, display_name, k8s_namespace, owner)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET org_id = EXCLUDED.org_id, display_name = EXCLUDED.display_name,
    k8s_namespace = EXCLUDED.k8s_namespace, owner = EXCLUDED.owner
RETURNING id, org_id, display_name, k8s_namespace, owner, created_at`

// UpsertProject creates the project or updates its fields.
func (s *Store) UpsertProject(ctx context.Context, p Project) (Project, error) {
	rows, err := s.pool.Query(ctx, sqlUpsertProject, p.ID, p.OrgID, p.DisplayName, p.K8sNamespace, p.Owner)
	if err != nil {
		return Project{}, wrap(err, "upsert project "+p.ID)
	}
	got, err := collectOne[Project](rows)
	return got, wrap(err, "upsert project "+p.ID)
}

const sqlGetProject = `
SELECT id, org_id, display_name, k8s_namespace, owner, created_at FROM projects WHERE id = $1`

// GetProject reads one project.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	rows, err := s.pool.Query(ctx, sqlGetProject, id)
	if err != nil {
		return Project{}, wrap(err, "get project "+id)
	}
	got, err := collectOne[Project](rows)
	return got, wrap(err, "get project "+id)
}

const sqlListProjects = `
SELECT id, org_id, display_name, k8s_namespace, owner, created_at FROM projects ORDER BY id`

// ListProjects reads every project, ordered by id.
func (s *Store) ListProjects(ctx context.Context) ([]Project, error) {
	rows, err := s.pool.Query(ctx, sqlListProjects)
	if err != nil {
		return nil, wrap(err, "list projects")
	}
	got, err := collectAll[Project](rows)
	return got, wrap(err, "list projects")
}

const quotaColumns = `project_id, gpu_hours_budget::float8 AS gpu_hours_budget,
    gpu_hours_used::float8 AS gpu_hours_used, gpu_hours_reserved::float8 AS gpu_hours_reserved,
    max_concurrent_jobs, current_concurrent, priority_tier, period_start, period_end, drained_at`

const sqlUpsertQuota = `
INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, priority_tier, period_start, period_end)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (project_id) DO UPDATE
SET gpu_hours_budget = EXCLUDED.gpu_hours_budget, max_concurrent_jobs = EXCLUDED.max_concurrent_jobs,
    priority_tier = EXCLUDED.priority_tier, period_start = EXCLUDED.period_start,
    period_end = EXCLUDED.period_end
RETURNING ` + quotaColumns

// UpsertQuota sets a project's budget, concurrency limit, tier and period. What is used and
// reserved is kept.
func (s *Store) UpsertQuota(ctx context.Context, q Quota) (Quota, error) {
	rows, err := s.pool.Query(ctx, sqlUpsertQuota, q.ProjectID, q.GPUHoursBudget, q.MaxConcurrentJobs,
		q.PriorityTier, q.PeriodStart, q.PeriodEnd)
	if err != nil {
		return Quota{}, wrap(err, "upsert quota of "+q.ProjectID)
	}
	got, err := collectOne[Quota](rows)
	return got, wrap(err, "upsert quota of "+q.ProjectID)
}

const sqlGetQuota = `SELECT ` + quotaColumns + ` FROM quotas WHERE project_id = $1`

// GetQuota reads a project's quota.
func (s *Store) GetQuota(ctx context.Context, projectID string) (Quota, error) {
	rows, err := s.pool.Query(ctx, sqlGetQuota, projectID)
	if err != nil {
		return Quota{}, wrap(err, "get quota of "+projectID)
	}
	got, err := collectOne[Quota](rows)
	return got, wrap(err, "get quota of "+projectID)
}

// The budget debit of the database design: one statement that applies only when the
// project stays within its budget, counting what admitted jobs hold reserved.
const sqlDebitBudget = `
UPDATE quotas SET gpu_hours_used = gpu_hours_used + $2
WHERE project_id = $1 AND gpu_hours_used + gpu_hours_reserved + $2 <= gpu_hours_budget
RETURNING gpu_hours_used::float8`

// DebitBudget adds gpuHours to what the project used, if that keeps it within its budget.
// It returns ErrBudgetExceeded, and changes nothing, otherwise.
func (s *Store) DebitBudget(ctx context.Context, projectID string, gpuHours float64) (used float64, err error) {
	doing := "debit GPU-hours from " + projectID
	err = s.pool.QueryRow(ctx, sqlDebitBudget, projectID, gpuHours).Scan(&used)
	if err == nil {
		return used, nil
	}
	if _, getErr := s.GetQuota(ctx, projectID); getErr != nil {
		return 0, wrap(getErr, doing)
	}
	return 0, wrapBudget(err, doing)
}
