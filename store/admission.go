package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Candidate is a queued job that passed the quota filter of a dequeue.
type Candidate struct {
	JobID             uuid.UUID `db:"job_id"`
	JobCreatedAt      time.Time `db:"job_created_at"`
	ProjectID         string    `db:"project_id"`
	Priority          int       `db:"priority"`
	GPUMilli          int       `db:"gpu_milli"`
	GPUModels         []string  `db:"gpu_models"`
	MaxRuntimeSeconds int       `db:"max_runtime_seconds"`
	QueuedAt          time.Time `db:"queued_at"`
	CPUMilli          int64     `db:"cpu_milli"`
	MemoryMiB         int64     `db:"memory_mib"`
	Namespace         string    `db:"k8s_namespace"`
}

// Ref returns the candidate's job key.
func (c Candidate) Ref() JobRef { return JobRef{ID: c.JobID, CreatedAt: c.JobCreatedAt} }

// ModelCapacity is the GPU capacity of one model, in thousandths of a GPU.
type ModelCapacity struct {
	Model            string `db:"model"`
	CapacityMilli    int64  `db:"capacity_milli"`
	AllocatedMilli   int64  `db:"allocated_milli"`
	Nodes            int    `db:"nodes"`
	LargestNodeMilli int64  `db:"largest_node_milli"`
	// LargestNodeCPUMilli and LargestNodeMemoryMiB are the most one node of the model
	// offers; they may come from different nodes.
	LargestNodeCPUMilli  int64 `db:"largest_node_cpu_milli"`
	LargestNodeMemoryMiB int64 `db:"largest_node_memory_mib"`
	// NodeShapes are the sizes of the model's nodes that no other node covers in every
	// resource (MaximalShapes), so that Holds can ask whether one real node fits a pod.
	NodeShapes []NodeShape `db:"node_shapes"`
}

// NodeShape is the allocatable size of one node, or the request of one pod.
type NodeShape struct {
	GPUMilli  int64 `json:"gpu_milli"`
	CPUMilli  int64 `json:"cpu_milli"`
	MemoryMiB int64 `json:"memory_mib"`
}

// Covers reports whether an empty node of size s can hold a pod of size pod.
func (s NodeShape) Covers(pod NodeShape) bool {
	return s.GPUMilli >= pod.GPUMilli && s.CPUMilli >= pod.CPUMilli && s.MemoryMiB >= pod.MemoryMiB
}

// Holds reports whether one node of the model, while empty, could hold a pod of gpuMilli
// thousandths of a GPU, cpuMilli thousandths of a core and memoryMiB of memory.
func (m ModelCapacity) Holds(gpuMilli int, cpuMilli, memoryMiB int64) bool {
	if m.Nodes == 0 {
		return false
	}
	pod := NodeShape{GPUMilli: int64(gpuMilli), CPUMilli: cpuMilli, MemoryMiB: memoryMiB}
	return slices.ContainsFunc(m.Shapes(), func(s NodeShape) bool { return s.Covers(pod) })
}

// Shapes returns NodeShapes, or for a row without them one shape of the largest values.
//
// NOTE: a row from before migration 010 has no shapes until the dispatcher's next count,
// and its largest values may come from different nodes, so that shape may match no node.
func (m ModelCapacity) Shapes() []NodeShape {
	if len(m.NodeShapes) > 0 {
		return m.NodeShapes
	}
	return []NodeShape{{GPUMilli: m.LargestNodeMilli, CPUMilli: m.LargestNodeCPUMilli,
		MemoryMiB: m.LargestNodeMemoryMiB}}
}

// MaximalShapes returns the shapes that no other shape covers, each once, largest GPU
// count first. A model's nodes come in a few sizes, so the result is short even for
// thousands of nodes.
func MaximalShapes(shapes []NodeShape) []NodeShape {
	sorted := slices.Clone(shapes)
	slices.SortFunc(sorted, func(a, b NodeShape) int {
		return cmp.Or(cmp.Compare(b.GPUMilli, a.GPUMilli), cmp.Compare(b.CPUMilli, a.CPUMilli),
			cmp.Compare(b.MemoryMiB, a.MemoryMiB))
	})
	var maximal []NodeShape
	for _, s := range sorted {
		// A shape that covers s sorts before it, so the kept ones are all there is to check.
		covered := slices.ContainsFunc(maximal, func(m NodeShape) bool { return m.Covers(s) })
		if !covered {
			maximal = append(maximal, s)
		}
	}
	return maximal
}

// modelColumns are the columns of gpu_models that ModelCapacity holds.
const modelColumns = `model, capacity_milli, allocated_milli, nodes, largest_node_milli,
    largest_node_cpu_milli, largest_node_memory_mib, node_shapes`

// Snapshot is what a dequeue decides on. Its candidates are locked until the dequeue ends.
// Its quota and model rows are read without locks first, so the guarded writes reject a
// decision that another writer has invalidated since. The retry reads them locked.
type Snapshot struct {
	Now        time.Time
	Candidates []Candidate
	Quotas     map[string]Quota
	Models     []ModelCapacity
}

// Decision admits one candidate, on a GPU model (empty for a job without GPUs).
type Decision struct {
	Candidate        Candidate
	GPUModel         string
	GPUHoursReserved float64
}

// Refusal records why a candidate stays queued.
type Refusal struct {
	Job    JobRef
	Reason string
}

// Admission is an admitted job's new run, ready for the dispatcher to create its pod.
type Admission struct {
	Job              JobRef
	ProjectID        string
	Namespace        string
	RunID            uuid.UUID
	RunNumber        int
	PodName          string
	GPUModel         string
	GPUMilli         int
	GPUHoursReserved float64
}

// Decider chooses, from a snapshot, which candidates to admit and why the others wait.
type Decider func(Snapshot) ([]Decision, []Refusal)

// PodName derives a run's pod name from its job and run number, so that a dispatcher
// retrying after a crash finds the pod it already created instead of creating another.
func PodName(jobID uuid.UUID, runNumber int) string {
	return podNamePrefix(jobID) + strconv.Itoa(runNumber)
}

// podNamePrefix is the pod name of a run without its number, for the admission statement
// that learns the number from the database.
func podNamePrefix(jobID uuid.UUID) string { return "job-" + jobID.String() + "-r" }

// sqlReservation is the reservation of the queued job q in GPU-hours, the value
// jobspec.ReservedGPUHours computes and admission adds to the quota: GPU thousandths times
// max_runtime_seconds, rounded half away from zero to the 4 decimals of the reservation
// columns. Comparing the unrounded product would leave out a job that the API accepted and
// the policy would admit.
const sqlReservation = `round(q.gpu_milli::numeric * q.max_runtime_seconds / 3600000, 4)`

const sqlLockQuotas = `SELECT ` + quotaColumns + ` FROM quotas WHERE project_id = ANY($1)
ORDER BY project_id FOR UPDATE`

const sqlReadModels = `SELECT ` + modelColumns + ` FROM gpu_models ORDER BY model`

// A null $1 locks every model: some candidate accepts any model.
const sqlLockModels = `SELECT ` + modelColumns + ` FROM gpu_models
WHERE $1::text[] IS NULL OR model = ANY($1) ORDER BY model FOR UPDATE`

// errAdmissionConflict reports that a guard of the admission statements failed because a
// job, quota or GPU model changed after the dequeue read it.
var errAdmissionConflict = errors.New("a job, quota or GPU model changed since it was read")

// Dequeue runs one admission transaction: it locks the candidates of window, calls decide on
// them with their quota and model rows, and applies the decisions with guarded statements.
// It returns the new runs. When no candidate is found it returns nil without calling decide.
// It calls BeginDequeue, Decide and Commit in turn.
func (s *Store) Dequeue(ctx context.Context, window CandidateWindow, decide Decider) ([]Admission, error) {
	d, err := s.BeginDequeue(ctx, window)
	if err != nil {
		return nil, err
	}
	d.Decide(decide)
	return d.Commit(ctx)
}

// OpenDequeue is a dequeue transaction between its reads and its writes. It holds a pooled
// connection and the locks on its candidates until Commit or Close.
//
// The quota and model rows are first read without locks, and the guarded statements lock
// them at the end, in the round trip that commits, so that concurrent dequeues hold these
// shared rows while the server finishes one batch instead of for the whole transaction.
// When a guard finds that a row changed in between, the transaction rolls back and the
// dequeue runs again with the rows locked before deciding. There a failed guard means the
// decision broke a rule, and Commit's error states it.
//
// A dequeue takes two round trips: BEGIN with the reads, then the writes with COMMIT. The
// retry on locked rows adds one for the locks, and the first use of a connection one to
// prepare the statements. It drives BEGIN and COMMIT itself instead of using pgx.Tx, whose
// Begin and Commit would each cost a round trip of their own.
type OpenDequeue struct {
	conn      *pgxpool.Conn
	window    CandidateWindow
	snap      Snapshot
	decide    Decider
	decisions []Decision
	refusals  []Refusal
}

// BeginDequeue begins a dequeue transaction and reads its snapshot in one round trip: BEGIN,
// the candidates of window (locked, skipping rows that other dequeues hold), their quotas and
// the GPU models. The caller must call Commit or Close.
func (s *Store) BeginDequeue(ctx context.Context, window CandidateWindow) (*OpenDequeue, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap(err, "dequeue")
	}
	d := &OpenDequeue{conn: conn, window: window}
	if d.snap, err = readSnapshot(ctx, conn.Conn(), window, false); err != nil {
		d.Close(ctx)
		return nil, wrap(err, "dequeue")
	}
	return d, nil
}

// Snapshot returns what the dequeue read.
func (d *OpenDequeue) Snapshot() Snapshot { return d.snap }

// Decide calls decide on the snapshot, unless it holds no candidate, and keeps the result
// for Commit. Commit calls decide again if it has to read the rows again, locked.
func (d *OpenDequeue) Decide(decide Decider) ([]Decision, []Refusal) {
	d.decide = decide
	if len(d.snap.Candidates) > 0 {
		d.decisions, d.refusals = decide(d.snap)
	}
	return d.decisions, d.refusals
}

// Commit writes the decisions and refusals and commits, and returns the new runs in
// decision order. It always releases the connection; a failed dequeue is rolled back.
//
// NOTE: the COMMIT travels with the writes, so when ctx ends while the server runs them,
// the outcome is unknown. The pool's connections use pgx's default context handling
// (pgx v5.13: a deadline on the socket, no cancel request), so the server runs the writes
// to their end. Writes that wait for a quota or model lock commit once it frees, after
// the daemon reported a failed dequeue, and the dispatcher's next resync creates the pods
// of those runs.
func (d *OpenDequeue) Commit(ctx context.Context) ([]Admission, error) {
	defer d.Close(ctx)
	conn := d.conn.Conn()
	if len(d.snap.Candidates) == 0 {
		_, err := conn.Exec(ctx, "COMMIT")
		return nil, wrap(err, "dequeue")
	}

	admissions, err := apply(ctx, conn, d.decisions, d.refusals)
	if errors.Is(err, errAdmissionConflict) {
		d.rollback(ctx)
		admissions, err = dequeueOn(ctx, conn, d.window, d.decide, true)
	}
	return admissions, wrap(err, "dequeue")
}

// Close rolls back a transaction that is still open and releases the connection. It does
// nothing after Commit.
func (d *OpenDequeue) Close(ctx context.Context) {
	if d.conn == nil {
		return
	}
	d.rollback(ctx)
	// The pool closes a connection that comes back inside a transaction, so a failed
	// ROLLBACK leaves nothing behind.
	d.conn.Release()
	d.conn = nil
}

// rollback ends a transaction that is still open on the dequeue's connection.
func (d *OpenDequeue) rollback(ctx context.Context) {
	if d.conn.Conn().PgConn().TxStatus() == 'I' {
		return
	}
	rollbackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, _ = d.conn.Exec(rollbackCtx, "ROLLBACK")
}

// dequeueOn runs one dequeue transaction on conn. When it returns an error, the
// transaction may still be open, and Commit's Close rolls it back.
func dequeueOn(ctx context.Context, conn *pgx.Conn, window CandidateWindow, decide Decider, lock bool) ([]Admission, error) {
	snap, err := readSnapshot(ctx, conn, window, lock)
	if err != nil {
		return nil, err
	}
	if len(snap.Candidates) == 0 {
		_, err := conn.Exec(ctx, "COMMIT")
		return nil, err
	}

	decisions, refusals := decide(snap)
	admissions, err := apply(ctx, conn, decisions, refusals)
	if lock && errors.Is(err, errAdmissionConflict) {
		// %v, not %w: this is a bug in the decision, not a conflict to retry.
		return nil, fmt.Errorf("guard failed on locked rows, so the decision broke a rule: %v", err)
	}
	return admissions, err
}

// readSnapshot begins the transaction, locks the candidates and reads their quotas and the
// GPU models in one round trip. With lock set it then locks the quotas and the models the
// candidates may use, in key order so that two dequeues cannot deadlock, and returns the
// locked values.
func readSnapshot(ctx context.Context, conn *pgx.Conn, window CandidateWindow, lock bool) (Snapshot, error) {
	var snap Snapshot
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	query, args := window.query()
	batch.Queue(query, args...)
	batch.Queue(sqlReadModels)
	results := conn.SendBatch(ctx, batch)
	defer results.Close()

	if _, err := results.Exec(); err != nil {
		return snap, fmt.Errorf("begin: %w", err)
	}
	rows, err := results.Query()
	if err != nil {
		return snap, fmt.Errorf("read candidates: %w", err)
	}
	candidates, err := collectAll[candidateRow](rows)
	if err != nil {
		return snap, fmt.Errorf("read candidates: %w", err)
	}
	if rows, err = results.Query(); err != nil {
		return snap, fmt.Errorf("read GPU models: %w", err)
	}
	if snap.Models, err = collectAll[ModelCapacity](rows); err != nil {
		return snap, fmt.Errorf("read GPU models: %w", err)
	}
	if err := results.Close(); err != nil {
		return snap, err
	}

	snap.Candidates = make([]Candidate, len(candidates))
	snap.Quotas = make(map[string]Quota)
	for i, c := range candidates {
		snap.Now, snap.Candidates[i], snap.Quotas[c.ProjectID] = c.Now, c.Candidate, c.quota()
	}
	if !lock || len(candidates) == 0 {
		return snap, nil
	}
	return lockSnapshot(ctx, conn, snap)
}

// lockSnapshot replaces the snapshot's quotas and models with their locked rows.
func lockSnapshot(ctx context.Context, conn *pgx.Conn, snap Snapshot) (Snapshot, error) {
	batch := &pgx.Batch{}
	batch.Queue(sqlLockQuotas, candidateProjects(snap.Candidates))
	batch.Queue(sqlLockModels, candidateModels(snap.Candidates))
	results := conn.SendBatch(ctx, batch)
	defer results.Close()

	rows, err := results.Query()
	if err != nil {
		return snap, fmt.Errorf("lock quotas: %w", err)
	}
	quotas, err := collectAll[Quota](rows)
	if err != nil {
		return snap, fmt.Errorf("lock quotas: %w", err)
	}
	snap.Quotas = make(map[string]Quota, len(quotas))
	for _, q := range quotas {
		snap.Quotas[q.ProjectID] = q
	}
	if rows, err = results.Query(); err != nil {
		return snap, fmt.Errorf("lock GPU models: %w", err)
	}
	if snap.Models, err = collectAll[ModelCapacity](rows); err != nil {
		return snap, fmt.Errorf("lock GPU models: %w", err)
	}
	return snap, results.Close()
}

func candidateProjects(candidates []Candidate) []string {
	seen := map[string]bool{}
	var projects []string
	for _, c := range candidates {
		if !seen[c.ProjectID] {
			seen[c.ProjectID] = true
			projects = append(projects, c.ProjectID)
		}
	}
	sort.Strings(projects)
	return projects
}

// candidateModels returns the GPU models the candidates may be placed on, or nil when one
// of them accepts any model.
func candidateModels(candidates []Candidate) []string {
	seen := map[string]bool{}
	models := []string{}
	for _, c := range candidates {
		if c.GPUMilli == 0 {
			continue
		}
		if len(c.GPUModels) == 0 {
			return nil
		}
		for _, m := range c.GPUModels {
			if !seen[m] {
				seen[m] = true
				models = append(models, m)
			}
		}
	}
	return models
}

const sqlSetWaitReasons = `
UPDATE jobs j SET wait_reason = r.reason, updated_at = now()
FROM unnest($1::uuid[], $2::timestamptz[], $3::text[]) AS r(id, created_at, reason)
WHERE j.id = r.id AND j.created_at = r.created_at AND j.status = 'queued'
  AND j.wait_reason IS DISTINCT FROM r.reason`

// QueueChannel is the PostgreSQL notification channel that wakes the scheduler: it
// announces newly queued jobs and quota changes that may let held jobs start.
const QueueChannel = "schedulerd_queue"

// wakeScheduler notifies QueueChannel once tx commits, so the scheduler dequeues at once
// instead of at its next poll.
func wakeScheduler(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, QueueChannel)
	if err != nil {
		return fmt.Errorf("wake the scheduler: %w", err)
	}
	return nil
}

const sqlSyncCapacity = `
WITH seen AS (
    SELECT x.model, x.capacity_milli, x.nodes, x.largest_node_milli, x.largest_node_cpu_milli,
           x.largest_node_memory_mib, x.node_shapes::jsonb AS node_shapes
    FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::bigint[], $7::text[])
        AS x(model, capacity_milli, nodes, largest_node_milli, largest_node_cpu_milli, largest_node_memory_mib,
             node_shapes)
), upserted AS (
    INSERT INTO gpu_models (model, capacity_milli, nodes, largest_node_milli, largest_node_cpu_milli,
                            largest_node_memory_mib, node_shapes, updated_at)
    SELECT *, now() FROM seen
    ON CONFLICT (model) DO UPDATE SET capacity_milli = EXCLUDED.capacity_milli,
        nodes = EXCLUDED.nodes, largest_node_milli = EXCLUDED.largest_node_milli,
        largest_node_cpu_milli = EXCLUDED.largest_node_cpu_milli,
        largest_node_memory_mib = EXCLUDED.largest_node_memory_mib, node_shapes = EXCLUDED.node_shapes,
        updated_at = now()
    WHERE (gpu_models.capacity_milli, gpu_models.nodes, gpu_models.largest_node_milli,
           gpu_models.largest_node_cpu_milli, gpu_models.largest_node_memory_mib, gpu_models.node_shapes)
        IS DISTINCT FROM (EXCLUDED.capacity_milli, EXCLUDED.nodes, EXCLUDED.largest_node_milli,
                          EXCLUDED.largest_node_cpu_milli, EXCLUDED.largest_node_memory_mib,
                          EXCLUDED.node_shapes)
)
UPDATE gpu_models SET capacity_milli = 0, nodes = 0, largest_node_milli = 0, largest_node_cpu_milli = 0,
    largest_node_memory_mib = 0, node_shapes = '[]', updated_at = now()
WHERE model NOT IN (SELECT model FROM seen) AND nodes > 0`

// SyncGPUCapacity stores the schedulable GPU capacity by model as the dispatcher counts it
// from the nodes. Models missing from capacity have lost every node and drop to zero.
func (s *Store) SyncGPUCapacity(ctx context.Context, capacity []ModelCapacity) error {
	n := len(capacity)
	models, nodes, shapes := make([]string, n), make([]int, n), make([]string, n)
	milli, largest, cpu, memory := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	for i, c := range capacity {
		models[i], nodes[i], milli[i], largest[i] = c.Model, c.Nodes, c.CapacityMilli, c.LargestNodeMilli
		cpu[i], memory[i] = c.LargestNodeCPUMilli, c.LargestNodeMemoryMiB
		encoded, err := json.Marshal(nonNil(c.NodeShapes))
		if err != nil {
			return fmt.Errorf("store GPU capacity: encode the node shapes of %s: %w", c.Model, err)
		}
		shapes[i] = string(encoded)
	}
	_, err := s.pool.Exec(ctx, sqlSyncCapacity, models, milli, nodes, largest, cpu, memory, shapes)
	return wrap(err, "store GPU capacity")
}

// nonNil returns an empty slice for nil, so that it encodes as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ListGPUModels reads the capacity and allocation of every GPU model.
func (s *Store) ListGPUModels(ctx context.Context) ([]ModelCapacity, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+modelColumns+` FROM gpu_models ORDER BY model`)
	if err != nil {
		return nil, wrap(err, "list GPU models")
	}
	models, err := collectAll[ModelCapacity](rows)
	return models, wrap(err, "list GPU models")
}

// The reasons for jobs the candidate query leaves out: their project is drained, outside
// its budget period, full or out of budget, or no allowed model could run them or has room
// for them. A starving job that exceeds what is left of the budget but not the budget minus
// the used hours gets no reason here: it stays a candidate, and the dequeue gives it one.
// Only rows whose reason changes are written. The parameters are the WaitReasons strings in
// field order, then the starvation bound in microseconds, then BudgetTooSmall.
const sqlExplainWaits = `
UPDATE jobs j SET wait_reason = w.reason, updated_at = now()
FROM (
    SELECT q.job_id, q.job_created_at, CASE
        WHEN u.project_id IS NULL THEN 'project has no quota'
        WHEN u.drained_at IS NOT NULL THEN $1
        WHEN u.period_end <= (now() AT TIME ZONE 'UTC')::date THEN $4
        WHEN u.period_start > (now() AT TIME ZONE 'UTC')::date THEN $5
        WHEN u.current_concurrent >= u.max_concurrent_jobs THEN $2
        WHEN u.gpu_hours_used + u.gpu_hours_reserved + ` + sqlReservation + ` > u.gpu_hours_budget THEN CASE
            WHEN u.gpu_hours_used + ` + sqlReservation + ` > u.gpu_hours_budget THEN $10
            WHEN $9::bigint > 0 AND q.queued_at <= now() - $9::bigint * interval '1 microsecond' THEN NULL
            ELSE $3 END
        WHEN q.gpu_milli = 0 THEN NULL
        WHEN NOT c.known THEN $6
        WHEN NOT c.fits THEN $7
        WHEN NOT c.room AND q.queued_at > now() - $9::bigint * interval '1 microsecond' THEN $8
        END AS reason
    FROM job_queue q
    LEFT JOIN quotas u ON u.project_id = q.project_id
    CROSS JOIN LATERAL (
        SELECT coalesce(bool_or(m.nodes > 0), false) AS known,
               coalesce(bool_or(` + sqlModelFits + `), false) AS fits,
               coalesce(bool_or(` + sqlModelFits + `
                                AND m.capacity_milli - m.allocated_milli >= q.gpu_milli), false) AS room
        FROM gpu_models m
        WHERE cardinality(q.gpu_models) = 0 OR m.model = ANY (q.gpu_models)
    ) c
) w
WHERE w.reason IS NOT NULL AND j.id = w.job_id AND j.created_at = w.job_created_at
  AND j.status = 'queued' AND j.wait_reason IS DISTINCT FROM w.reason`

// WaitReasons are the words ExplainWaits stores for each cause, and the starvation bound
// after which a job without room or budget stays a candidate (CandidateWindow.StarvationBound).
type WaitReasons struct {
	Drained, Concurrency, Budget, PeriodEnded, PeriodNotStarted string
	NoModel, TooLarge, NoCapacity                               string
	StarvationBound                                             time.Duration
	// BudgetTooSmall is the reason of a job that reserves more than the budget minus the
	// hours used, and Budget that of the other jobs that exceed what is left. When it is
	// empty, those jobs get Budget too.
	BudgetTooSmall string
}

// ExplainWaits stores, on every queued job that the candidate query leaves out, why it
// waits: its project's quota, or no allowed model that could run it or has room for it. It
// returns how many jobs got a new reason.
func (s *Store) ExplainWaits(ctx context.Context, reasons WaitReasons) (int64, error) {
	if reasons.BudgetTooSmall == "" {
		reasons.BudgetTooSmall = reasons.Budget
	}
	tag, err := s.pool.Exec(ctx, sqlExplainWaits, reasons.Drained, reasons.Concurrency, reasons.Budget,
		reasons.PeriodEnded, reasons.PeriodNotStarted, reasons.NoModel, reasons.TooLarge, reasons.NoCapacity,
		reasons.StarvationBound.Microseconds(), reasons.BudgetTooSmall)
	if err != nil {
		return 0, wrap(err, "explain waiting jobs")
	}
	return tag.RowsAffected(), nil
}
