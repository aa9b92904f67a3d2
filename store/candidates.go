package store

import (
	"time"

	"github.com/google/uuid"
)

// CandidateWindow chooses which queued jobs a dequeue reads as candidates.
type CandidateWindow struct {
	// Limit is the maximum number of candidates.
	Limit int
	// OnlyWithRoom leaves out the GPU jobs that no allowed model has room for, unless they
	// have waited StarvationBound: those stay, so that the policy can hold capacity back for
	// them. The first dequeue of a round reads the head of the queue as it is, which costs
	// less and usually fills the batch. The later ones skip what the first one refused.
	OnlyWithRoom bool
	// StarvationBound is how long a job waits before it counts as starving. A starving job
	// whose reservation exceeds what is left of its project's budget, but not the budget
	// minus the hours used, stays a candidate, so that the policy can hold the budget for it.
	// Zero makes no job starving.
	StarvationBound time.Duration
	// Held is, by project, the share of its quota that starving jobs of earlier dequeues of
	// the round hold. The window judges the project's jobs as if that share were admitted.
	// Otherwise the later jobs of the project, which the policy refuses for the held slots
	// and GPU-hours, would fill every later window of the round.
	Held map[string]QuotaShare
	// After, when set, starts the window behind this job in queue order, so that the next
	// dequeue of a round reads past the candidates the previous one refused.
	After *QueueKey
}

// QuotaShare is a part of a project's quota: concurrency slots and GPU-hours.
type QuotaShare struct {
	Jobs     int
	GPUHours float64
}

// QueueKey is a job's place in the queue: priority first, then age, then id.
type QueueKey struct {
	Priority  int
	CreatedAt time.Time
	JobID     uuid.UUID
}

// Key returns the candidate's place in the queue.
func (c Candidate) Key() QueueKey {
	return QueueKey{Priority: c.Priority, CreatedAt: c.JobCreatedAt, JobID: c.JobID}
}

// query returns the candidate query and its parameters.
func (w CandidateWindow) query() (string, []any) {
	args := []any{w.Limit, nil, nil, nil, w.StarvationBound.Microseconds()}
	if w.After != nil {
		args[1], args[2], args[3] = w.After.Priority, w.After.CreatedAt, w.After.JobID
	}
	var projects []string
	var jobs []int
	var hours []float64
	for id, share := range w.Held {
		projects, jobs, hours = append(projects, id), append(jobs, share.Jobs), append(hours, share.GPUHours)
	}
	args = append(args, projects, jobs, hours)
	if w.OnlyWithRoom {
		return sqlCandidatesWithRoom, args
	}
	return sqlCandidates, args
}

// sqlModelFits is true for a gpu_models row m that could run the queued job q: m is
// allowed (an empty list allows every model), has nodes, and its largest node values are
// at least the pod's request. The policy checks the exact node shapes (ModelCapacity.Holds).
const sqlModelFits = `(cardinality(q.gpu_models) = 0 OR m.model = ANY (q.gpu_models))
        AND m.nodes > 0 AND m.largest_node_milli >= q.gpu_milli
        AND m.largest_node_cpu_milli >= q.cpu_milli AND m.largest_node_memory_mib >= q.memory_mib`

// sqlStarving is true for the queued job q once it has waited the starvation bound ($5, in
// microseconds). A bound of zero makes no job starving.
const sqlStarving = `($5::bigint > 0 AND q.queued_at <= now() - $5::bigint * interval '1 microsecond')`

// sqlHeldHours is the GPU-hours of q's project that the window's Held share takes ($6 to
// $8), rounded to the 4 decimals of the quota columns as the policy adds them.
const sqlHeldHours = `coalesce(round(h.gpu_hours::numeric, 4), 0)`

// The candidates: queued jobs in priority order whose project could take them now, each
// with its project's quota as read (not locked) and the transaction's time. Jobs of
// drained, full or exhausted projects are left out here. A project with one free slot
// still passes with all its jobs, so its queue can fill one dequeue's window, but from the
// next dequeue on it is full and left out, and the jobs of other projects are reached.
// Projects outside their budget period are left out too: the scheduler renews an ended
// period within seconds, and a period that has not started admits nothing. With After set
// ($2 to $4), the window starts behind that job.
//
// The slots and GPU-hours that the window's Held share takes ($6 to $8, by project) count
// as admitted. A starving job ($5) that exceeds what is left of the budget stays when its
// reservation fits the budget minus the used and held hours: the policy refuses it and
// holds the budget for it. A job larger than that waits for older holders to run, or can
// never run in this period, and is left out.
const sqlCandidatesSelect = `
SELECT now() AS now, q.job_id, q.job_created_at, q.project_id, q.priority, q.gpu_milli,
       q.gpu_models, q.max_runtime_seconds, q.queued_at, q.cpu_milli, q.memory_mib, p.k8s_namespace,
       u.gpu_hours_budget::float8 AS quota_gpu_hours_budget,
       u.gpu_hours_used::float8 AS quota_gpu_hours_used,
       u.gpu_hours_reserved::float8 AS quota_gpu_hours_reserved,
       u.max_concurrent_jobs AS quota_max_concurrent_jobs,
       u.current_concurrent AS quota_current_concurrent, u.priority_tier AS quota_priority_tier,
       u.period_start AS quota_period_start, u.period_end AS quota_period_end,
       u.drained_at AS quota_drained_at
FROM job_queue q
JOIN quotas u ON u.project_id = q.project_id
JOIN projects p ON p.id = q.project_id
LEFT JOIN unnest($6::text[], $7::integer[], $8::float8[]) AS h(project_id, jobs, gpu_hours)
    ON h.project_id = q.project_id
WHERE u.drained_at IS NULL
  AND u.current_concurrent + coalesce(h.jobs, 0) < u.max_concurrent_jobs
  AND u.period_start <= (now() AT TIME ZONE 'UTC')::date
  AND u.period_end > (now() AT TIME ZONE 'UTC')::date
  AND (u.gpu_hours_used + u.gpu_hours_reserved + ` + sqlHeldHours + ` + ` + sqlReservation + ` <= u.gpu_hours_budget
       OR (` + sqlStarving + `
           AND u.gpu_hours_used + ` + sqlHeldHours + ` + ` + sqlReservation + ` <= u.gpu_hours_budget))
  AND ($2::integer IS NULL OR q.priority < $2
       OR (q.priority = $2 AND (q.job_created_at, q.job_id) > ($3::timestamptz, $4::uuid)))`

const sqlCandidatesOrder = `
ORDER BY q.priority DESC, q.job_created_at, q.job_id
LIMIT $1
FOR UPDATE OF q SKIP LOCKED`

const sqlCandidates = sqlCandidatesSelect + sqlCandidatesOrder

// sqlCandidatesWithRoom also leaves out GPU jobs that no allowed model has room for,
// unless they are starving. Otherwise a few hundred jobs waiting for a busy or too small
// model would fill every window, and no job behind them would be admitted, whatever its
// model. ExplainWaits gives the jobs left out their wait reasons.
const sqlCandidatesWithRoom = sqlCandidatesSelect + `
  AND (q.gpu_milli = 0 OR EXISTS (
        SELECT 1 FROM gpu_models m
        WHERE ` + sqlModelFits + `
          AND (m.capacity_milli - m.allocated_milli >= q.gpu_milli OR ` + sqlStarving + `)))` + sqlCandidatesOrder

// candidateRow is one row of sqlCandidates.
type candidateRow struct {
	Candidate
	Now               time.Time  `db:"now"`
	GPUHoursBudget    float64    `db:"quota_gpu_hours_budget"`
	GPUHoursUsed      float64    `db:"quota_gpu_hours_used"`
	GPUHoursReserved  float64    `db:"quota_gpu_hours_reserved"`
	MaxConcurrentJobs int        `db:"quota_max_concurrent_jobs"`
	CurrentConcurrent int        `db:"quota_current_concurrent"`
	PriorityTier      int        `db:"quota_priority_tier"`
	PeriodStart       time.Time  `db:"quota_period_start"`
	PeriodEnd         time.Time  `db:"quota_period_end"`
	DrainedAt         *time.Time `db:"quota_drained_at"`
}

func (r candidateRow) quota() Quota {
	return Quota{ProjectID: r.ProjectID, GPUHoursBudget: r.GPUHoursBudget, GPUHoursUsed: r.GPUHoursUsed,
		GPUHoursReserved: r.GPUHoursReserved, MaxConcurrentJobs: r.MaxConcurrentJobs,
		CurrentConcurrent: r.CurrentConcurrent, PriorityTier: r.PriorityTier,
		PeriodStart: r.PeriodStart, PeriodEnd: r.PeriodEnd, DrainedAt: r.DrainedAt}
}
