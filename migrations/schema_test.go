package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// newSchema returns a connection to a migrated database with one project, "vision", and the
// partitions of January to March 2025 on top of those the migration made.
func newSchema(t *testing.T) *pgx.Conn {
	t.Helper()
	conn := connect(t, pgtest.NewDatabase(t))
	mustExec(t, conn, `INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('vision', 'acme', 'team-vision')`)
	mustExec(t, conn, `SELECT ensure_job_partitions('2025-01-15 12:00+00', 2)`)
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// sqlState returns the SQLSTATE of err, or "" when err is not from PostgreSQL.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

func expectState(t *testing.T, err error, want string) {
	t.Helper()
	if got := sqlState(err); got != want {
		t.Errorf("SQLSTATE %q (error %v), want %q", got, err, want)
	}
}

// insertJob inserts a job created at createdAt in the given status and returns its id.
func insertJob(t *testing.T, conn *pgx.Conn, createdAt, status string) string {
	t.Helper()
	var id string
	err := conn.QueryRow(context.Background(), `
		INSERT INTO jobs (created_at, project_id, org_id, job_type, status, config_json,
		                  max_runtime_seconds, gpu_milli)
		VALUES ($1, 'vision', 'acme', 'fine_tune', $2, '{"epochs": 1}', 3600, 1000)
		RETURNING id`, createdAt, status).Scan(&id)
	if err != nil {
		t.Fatalf("insert job: %v", err)
	}
	return id
}

func insertKey(conn *pgx.Conn, jobID, createdAt, key string) error {
	_, err := conn.Exec(context.Background(), `
		INSERT INTO job_idempotency_keys (project_id, idempotency_key, job_id, job_created_at, request_sha256)
		VALUES ('vision', $1, $2, $3, sha256('request'::bytea))`, key, jobID, createdAt)
	return err
}

func TestIdempotencyKeyUniqueAcrossMonths(t *testing.T) {
	conn := newSchema(t)
	january := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	february := insertJob(t, conn, "2025-02-20 10:00+00", "queued")

	if err := insertKey(conn, january, "2025-01-20 10:00+00", "nightly-42"); err != nil {
		t.Fatalf("first key: %v", err)
	}
	err := insertKey(conn, february, "2025-02-20 10:00+00", "nightly-42")
	expectState(t, err, "23505")
}

func TestIdempotencyKeyScopedToProject(t *testing.T) {
	conn := newSchema(t)
	mustExec(t, conn, `INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('speech', 'acme', 'team-speech')`)
	visionJob := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	if err := insertKey(conn, visionJob, "2025-01-20 10:00+00", "nightly-42"); err != nil {
		t.Fatalf("vision key: %v", err)
	}

	var speechJob string
	err := conn.QueryRow(context.Background(), `
		INSERT INTO jobs (created_at, project_id, org_id, job_type, config_json, max_runtime_seconds)
		VALUES ('2025-01-21 10:00+00', 'speech', 'acme', 'retrain', '{}', 60) RETURNING id`).Scan(&speechJob)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(context.Background(), `
		INSERT INTO job_idempotency_keys (project_id, idempotency_key, job_id, job_created_at, request_sha256)
		VALUES ('speech', 'nightly-42', $1, '2025-01-21 10:00+00', sha256('other'::bytea))`, speechJob)
	if err != nil {
		t.Errorf("same key in another project: %v, want it accepted", err)
	}
}

func TestRunNeedsExistingJob(t *testing.T) {
	conn := newSchema(t)
	_, err := conn.Exec(context.Background(), `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES (gen_random_uuid(), '2025-01-20 10:00+00', 1, 1000, 'p')`)
	expectState(t, err, "23503")
}

func TestJobWithRunsCannotVanish(t *testing.T) {
	conn := newSchema(t)
	created := "2025-01-20 10:00+00"
	job := insertJob(t, conn, created, "queued")
	mustExec(t, conn, `INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, $2, 1, 1000, 'p')`, job, created)

	_, err := conn.Exec(context.Background(), `DELETE FROM jobs WHERE id = $1`, job)
	expectState(t, err, "23503")

	_, err = conn.Exec(context.Background(), `DROP TABLE jobs_2025_01`)
	if err == nil {
		t.Error("dropping the partition that holds a job with runs succeeded, want an error")
	}
	_, err = conn.Exec(context.Background(), `ALTER TABLE jobs DETACH PARTITION jobs_2025_01`)
	expectState(t, err, "23503")
}

func TestRunPointsAtJobInItsMonth(t *testing.T) {
	conn := newSchema(t)
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")

	// The same id with another month's created_at is another (missing) job.
	_, err := conn.Exec(context.Background(), `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, '2025-02-20 10:00+00', 1, 1000, 'p')`, job)
	expectState(t, err, "23503")
}

// scannedRelations returns the relation names of every scan node in an EXPLAIN plan, with
// the index each one uses ("" for a sequential scan).
func scannedRelations(t *testing.T, conn *pgx.Conn, query string) map[string]string {
	t.Helper()
	var raw []byte
	if err := conn.QueryRow(context.Background(), "EXPLAIN (FORMAT JSON) "+query).Scan(&raw); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal(raw, &plans); err != nil {
		t.Fatal(err)
	}

	found := map[string]string{}
	var walk func(node map[string]any)
	walk = func(node map[string]any) {
		if rel, ok := node["Relation Name"].(string); ok {
			index, _ := node["Index Name"].(string)
			found[rel] = index
		}
		children, _ := node["Plans"].([]any)
		for _, child := range children {
			walk(child.(map[string]any))
		}
	}
	walk(plans[0].Plan)
	return found
}

func TestRangeQueryPrunesPartitions(t *testing.T) {
	conn := newSchema(t)
	insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	insertJob(t, conn, "2025-02-20 10:00+00", "queued")
	insertJob(t, conn, "2025-03-20 10:00+00", "queued")

	got := scannedRelations(t, conn, `SELECT id FROM jobs
		WHERE created_at >= '2025-02-01 00:00+00' AND created_at < '2025-03-01 00:00+00'`)
	if len(got) != 1 {
		t.Errorf("plan scans %v, want only jobs_2025_02", got)
	}
	if _, ok := got["jobs_2025_02"]; !ok {
		t.Errorf("plan scans %v, want jobs_2025_02", got)
	}
}

func TestRangeQueryPrunesWhateverTimeZone(t *testing.T) {
	conn := newSchema(t)
	mustExec(t, conn, `SET TIME ZONE 'Pacific/Kiritimati'`)

	got := scannedRelations(t, conn, `SELECT id FROM jobs
		WHERE created_at >= '2025-02-01 00:00+00' AND created_at < '2025-03-01 00:00+00'`)
	if _, ok := got["jobs_2025_02"]; !ok || len(got) != 1 {
		t.Errorf("plan scans %v, want only jobs_2025_02", got)
	}
}

func TestQueueOrderIndexUsedInEveryPartition(t *testing.T) {
	conn := newSchema(t)
	// 2,000 jobs a month over three months, one in fifty queued, so that an index scan is
	// the cheapest plan as it is on a real table.
	for _, month := range []string{"2025-01", "2025-02", "2025-03"} {
		mustExec(t, conn, fmt.Sprintf(`
			INSERT INTO jobs (created_at, project_id, org_id, job_type, status, config_json,
			                  max_runtime_seconds, priority)
			SELECT '%s-01 00:00+00'::timestamptz + i * interval '1 minute', 'vision', 'acme',
			       'fine_tune', CASE WHEN i %% 50 = 0 THEN 'queued' ELSE 'submitted' END::job_status,
			       '{}', 60, i %% 10
			FROM generate_series(1, 2000) AS i`, month))
	}
	mustExec(t, conn, `ANALYZE jobs`)

	got := scannedRelations(t, conn, `SELECT id FROM jobs WHERE status = 'queued'
		ORDER BY priority DESC, created_at LIMIT 10`)

	var partitions []string
	rows, err := conn.Query(context.Background(),
		`SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'jobs'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	partitions, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range partitions {
		index, scanned := got[part]
		if !scanned {
			t.Errorf("partition %s not in the plan %v", part, got)
			continue
		}
		if !strings.HasPrefix(index, part+"_status_priority_created_at_idx") {
			t.Errorf("partition %s scanned with index %q, want %s_status_priority_created_at_idx", part, index, part)
		}
	}
}

func TestConfigImmutable(t *testing.T) {
	conn := newSchema(t)
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")

	_, err := conn.Exec(context.Background(), `UPDATE jobs SET config_json = '{"epochs": 2}' WHERE id = $1`, job)
	expectState(t, err, "SD002")

	_, err = conn.Exec(context.Background(), `UPDATE jobs SET tags = '{"team": "a"}' WHERE id = $1`, job)
	if err != nil {
		t.Errorf("changing tags: %v, want it allowed", err)
	}
}

// legalTransitions is the job status transition table as documented in docs/design/schema.md.
var legalTransitions = map[[2]string]bool{
	{"submitted", "queued"}: true, {"submitted", "cancelled"}: true, {"submitted", "failed"}: true,
	{"queued", "running"}: true, {"queued", "paused"}: true, {"queued", "cancelled"}: true,
	{"queued", "failed"}:  true,
	{"running", "queued"}: true, {"running", "paused"}: true, {"running", "completed"}: true,
	{"running", "failed"}: true, {"running", "cancelled"}: true, {"running", "eval_failed"}: true,
	{"paused", "queued"}: true, {"paused", "cancelled"}: true, {"paused", "completed"}: true,
	{"paused", "failed"}:         true,
	{"completed", "eval_failed"}: true,
}

// pathTo lists the legal steps from queued (or submitted) that reach each status.
var pathTo = map[string][]string{
	"submitted":   nil,
	"queued":      nil,
	"running":     {"running"},
	"paused":      {"paused"},
	"completed":   {"running", "completed"},
	"failed":      {"failed"},
	"cancelled":   {"cancelled"},
	"eval_failed": {"running", "eval_failed"},
}

func TestStatusTransitions(t *testing.T) {
	conn := newSchema(t)
	statuses := []string{"submitted", "queued", "running", "paused", "completed", "failed", "cancelled", "eval_failed"}

	for _, from := range statuses {
		for _, to := range statuses {
			if from == to {
				continue
			}
			initial := "queued"
			if from == "submitted" {
				initial = "submitted"
			}
			job := insertJob(t, conn, "2025-01-20 10:00+00", initial)
			for _, step := range pathTo[from] {
				mustExec(t, conn, `UPDATE jobs SET status = $2 WHERE id = $1`, job, step)
			}

			_, err := conn.Exec(context.Background(), `UPDATE jobs SET status = $2 WHERE id = $1`, job, to)
			if legalTransitions[[2]string{from, to}] {
				if err != nil {
					t.Errorf("%s -> %s: %v, want allowed", from, to, err)
				}
			} else if sqlState(err) != "SD001" {
				t.Errorf("%s -> %s: error %v, want SQLSTATE SD001", from, to, err)
			}
		}
	}
}

// The job update triggers keep updated_at current and check statuses and configs, but an
// admission (queued to running) and a wait reason, which set updated_at themselves, call
// none of their functions: they ran for every job a dequeue admits or refuses.
func TestJobUpdateTriggersSkipAdmission(t *testing.T) {
	conn := newSchema(t)
	ctx := context.Background()
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	mustExec(t, conn, `UPDATE jobs SET updated_at = '2025-01-20 10:00+00' WHERE id = $1`, job)

	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	mustExecTx(t, tx, `SET LOCAL track_functions = 'pl'`)
	calls := func() string {
		t.Helper()
		var got string
		err := tx.QueryRow(ctx, `
			SELECT string_agg(f || '=' || coalesce(pg_stat_get_xact_function_calls(f::regproc::oid), 0), ' ' ORDER BY f)
			FROM unnest(ARRAY['jobs_check_transition', 'jobs_reject_config_change', 'jobs_touch']) AS f`).Scan(&got)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	updatedAt := func() string {
		t.Helper()
		var at string
		if err := tx.QueryRow(ctx, `SELECT (updated_at = now())::text FROM jobs WHERE id = $1`, job).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}

	mustExecTx(t, tx, `UPDATE jobs SET wait_reason = 'no capacity', updated_at = now() WHERE id = $1`, job)
	// Each statement below starts from an older updated_at, as one in another transaction
	// would. Within one transaction now() does not move, so setting it twice changes nothing.
	mustExecTx(t, tx, `UPDATE jobs SET updated_at = '2025-01-20 10:00+00' WHERE id = $1`, job)
	mustExecTx(t, tx, `UPDATE jobs SET status = 'running', run_count = run_count + 1, wait_reason = NULL,
		updated_at = now() WHERE id = $1`, job)
	if got, want := calls(), "jobs_check_transition=0 jobs_reject_config_change=0 jobs_touch=0"; got != want {
		t.Errorf("after a wait reason and an admission: calls %s, want %s", got, want)
	}

	mustExecTx(t, tx, `UPDATE jobs SET updated_at = '2025-01-20 10:00+00', tags = '{"team": "a"}' WHERE id = $1`, job)
	if got := updatedAt(); got != "false" {
		t.Errorf("an UPDATE that sets updated_at got it replaced by now()")
	}
	mustExecTx(t, tx, `UPDATE jobs SET status = 'paused' WHERE id = $1`, job)
	if got := updatedAt(); got != "true" {
		t.Errorf("a status change left updated_at as it was, want now()")
	}
	if got, want := calls(), "jobs_check_transition=1 jobs_reject_config_change=0 jobs_touch=1"; got != want {
		t.Errorf("after a pause: calls %s, want %s", got, want)
	}
}

func mustExecTx(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestInsertOnlyAsSubmittedOrQueued(t *testing.T) {
	conn := newSchema(t)
	_, err := conn.Exec(context.Background(), `
		INSERT INTO jobs (project_id, org_id, job_type, status, config_json, max_runtime_seconds)
		VALUES ('vision', 'acme', 'fine_tune', 'completed', '{}', 60)`)
	expectState(t, err, "SD001")
}

func TestJobQueueMirrorsQueuedJobs(t *testing.T) {
	conn := newSchema(t)
	ctx := context.Background()
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")

	queuePriority := func() (int, bool) {
		var priority int
		err := conn.QueryRow(ctx, `SELECT priority FROM job_queue WHERE job_id = $1`, job).Scan(&priority)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return priority, true
	}

	if priority, ok := queuePriority(); !ok || priority != 5 {
		t.Errorf("after insert: queued=%v priority=%d, want queued with priority 5", ok, priority)
	}
	mustExec(t, conn, `UPDATE jobs SET priority = 9 WHERE id = $1`, job)
	if priority, _ := queuePriority(); priority != 9 {
		t.Errorf("after reprioritize: priority %d, want 9", priority)
	}
	mustExec(t, conn, `UPDATE jobs SET status = 'running' WHERE id = $1`, job)
	if _, ok := queuePriority(); ok {
		t.Error("running job still in job_queue")
	}
	mustExec(t, conn, `UPDATE jobs SET status = 'queued' WHERE id = $1`, job)
	if _, ok := queuePriority(); !ok {
		t.Error("requeued job missing from job_queue")
	}
}

// A transaction that sets schedulerd.dequeue, as the dequeue does, deletes the job_queue
// rows of the jobs it admits itself: the trigger leaves them for moves from queued to
// running there, but not for other moves, and not after the transaction ends.
func TestJobQueueTriggerSkipsDequeue(t *testing.T) {
	conn := newSchema(t)
	ctx := context.Background()
	admitted := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	paused := insertJob(t, conn, "2025-01-21 10:00+00", "queued")
	later := insertJob(t, conn, "2025-01-22 10:00+00", "queued")
	queued := func(id string) bool {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM job_queue WHERE job_id = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}

	mustExec(t, conn, `BEGIN`)
	mustExec(t, conn, `SET LOCAL schedulerd.dequeue = on`)
	mustExec(t, conn, `UPDATE jobs SET status = 'running' WHERE id = $1`, admitted)
	mustExec(t, conn, `UPDATE jobs SET status = 'paused' WHERE id = $1`, paused)
	if !queued(admitted) {
		t.Error("the trigger deleted the job_queue row of a job admitted with schedulerd.dequeue on")
	}
	if queued(paused) {
		t.Error("job paused with schedulerd.dequeue on is still in job_queue")
	}
	mustExec(t, conn, `COMMIT`)

	// The variable keeps an empty value in the session after SET LOCAL ends.
	mustExec(t, conn, `UPDATE jobs SET status = 'running' WHERE id = $1`, later)
	if queued(later) {
		t.Error("job admitted after the transaction is still in job_queue")
	}
}

// One UPDATE that moves several jobs in and out of the queue and changes priorities keeps
// job_queue equal to the queued jobs, as admissions and bulk queue operations rely on.
func TestJobQueueSyncsMultiRowUpdate(t *testing.T) {
	conn := newSchema(t)
	ctx := context.Background()
	admitted1 := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	admitted2 := insertJob(t, conn, "2025-02-20 10:00+00", "queued")
	raised := insertJob(t, conn, "2025-01-21 10:00+00", "queued")
	untouched := insertJob(t, conn, "2025-01-22 10:00+00", "queued")
	paused := insertJob(t, conn, "2025-03-01 10:00+00", "queued")
	mustExec(t, conn, `UPDATE jobs SET status = 'paused' WHERE id = $1`, paused)

	mustExec(t, conn, `UPDATE jobs SET
		status = CASE WHEN id IN ($1, $2) THEN 'running'::job_status WHEN id = $4 THEN 'queued' ELSE status END,
		priority = CASE WHEN id = $3 THEN 9 ELSE priority END,
		wait_reason = 'checked'
		WHERE id IN ($1, $2, $3, $4, $5)`, admitted1, admitted2, raised, paused, untouched)

	rows, err := conn.Query(ctx, `SELECT job_id::text, priority FROM job_queue ORDER BY job_id`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for rows.Next() {
		var id string
		var priority int
		if err := rows.Scan(&id, &priority); err != nil {
			t.Fatal(err)
		}
		got[id] = priority
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{raised: 9, untouched: 5, paused: 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("job_queue %v, want %v", got, want)
	}
}

func TestPriorityRange(t *testing.T) {
	conn := newSchema(t)
	for _, priority := range []int{-1, 101} {
		_, err := conn.Exec(context.Background(), `
			INSERT INTO jobs (project_id, org_id, job_type, priority, config_json, max_runtime_seconds)
			VALUES ('vision', 'acme', 'fine_tune', $1, '{}', 60)`, priority)
		expectState(t, err, "23514")
	}
	for _, priority := range []int{0, 100} {
		_, err := conn.Exec(context.Background(), `
			INSERT INTO jobs (project_id, org_id, job_type, priority, config_json, max_runtime_seconds)
			VALUES ('vision', 'acme', 'fine_tune', $1, '{}', 60)`, priority)
		if err != nil {
			t.Errorf("priority %d: %v, want accepted", priority, err)
		}
	}
}

func TestNoNegativeAmounts(t *testing.T) {
	conn := newSchema(t)
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	var run string
	if err := conn.QueryRow(context.Background(), `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, '2025-01-20 10:00+00', 1, 1000, 'p') RETURNING id`, job).Scan(&run); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		sql  string
		args []any
	}{
		{"quota budget", `INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end)
			VALUES ('vision', -1, 1, '2025-01-01', '2025-02-01')`, nil},
		{"quota used", `INSERT INTO quotas (project_id, gpu_hours_budget, gpu_hours_used, max_concurrent_jobs, period_start, period_end)
			VALUES ('vision', 10, -0.5, 1, '2025-01-01', '2025-02-01')`, nil},
		{"quota infinite start", `INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end)
			VALUES ('vision', 10, 1, '-infinity', '2025-02-01')`, nil},
		{"quota infinite end", `INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end)
			VALUES ('vision', 10, 1, '2025-01-01', 'infinity')`, nil},
		{"run gpu hours", `UPDATE runs SET gpu_hours_used = -0.001 WHERE id = $1`, []any{run}},
		{"artifact size", `INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes)
			VALUES ($1, 'checkpoint', 's3://b/k', repeat('a', 64), -1)`, []any{run}},
		{"job max attempts", `UPDATE jobs SET max_attempts = 0 WHERE id = $1`, []any{job}},
		{"job preemptions", `UPDATE jobs SET preemptions = -1 WHERE id = $1`, []any{job}},
		{"job max preemptions 0", `UPDATE jobs SET max_preemptions = 0 WHERE id = $1`, []any{job}},
		{"job max preemptions 1001", `UPDATE jobs SET max_preemptions = 1001 WHERE id = $1`, []any{job}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := conn.Exec(context.Background(), c.sql, c.args...)
			expectState(t, err, "23514")
		})
	}
}

func TestChecksumFormat(t *testing.T) {
	conn := newSchema(t)
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	var run string
	if err := conn.QueryRow(context.Background(), `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, '2025-01-20 10:00+00', 1, 1000, 'p') RETURNING id`, job).Scan(&run); err != nil {
		t.Fatal(err)
	}
	insert := func(checksum string) error {
		_, err := conn.Exec(context.Background(), `
			INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes)
			VALUES ($1, 'checkpoint', 's3://b/k', $2, 1)`, run, checksum)
		return err
	}

	for _, bad := range []string{"abc", strings.Repeat("A", 64), strings.Repeat("g", 64), strings.Repeat("a", 63) + " "} {
		expectState(t, insert(bad), "23514")
	}
	if err := insert(strings.Repeat("0123456789abcdef", 4)); err != nil {
		t.Errorf("valid checksum: %v", err)
	}
}

func TestModelVersionNumbersUnique(t *testing.T) {
	conn := newSchema(t)
	var model string
	if err := conn.QueryRow(context.Background(),
		`INSERT INTO models (project_id, model_name) VALUES ('vision', 'detector') RETURNING id`).Scan(&model); err != nil {
		t.Fatal(err)
	}
	// Each version comes from its own job: a job registers at most one version.
	insert := func(version int, stage string) error {
		job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
		_, err := conn.Exec(context.Background(), `
			INSERT INTO model_versions (model_id, version_number, stage, job_id, job_created_at, artifact_uri)
			VALUES ($1, $2, $3, $4, '2025-01-20 10:00+00', 's3://b/m')`, model, version, stage, job)
		return err
	}

	if err := insert(1, "prod"); err != nil {
		t.Fatal(err)
	}
	expectState(t, insert(1, "dev"), "23505")
	expectState(t, insert(2, "prod"), "23505")
	if err := insert(2, "staging"); err != nil {
		t.Errorf("version 2 in staging: %v", err)
	}
}

func TestOneQuotaPerProject(t *testing.T) {
	conn := newSchema(t)
	insert := func() error {
		_, err := conn.Exec(context.Background(), `
			INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end)
			VALUES ('vision', 100, 4, '2025-01-01', '2025-02-01')`)
		return err
	}
	if err := insert(); err != nil {
		t.Fatal(err)
	}
	expectState(t, insert(), "23505")
}

func TestApprovalSnapshotImmutable(t *testing.T) {
	conn := newSchema(t)
	ctx := context.Background()
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	var model, version, approval string
	if err := conn.QueryRow(ctx, `INSERT INTO models (project_id, model_name) VALUES ('vision', 'd') RETURNING id`).Scan(&model); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `
		INSERT INTO model_versions (model_id, version_number, job_id, job_created_at, artifact_uri)
		VALUES ($1, 1, $2, '2025-01-20 10:00+00', 's3://b/m') RETURNING id`, model, job).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `
		INSERT INTO approvals (model_version_id, requested_by, target_stage, eval_snapshot_json)
		VALUES ($1, 'ana', 'prod', '{"accuracy": 0.91}') RETURNING id`, version).Scan(&approval); err != nil {
		t.Fatal(err)
	}

	_, err := conn.Exec(ctx, `UPDATE approvals SET eval_snapshot_json = '{"accuracy": 0.99}' WHERE id = $1`, approval)
	expectState(t, err, "SD002")

	_, err = conn.Exec(ctx, `UPDATE approvals SET status = 'approved', approved_by = 'ana' WHERE id = $1`, approval)
	expectState(t, err, "23514")

	mustExec(t, conn, `UPDATE approvals SET status = 'approved', approved_by = 'bo', decided_at = now() WHERE id = $1`, approval)
	_, err = conn.Exec(ctx, `UPDATE approvals SET status = 'rejected' WHERE id = $1`, approval)
	expectState(t, err, "SD001")
}

func TestRunStatusTransitions(t *testing.T) {
	conn := newSchema(t)
	job := insertJob(t, conn, "2025-01-20 10:00+00", "queued")
	var run string
	if err := conn.QueryRow(context.Background(), `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, '2025-01-20 10:00+00', 1, 1000, 'p') RETURNING id`, job).Scan(&run); err != nil {
		t.Fatal(err)
	}
	mustExec(t, conn, `UPDATE runs SET status = 'running' WHERE id = $1`, run)
	mustExec(t, conn, `UPDATE runs SET status = 'completed' WHERE id = $1`, run)

	_, err := conn.Exec(context.Background(), `UPDATE runs SET status = 'running' WHERE id = $1`, run)
	expectState(t, err, "SD001")
}
