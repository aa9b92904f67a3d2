package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// The statements that apply a dequeue's decisions, one per table for the whole batch, sent
// together with the COMMIT in one round trip. Each repeats the admission rules in its WHERE
// clause, on the rows' latest versions. The function admission_guard (migration 009) then
// checks in the server how many rows the statement changed. A failed guard means that a
// job, quota or model changed since the dequeue read it, and it ends the transaction before
// the COMMIT runs.
const (
	// The admitted jobs move to running and get their runs in one statement. Job ids are
	// unique, so pairing the two key arrays by position is not needed in the UPDATE: only
	// the row with both its id and its created_at matches. The = ANY form plans in a
	// fraction of the time of a join with unnest, and still prunes partitions by created_at.
	// The runs come back as three arrays in one row, so that the guard runs even when no
	// job was admitted.
	//
	// The statement deletes the admitted jobs from job_queue itself, one DELETE for the
	// batch. sqlSkipQueueTrigger, sent before it in the same transaction, keeps the row
	// trigger jobs_sync_queue (migration 25) from calling its function for each of them.
	sqlAdmitRuns = `
WITH admitted AS (
    UPDATE jobs j SET status = 'running', run_count = j.run_count + 1, wait_reason = NULL, updated_at = now()
    WHERE j.id = ANY($1::uuid[]) AND j.created_at = ANY($2::timestamptz[]) AND j.status = 'queued'
    RETURNING j.id, j.run_count
), dequeued AS (
    DELETE FROM job_queue q USING admitted a WHERE q.job_id = a.id
), created AS (
    INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, gpu_model, namespace, pod_name,
                      gpu_hours_reserved)
    SELECT x.job_id, x.created_at, a.run_count, x.milli, NULLIF(x.model, ''), x.ns,
           x.pod_prefix || a.run_count, x.hours
    FROM unnest($1::uuid[], $2::timestamptz[], $3::int[], $4::text[], $5::text[], $6::text[],
                $7::numeric[]) AS x(job_id, created_at, milli, model, ns, pod_prefix, hours)
    JOIN admitted a ON a.id = x.job_id
    RETURNING job_id, id, run_number
)
SELECT coalesce(array_agg(job_id), '{}'), coalesce(array_agg(id), '{}'), coalesce(array_agg(run_number), '{}'),
       admission_guard('admitted jobs', count(*), cardinality($1::uuid[]))
FROM created`

	// SET LOCAL lasts until the dequeue's transaction ends, and that transaction moves jobs
	// to running only in sqlAdmitRuns.
	sqlSkipQueueTrigger = `SET LOCAL schedulerd.dequeue = on`

	// Quotas and models are locked in key order before they are updated, so that two
	// dequeues cannot deadlock on them.
	sqlLockQuotaKeys = `SELECT 1 FROM quotas WHERE project_id = ANY($1) ORDER BY project_id FOR UPDATE`

	// A quota admits only within its budget period, from midnight UTC of period_start to
	// midnight UTC of period_end.
	sqlAdmitQuotas = `
WITH updated AS (
    UPDATE quotas u
    SET current_concurrent = u.current_concurrent + d.jobs, gpu_hours_reserved = u.gpu_hours_reserved + d.hours
    FROM (SELECT project_id, count(*) AS jobs, sum(hours) AS hours
          FROM unnest($1::text[], $2::numeric[]) AS x(project_id, hours) GROUP BY project_id) d
    WHERE u.project_id = d.project_id AND u.drained_at IS NULL
      AND u.current_concurrent + d.jobs <= u.max_concurrent_jobs
      AND u.gpu_hours_used + u.gpu_hours_reserved + d.hours <= u.gpu_hours_budget
      AND u.period_start <= (now() AT TIME ZONE 'UTC')::date
      AND u.period_end > (now() AT TIME ZONE 'UTC')::date
    RETURNING 1
)
SELECT admission_guard('quotas', count(*), $3) FROM updated`

	sqlLockModelKeys = `SELECT 1 FROM gpu_models WHERE model = ANY($1) ORDER BY model FOR UPDATE`

	// Besides free capacity, the largest node must still hold the largest pod placed on the
	// model, in GPUs, CPU and memory.
	sqlAdmitModels = `
WITH updated AS (
    UPDATE gpu_models m SET allocated_milli = m.allocated_milli + d.milli
    FROM (SELECT model, sum(milli) AS milli, max(milli) AS largest, max(cpu) AS cpu, max(memory) AS memory
          FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS x(model, milli, cpu, memory)
          GROUP BY model) d
    WHERE m.model = d.model AND m.allocated_milli + d.milli <= m.capacity_milli
      AND m.largest_node_milli >= d.largest AND m.largest_node_cpu_milli >= d.cpu
      AND m.largest_node_memory_mib >= d.memory
    RETURNING 1
)
SELECT admission_guard('GPU models', count(*), $5) FROM updated`
)

// apply writes decisions and refusals and commits, in one round trip, and returns the runs
// it created, in decision order. The shared quota and model rows come last, so that they
// stay locked only from their update to the COMMIT that follows in the same batch.
func apply(ctx context.Context, conn *pgx.Conn, decisions []Decision, refusals []Refusal) ([]Admission, error) {
	batch := &pgx.Batch{}
	admissions := queueAdmitRuns(batch, decisions)
	queueWaitReasons(batch, refusals)
	quotas := queueAdmitQuotas(batch, decisions)
	models := queueAdmitModels(batch, decisions)
	batch.Queue("COMMIT")
	results := conn.SendBatch(ctx, batch)
	defer results.Close()

	if len(decisions) > 0 {
		if err := readRuns(results, admissions); err != nil {
			return nil, err
		}
	}
	if len(refusals) > 0 {
		if _, err := results.Exec(); err != nil {
			return nil, fmt.Errorf("store wait reasons: %w", err)
		}
	}
	if err := readGuard(results, "quotas", quotas); err != nil {
		return nil, err
	}
	if err := readGuard(results, "GPU models", models); err != nil {
		return nil, err
	}
	tag, err := results.Exec()
	if err != nil {
		return nil, fmt.Errorf("commit dequeue: %w", err)
	}
	if tag.String() != "COMMIT" {
		return nil, fmt.Errorf("commit dequeue: the server rolled back (command tag %q)", tag.String())
	}
	return admissions, results.Close()
}

// queueAdmitRuns queues sqlAdmitRuns and returns the admissions it will fill in.
func queueAdmitRuns(batch *pgx.Batch, decisions []Decision) []Admission {
	n := len(decisions)
	if n == 0 {
		return nil
	}
	admissions := make([]Admission, n)
	ids, created := make([]uuid.UUID, n), make([]time.Time, n)
	milli, hours := make([]int, n), make([]float64, n)
	models, namespaces, prefixes := make([]string, n), make([]string, n), make([]string, n)
	for i, d := range decisions {
		c := d.Candidate
		admissions[i] = Admission{Job: c.Ref(), ProjectID: c.ProjectID, Namespace: c.Namespace,
			GPUModel: d.GPUModel, GPUMilli: c.GPUMilli, GPUHoursReserved: d.GPUHoursReserved}
		ids[i], created[i], milli[i], hours[i] = c.JobID, c.JobCreatedAt, c.GPUMilli, d.GPUHoursReserved
		models[i], namespaces[i], prefixes[i] = d.GPUModel, c.Namespace, podNamePrefix(c.JobID)
	}
	batch.Queue(sqlSkipQueueTrigger)
	batch.Queue(sqlAdmitRuns, uuidArray(ids), created, milli, models, namespaces, prefixes, hours)
	return admissions
}

// readRuns reads the results of sqlSkipQueueTrigger and sqlAdmitRuns, and fills admissions
// with the run ids, numbers and pod names the database assigned.
func readRuns(results pgx.BatchResults, admissions []Admission) error {
	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("set schedulerd.dequeue: %w", err)
	}
	var scannedJobs, scannedRuns []pgtype.UUID
	var numbers []int
	if err := results.QueryRow().Scan(&scannedJobs, &scannedRuns, &numbers, nil); err != nil {
		return fmt.Errorf("admit jobs: %w", guardError(err))
	}
	jobIDs, runIDs := fromUUIDArray(scannedJobs), fromUUIDArray(scannedRuns)
	runs := make(map[uuid.UUID]int, len(jobIDs))
	for i, id := range jobIDs {
		runs[id] = i
	}
	for i := range admissions {
		r, ok := runs[admissions[i].Job.ID]
		if !ok {
			return fmt.Errorf("admit jobs: job %s got no run", admissions[i].Job.ID)
		}
		admissions[i].RunID, admissions[i].RunNumber = runIDs[r], numbers[r]
		admissions[i].PodName = PodName(admissions[i].Job.ID, numbers[r])
	}
	return nil
}

func queueWaitReasons(batch *pgx.Batch, refusals []Refusal) {
	if len(refusals) == 0 {
		return
	}
	ids := make([]uuid.UUID, len(refusals))
	created := make([]time.Time, len(refusals))
	reasons := make([]string, len(refusals))
	for i, r := range refusals {
		ids[i], created[i], reasons[i] = r.Job.ID, r.Job.CreatedAt, r.Reason
	}
	batch.Queue(sqlSetWaitReasons, uuidArray(ids), created, reasons)
}

// queueAdmitQuotas queues the lock and the guarded update of the decisions' quotas and
// reports whether it queued them.
func queueAdmitQuotas(batch *pgx.Batch, decisions []Decision) bool {
	if len(decisions) == 0 {
		return false
	}
	projects := make([]string, len(decisions))
	hours := make([]float64, len(decisions))
	for i, d := range decisions {
		projects[i], hours[i] = d.Candidate.ProjectID, d.GPUHoursReserved
	}
	distinct := candidateProjects(decisionCandidates(decisions))
	batch.Queue(sqlLockQuotaKeys, distinct)
	batch.Queue(sqlAdmitQuotas, projects, hours, len(distinct))
	return true
}

// queueAdmitModels is queueAdmitQuotas for the GPU models of the decisions.
func queueAdmitModels(batch *pgx.Batch, decisions []Decision) bool {
	var models []string
	var milli, cpu, memory []int64
	distinct := map[string]bool{}
	for _, d := range decisions {
		if d.GPUModel == "" {
			continue
		}
		models = append(models, d.GPUModel)
		milli = append(milli, int64(d.Candidate.GPUMilli))
		cpu, memory = append(cpu, d.Candidate.CPUMilli), append(memory, d.Candidate.MemoryMiB)
		distinct[d.GPUModel] = true
	}
	if len(models) == 0 {
		return false
	}
	keys := make([]string, 0, len(distinct))
	for m := range distinct {
		keys = append(keys, m)
	}
	batch.Queue(sqlLockModelKeys, keys)
	batch.Queue(sqlAdmitModels, models, milli, cpu, memory, len(distinct))
	return true
}

// readGuard reads the lock and the guarded update that queueAdmitQuotas or
// queueAdmitModels queued, when queued is set.
func readGuard(results pgx.BatchResults, table string, queued bool) error {
	if !queued {
		return nil
	}
	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("lock %s: %w", table, err)
	}
	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("admit to %s: %w", table, guardError(err))
	}
	return nil
}

// guardError turns the SD003 error of a failed admission_guard into errAdmissionConflict.
func guardError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "SD003" {
		return fmt.Errorf("%s: %w", pgErr.Message, errAdmissionConflict)
	}
	return err
}

func decisionCandidates(decisions []Decision) []Candidate {
	candidates := make([]Candidate, len(decisions))
	for i, d := range decisions {
		candidates[i] = d.Candidate
	}
	return candidates
}
