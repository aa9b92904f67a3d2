package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RunStatus is the state of one attempt of a job.
type RunStatus string

const (
	RunPending   RunStatus = "pending" // pod created or about to be, not running yet
	RunRunning   RunStatus = "running"
	RunCompleted RunStatus = "completed"
	RunFailed    RunStatus = "failed"
	RunPreempted RunStatus = "preempted"
	RunCancelled RunStatus = "cancelled"
)

// Run is one row of runs, with the job fields the dispatcher needs to build and judge its pod.
type Run struct {
	ID                 uuid.UUID  `db:"id"`
	JobID              uuid.UUID  `db:"job_id"`
	JobCreatedAt       time.Time  `db:"job_created_at"`
	RunNumber          int        `db:"run_number"`
	Status             RunStatus  `db:"status"`
	CreatedAt          time.Time  `db:"created_at"`
	StartedAt          *time.Time `db:"started_at"`
	CompletedAt        *time.Time `db:"completed_at"`
	GPUHoursUsed       float64    `db:"gpu_hours_used"`
	GPUHoursReserved   float64    `db:"gpu_hours_reserved"`
	GPUMilli           int        `db:"gpu_milli"`
	GPUModel           *string    `db:"gpu_model"`
	Namespace          string     `db:"namespace"`
	PodName            string     `db:"pod_name"`
	PodCreatedAt       *time.Time `db:"pod_created_at"`
	WorkerNode         *string    `db:"worker_node"`
	LastCheckpointURI  *string    `db:"last_checkpoint_uri"`
	LastCheckpointStep *int       `db:"last_checkpoint_step"`
	EndReason          *string    `db:"end_reason"`
	ExitCode           *int       `db:"exit_code"`
	ProjectID          string     `db:"project_id"`
	JobStatus          JobStatus  `db:"job_status"`
	JobPriority        int        `db:"job_priority"`
	// JobStartedAt is when the job's first run started, nil until one has.
	JobStartedAt *time.Time      `db:"job_started_at"`
	ConfigJSON   json.RawMessage `db:"config_json"`
	// StopStatus, StopReason and StopRetryable are how a run that the dispatcher is
	// stopping ends once its pod is gone, and StopRequestedAt when the stop began
	// (RequestStop). StopStatus is nil for other runs.
	StopStatus      *RunStatus `db:"stop_status"`
	StopReason      *string    `db:"stop_reason"`
	StopRetryable   bool       `db:"stop_retryable"`
	StopRequestedAt *time.Time `db:"stop_requested_at"`
	// ContainerWaitStartedAt is when the image pull grace of the run's pod began to count
	// (RecordContainerWait), nil until a container of the pod waits for a cause that may pass.
	ContainerWaitStartedAt *time.Time `db:"container_wait_started_at"`
	// DrainDeadline is the drain deadline of the project's queue, read only by GetRun and GetRuns so
	// that the dispatcher checks it without another query.
	DrainDeadline *time.Time `db:"-"`
}

// Job returns the key of the run's job.
func (r Run) Job() JobRef { return JobRef{ID: r.JobID, CreatedAt: r.JobCreatedAt} }

const runColumns = `r.id, r.job_id, r.job_created_at, r.run_number, r.status::text AS status,
    r.created_at, r.started_at, r.completed_at, r.gpu_hours_used::float8 AS gpu_hours_used,
    r.gpu_hours_reserved::float8 AS gpu_hours_reserved, r.gpu_milli, r.gpu_model, r.namespace,
    r.pod_name, r.pod_created_at, r.worker_node, r.last_checkpoint_uri, r.last_checkpoint_step,
    r.end_reason, r.exit_code, j.project_id, j.status::text AS job_status, j.priority AS job_priority,
    j.started_at AS job_started_at, j.config_json, r.stop_status::text AS stop_status, r.stop_reason, r.stop_retryable, r.stop_requested_at,
    r.container_wait_started_at`

const sqlLiveRuns = `SELECT ` + runColumns + `
FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
WHERE r.status IN ('pending', 'running')
ORDER BY r.created_at`

// ListLiveRuns reads every pending or running run, oldest first.
func (s *Store) ListLiveRuns(ctx context.Context) ([]Run, error) {
	rows, err := s.pool.Query(ctx, sqlLiveRuns)
	if err != nil {
		return nil, wrap(err, "list live runs")
	}
	runs, err := collectAll[Run](rows)
	return runs, wrap(err, "list live runs")
}

// ListLiveRunIDs reads the ids of every pending or running run, for a resync that only
// needs to queue them: reading whole runs with their job configs would hold ten thousand
// of them in memory at once.
func (s *Store) ListLiveRunIDs(ctx context.Context) ([]uuid.UUID, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM runs WHERE status IN ('pending', 'running')`)
	if err != nil {
		return nil, wrap(err, "list live run ids")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, wrap(err, "list live run ids")
}

const sqlGetRuns = `SELECT ` + runColumns + `, u.drain_deadline
FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
LEFT JOIN quotas u ON u.project_id = j.project_id
WHERE r.id = ANY($1)`

// runWithDeadline is one row of sqlGetRuns.
type runWithDeadline struct {
	Run
	DrainDeadline *time.Time `db:"drain_deadline"`
}

// GetRun reads one run with its job's fields and its project's drain deadline.
func (s *Store) GetRun(ctx context.Context, id uuid.UUID) (Run, error) {
	runs, err := s.GetRuns(ctx, []uuid.UUID{id})
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("get run %s: %w", id, ErrNotFound)
	}
	return runs[0], nil
}

// GetRuns reads the runs of ids that exist, in no particular order, as GetRun reads each.
// One statement for many runs costs PostgreSQL little more than one for a single run, so
// the dispatcher reads the runs of concurrent reconciles together.
func (s *Store) GetRuns(ctx context.Context, ids []uuid.UUID) ([]Run, error) {
	rows, err := s.pool.Query(ctx, sqlGetRuns, uuidArray(ids))
	if err != nil {
		return nil, wrap(err, fmt.Sprintf("get %d runs", len(ids)))
	}
	found, err := collectAll[runWithDeadline](rows)
	if err != nil {
		return nil, wrap(err, fmt.Sprintf("get %d runs", len(ids)))
	}
	runs := make([]Run, len(found))
	for i, row := range found {
		runs[i] = row.Run
		runs[i].DrainDeadline = row.DrainDeadline
	}
	return runs, nil
}

const sqlLastCheckpoint = `
SELECT last_checkpoint_uri FROM runs
WHERE job_id = $1 AND job_created_at = $2 AND last_checkpoint_uri IS NOT NULL
ORDER BY run_number DESC LIMIT 1`

// LastCheckpoint returns the newest checkpoint any run of the job recorded, or "" if none:
// the point a new run resumes from.
func (s *Store) LastCheckpoint(ctx context.Context, job JobRef) (string, error) {
	var uri string
	err := s.pool.QueryRow(ctx, sqlLastCheckpoint, job.ID, job.CreatedAt).Scan(&uri)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return uri, wrap(err, "read last checkpoint of job "+job.ID.String())
}

// StopEnd returns how the run ends once its stop is done, without the end time, or false
// when no stop was requested.
func (r Run) StopEnd() (RunEnd, bool) {
	if r.StopStatus == nil {
		return RunEnd{}, false
	}
	end := RunEnd{RunID: r.ID, Status: *r.StopStatus, Retryable: r.StopRetryable}
	if r.StopReason != nil {
		end.Reason = *r.StopReason
	}
	return end, true
}

// The stop of RequestStop. A stop already requested is kept, so the first reason stays.
const sqlRequestStop = `
UPDATE runs SET stop_status = COALESCE(stop_status, $2::run_status),
    stop_reason = CASE WHEN stop_status IS NULL THEN $3 ELSE stop_reason END,
    stop_retryable = CASE WHEN stop_status IS NULL THEN $4 ELSE stop_retryable END,
    stop_requested_at = COALESCE(stop_requested_at, $5)
WHERE id = $1 AND status IN ('pending', 'running')`

// RequestStop records how a live run is to end, before the dispatcher deletes its pod. The
// run stays live, holding its quota and accepting artifacts, until the pod is gone, and then
// ends as recorded here. A stop already requested is kept. It returns ErrStaleStatus when
// the run has ended.
func (s *Store) RequestStop(ctx context.Context, end RunEnd, at time.Time) error {
	doing := fmt.Sprintf("request the stop of run %s as %s", end.RunID, end.Status)
	tag, err := s.pool.Exec(ctx, sqlRequestStop, end.RunID, string(end.Status), end.Reason, end.Retryable, at)
	if err != nil {
		return wrap(err, doing)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", doing, ErrStaleStatus)
	}
	return nil
}

// MarkPodCreated records that the run's pod exists, so that a pod missing later means it
// was deleted, not that it was never made.
func (s *Store) MarkPodCreated(ctx context.Context, runID uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `UPDATE runs SET pod_created_at = now()
		WHERE id = $1 AND status = 'pending' AND pod_created_at IS NULL`, runID)
	return wrap(err, "mark pod of run "+runID.String()+" created")
}

// MarkPodsCreated is MarkPodCreated for several runs in one statement.
func (s *Store) MarkPodsCreated(ctx context.Context, runIDs []uuid.UUID) error {
	_, err := s.pool.Exec(ctx, `UPDATE runs SET pod_created_at = now()
		WHERE id = ANY($1) AND status = 'pending' AND pod_created_at IS NULL`, runIDs)
	return wrap(err, fmt.Sprintf("mark pods of %d runs created", len(runIDs)))
}

const sqlRecordContainerWait = `
UPDATE runs SET container_wait_started_at = $2
WHERE id = $1 AND status IN ('pending', 'running') AND container_wait_started_at IS NULL`

// RecordContainerWait stores at as the time from which the image pull grace of a live run's
// pod counts, unless a time is stored already: the first one stays, so a restart or a new
// leader does not restart the grace. It reports whether it stored at. It stores nothing for
// a run that has ended.
func (s *Store) RecordContainerWait(ctx context.Context, runID uuid.UUID, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, sqlRecordContainerWait, runID, at)
	if err != nil {
		return false, wrap(err, "record when the container of run "+runID.String()+" began to wait")
	}
	return tag.RowsAffected() == 1, nil
}

// sqlStartRun and the other statements that update jobs on every run's start or end set
// updated_at themselves, which spares the PL/pgSQL call of the trigger jobs_touch
// (migration 20) for each row.
const sqlStartRun = `
WITH run AS (
    UPDATE runs SET status = 'running', started_at = $2, worker_node = $3,
        pod_created_at = COALESCE(pod_created_at, $2)
    WHERE id = $1 AND status = 'pending'
    RETURNING job_id, job_created_at
)
UPDATE jobs j SET started_at = COALESCE(j.started_at, $2), wait_reason = NULL, updated_at = now()
FROM run WHERE j.id = run.job_id AND j.created_at = run.job_created_at
RETURNING j.id`

// StartRun moves a pending run to running at startedAt, the time its container started:
// the GPU-hour clock starts then, never while the pod was pending. It clears the job's
// wait reason, which SetPodWaitReason may have set while the pod waited. It returns
// ErrStaleStatus when the run is not pending.
func (s *Store) StartRun(ctx context.Context, runID uuid.UUID, startedAt time.Time, node string) error {
	doing := "start run " + runID.String()
	var jobID uuid.UUID
	err := s.pool.QueryRow(ctx, sqlStartRun, runID, startedAt, node).Scan(&jobID)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", doing, ErrStaleStatus)
	}
	return wrap(err, doing)
}

const sqlAccrueRuns = `
UPDATE runs SET gpu_hours_used = LEAST(gpu_hours_reserved,
    gpu_milli / 1000.0 * extract(epoch FROM $1::timestamptz - started_at) / 3600.0)
WHERE status = 'running' AND started_at < $1`

// AccrueRunning updates the GPU-hours of every running run as of now, capped at its
// reservation. The quota is debited when the run ends.
func (s *Store) AccrueRunning(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, sqlAccrueRuns, now)
	if err != nil {
		return 0, wrap(err, "accrue GPU-hours of running runs")
	}
	return tag.RowsAffected(), nil
}

// ReasonPodWaitsForGPUs starts the wait reason of a running job whose pod stays
// unschedulable only because other pods use the GPUs of every node that could hold it. The
// API shows a running job's wait reason only when it starts with these words, because rows
// written before admission cleared the reason may still carry a stale one.
const ReasonPodWaitsForGPUs = "pod waits for GPUs that other pods use"

const sqlSetPodWaitReason = `
UPDATE jobs j SET wait_reason = $2, updated_at = now()
FROM runs r
WHERE r.id = $1 AND r.status = 'pending' AND j.id = r.job_id AND j.created_at = r.job_created_at
  AND j.status = 'running' AND j.wait_reason IS NULL`

// SetPodWaitReason stores reason as the wait reason of the job of a pending run whose pod
// waits for a node. The job keeps the first reason stored for the run, because the
// statement writes only over no reason. Admission and the run's start (StartRun) clear the
// reason, and the run's end replaces it. SetPodWaitReason reports whether it stored the
// reason, so that the caller logs and counts each run's wait once.
func (s *Store) SetPodWaitReason(ctx context.Context, runID uuid.UUID, reason string) (bool, error) {
	tag, err := s.pool.Exec(ctx, sqlSetPodWaitReason, runID, reason)
	if err != nil {
		return false, wrap(err, "set the wait reason of the job of run "+runID.String())
	}
	return tag.RowsAffected() == 1, nil
}
