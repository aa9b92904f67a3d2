package migrations_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/migrations"
)

// A project and, in a second statement, one job created on 20 January 2025, in any
// version's schema.
const (
	sqlOneProject = `
SELECT ensure_job_partitions('2025-01-20 08:00+00', 0);
INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('vision', 'acme', 'vision');`
	sqlOneJob = `
INSERT INTO jobs (id, created_at, project_id, org_id, job_type, status, config_json, gpu_milli,
                  max_runtime_seconds)
VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 'vision', 'acme', $1,
        'queued', '{"resources": {"gpu_count": 4, "cpu_milli": 4000, "memory_mib": 8192}}', 4000,
        36000)`
)

// migratedTo returns a connection to a new database at version v that holds sqlOneJob's
// job, of type jobType.
func migratedTo(t *testing.T, v int32, jobType string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	if err := migrations.To(ctx, conn, v); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sqlOneProject); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sqlOneJob, jobType); err != nil {
		t.Fatal(err)
	}
	return conn
}

func expectVersion(t *testing.T, conn *pgx.Conn, want int32) {
	t.Helper()
	status, err := migrations.CurrentStatus(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	if status.Current != want {
		t.Errorf("schema at version %d, want %d", status.Current, want)
	}
}

// A job queued before migration 004 reserves its whole run time and keeps its pod's size:
// the queue's copy of max_runtime_seconds defaulted to one second before.
func TestQueuedJobKeepsRunTimeThrough004(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 3, "fine_tune")
	if err := migrations.To(ctx, conn, 4); err != nil {
		t.Fatal(err)
	}

	var runtime, queueCPU, queueMemory, jobCPU, jobMemory int64
	err := conn.QueryRow(ctx, `SELECT q.max_runtime_seconds, q.cpu_milli, q.memory_mib, j.cpu_milli, j.memory_mib
		FROM job_queue q JOIN jobs j ON j.id = q.job_id`).Scan(&runtime, &queueCPU, &queueMemory, &jobCPU, &jobMemory)
	if err != nil {
		t.Fatal(err)
	}
	if runtime != 36000 || queueCPU != 4000 || queueMemory != 8192 {
		t.Errorf("queue row: run time %d s, %d mCPU, %d MiB; want 36000 s, 4000, 8192", runtime, queueCPU, queueMemory)
	}
	if jobCPU != 4000 || jobMemory != 8192 {
		t.Errorf("job row: %d mCPU, %d MiB; want 4000 and 8192 from its config", jobCPU, jobMemory)
	}
}

// Migrating below 004 while a run is live would drop the reservation its end releases.
func TestDownPast004RefusedWithLiveRun(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 4, "fine_tune")
	_, err := conn.Exec(ctx, `UPDATE jobs SET status = 'running';
		INSERT INTO runs (job_id, job_created_at, run_number, status, gpu_milli, pod_name, gpu_hours_reserved)
		VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 1, 'pending', 4000, 'p1', 40)`)
	if err != nil {
		t.Fatal(err)
	}

	err = migrations.To(ctx, conn, 3)
	if err == nil || !strings.Contains(err.Error(), "runs are pending or running") {
		t.Fatalf("migrate down to 3 with a pending run: error %v, want a refusal naming the live runs", err)
	}
	expectVersion(t, conn, 4)
	var reserved float64
	if err := conn.QueryRow(ctx, `SELECT gpu_hours_reserved::float8 FROM runs`).Scan(&reserved); err != nil {
		t.Fatal(err)
	}
	if reserved != 40 {
		t.Errorf("run's reservation %v after the refused migration, want 40", reserved)
	}
}

// A checkpoint whose deletion had started counts as deleted below 005, and again after
// migrating back up, instead of looking live while its object may be gone.
func TestDownPast005KeepsStartedDeletions(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 5, "fine_tune")
	_, err := conn.Exec(ctx, `UPDATE jobs SET status = 'running';
		INSERT INTO runs (id, job_id, job_created_at, run_number, status, gpu_milli, pod_name)
		VALUES ('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-000000000001',
		        '2025-01-20 08:00+00', 1, 'running', 4000, 'p1');
		INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes, delete_started_at)
		VALUES ('00000000-0000-0000-0000-0000000000a1', 'checkpoint', 's3://ckpt/step-1', repeat('a', 64), 10,
		        '2025-01-21 08:00+00')`)
	if err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 4); err != nil {
		t.Fatal(err)
	}
	var deleted *string
	if err := conn.QueryRow(ctx, `SELECT deleted_at::text FROM artifacts`).Scan(&deleted); err != nil {
		t.Fatal(err)
	}
	if deleted == nil || *deleted != "2025-01-21 08:00:00+00" {
		t.Fatalf("deleted_at %v below 005, want the deletion's start 2025-01-21 08:00:00+00", deleted)
	}

	if err := migrations.To(ctx, conn, 5); err != nil {
		t.Fatal(err)
	}
	var started, done *string
	if err := conn.QueryRow(ctx, `SELECT delete_started_at::text, deleted_at::text FROM artifacts`).Scan(&started, &done); err != nil {
		t.Fatal(err)
	}
	if started == nil || done == nil {
		t.Errorf("after 005 again: delete_started_at %v, deleted_at %v; want both set", started, done)
	}
}

// An hpo job that ran as a single pod before 007 blocks the migration until it ended: the
// rule that hpo jobs never queue would fail it, or the requeue of its run.
func TestUpTo007WaitsForSinglePodHPO(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 6, "hpo")

	err := migrations.To(ctx, conn, 7)
	if err == nil || !strings.Contains(err.Error(), "1 hpo jobs are queued, paused or running") {
		t.Fatalf("migrate to 7 with a queued hpo job: error %v, want a refusal that counts it", err)
	}
	expectVersion(t, conn, 6)

	if _, err := conn.Exec(ctx, `UPDATE jobs SET status = 'cancelled'`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.To(ctx, conn, 7); err != nil {
		t.Fatalf("migrate to 7 once the hpo job was cancelled: %v", err)
	}
}

// An hpo parent that failed its evaluation before migration 017 gets the time of its last
// change as its completed_at.
func TestEvalFailedGetsCompletedAtIn017(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 16, "fine_tune")
	_, err := conn.Exec(ctx, `UPDATE jobs SET status = 'running';
		UPDATE jobs SET status = 'eval_failed', completed_at = NULL`)
	if err != nil {
		t.Fatal(err)
	}
	var updated time.Time
	if err := conn.QueryRow(ctx, `SELECT updated_at FROM jobs`).Scan(&updated); err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 17); err != nil {
		t.Fatal(err)
	}
	var completed *time.Time
	if err := conn.QueryRow(ctx, `SELECT completed_at FROM jobs`).Scan(&completed); err != nil {
		t.Fatal(err)
	}
	if completed == nil || !completed.Equal(updated) {
		t.Errorf("completed_at %v, want the last change's time %v", completed, updated)
	}
}

// Migration 021 gives a job stored before it no preemptions and the default bound of 20,
// and its down step drops both columns from every partition.
func TestPreemptionColumnsIn021(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 20, "fine_tune")
	if err := migrations.To(ctx, conn, 21); err != nil {
		t.Fatal(err)
	}
	var preemptions, maxPreemptions int
	if err := conn.QueryRow(ctx, `SELECT preemptions, max_preemptions FROM jobs`).Scan(&preemptions, &maxPreemptions); err != nil {
		t.Fatal(err)
	}
	if preemptions != 0 || maxPreemptions != 20 {
		t.Errorf("existing job after 021: preemptions %d of %d, want 0 of 20", preemptions, maxPreemptions)
	}

	if err := migrations.To(ctx, conn, 20); err != nil {
		t.Fatal(err)
	}
	var columns int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE column_name IN ('preemptions', 'max_preemptions')`).Scan(&columns)
	if err != nil {
		t.Fatal(err)
	}
	if columns != 0 {
		t.Errorf("%d preemption columns left after migrating down to 20, want 0", columns)
	}
	expectVersion(t, conn, 20)
}

// Migration 022 keeps every approval and token and reads a row stored before it as owned
// by its name: a token under the requester's name still cannot decide the request, and
// one under another name can. The down step drops the owner columns and keeps the rows.
func TestApprovalsKeepRequesterThrough022(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 21, "fine_tune")
	_, err := conn.Exec(ctx, `
		INSERT INTO api_tokens (token_sha256, name, role) VALUES (sha256('a'), 'ana', 'operator');
		INSERT INTO models (id, project_id, model_name)
		VALUES ('00000000-0000-0000-0000-0000000000b1', 'vision', 'resnet');
		INSERT INTO model_versions (id, model_id, version_number, job_id, job_created_at, artifact_uri)
		VALUES ('00000000-0000-0000-0000-0000000000c1', '00000000-0000-0000-0000-0000000000b1', 1,
		        '00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 's3://b/m');
		INSERT INTO approvals (id, model_version_id, requested_by, target_stage, eval_snapshot_json)
		VALUES ('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000c1', 'ana',
		        'prod', '{}'),
		       ('00000000-0000-0000-0000-0000000000d2', '00000000-0000-0000-0000-0000000000c1', 'ana',
		        'staging', '{}');
		UPDATE approvals SET status = 'approved', approved_by = 'bo', decided_at = now()
		WHERE id = '00000000-0000-0000-0000-0000000000d2'`)
	if err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 22); err != nil {
		t.Fatal(err)
	}
	var owner string
	if err := conn.QueryRow(ctx, `SELECT coalesce(owner, name) FROM api_tokens`).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if owner != "ana" {
		t.Errorf("owner of the token ana after 022: %q, want ana", owner)
	}
	var approvals int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM approvals`).Scan(&approvals); err != nil {
		t.Fatal(err)
	}
	if approvals != 2 {
		t.Errorf("%d approvals after 022, want 2", approvals)
	}
	const decide = `UPDATE approvals SET status = 'approved', approved_by = $1, decider_owner = $2,
		decided_at = now() WHERE id = '00000000-0000-0000-0000-0000000000d1'`
	if _, err := conn.Exec(ctx, decide, "ana-laptop", "ana"); err == nil {
		t.Error("a token of owner ana decided ana's request from before 022, want a check violation")
	}
	if _, err := conn.Exec(ctx, decide, "bo", "bo"); err != nil {
		t.Errorf("bo deciding ana's request from before 022: %v", err)
	}

	if err := migrations.To(ctx, conn, 21); err != nil {
		t.Fatal(err)
	}
	expectVersion(t, conn, 21)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM approvals WHERE approved_by = 'bo'`).Scan(&approvals); err != nil {
		t.Fatal(err)
	}
	if approvals != 2 {
		t.Errorf("%d approvals decided by bo after migrating down to 21, want 2", approvals)
	}
}

// Migration 024 lets an hpo parent move from running to paused and back, never to the
// queue, and marks only paused trials as paused by their parent. Its down step waits until
// no hpo parent is paused, because version 23 rejects one.
func TestHPOParentPauseThrough024(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 23, "fine_tune")
	const parent = `'00000000-0000-0000-0000-0000000000a1'`
	_, err := conn.Exec(ctx, `
		INSERT INTO jobs (id, created_at, project_id, org_id, job_type, status, config_json, max_runtime_seconds)
		VALUES (`+parent+`, '2025-01-20 08:00+00', 'vision', 'acme', 'hpo', 'submitted', '{}', 36000);
		UPDATE jobs SET parent_job_id = `+parent+`, parent_created_at = '2025-01-20 08:00+00'
		WHERE job_type <> 'hpo';
		UPDATE jobs SET status = 'running' WHERE job_type = 'hpo'`)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.To(ctx, conn, 24); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		sql, state string
	}{
		{`UPDATE jobs SET status = 'paused' WHERE job_type = 'hpo'`, ""},
		{`UPDATE jobs SET status = 'queued' WHERE job_type = 'hpo'`, "23514"},
		{`UPDATE jobs SET paused_by_parent = true WHERE job_type <> 'hpo'`, "23514"},
		{`UPDATE jobs SET status = 'paused', paused_by_parent = true WHERE job_type <> 'hpo'`, ""},
		{`UPDATE jobs SET status = 'queued' WHERE job_type <> 'hpo'`, "SD001"},
	}
	for _, step := range steps {
		_, err := conn.Exec(ctx, step.sql)
		if got := sqlState(err); got != step.state {
			t.Errorf("%s: SQLSTATE %q (error %v), want %q", step.sql, got, err, step.state)
		}
	}

	err = migrations.To(ctx, conn, 23)
	if err == nil || !strings.Contains(err.Error(), "1 hpo jobs are paused") {
		t.Fatalf("migrate down to 23 with a paused hpo job: error %v, want a refusal that counts it", err)
	}
	expectVersion(t, conn, 24)
	_, err = conn.Exec(ctx, `UPDATE jobs SET status = 'running' WHERE job_type = 'hpo';
		UPDATE jobs SET status = 'queued' WHERE job_type <> 'hpo'`)
	if err != nil {
		t.Fatalf("resume the parent, then the trial: %v", err)
	}
	var marked bool
	if err := conn.QueryRow(ctx, `SELECT paused_by_parent FROM jobs WHERE job_type <> 'hpo'`).Scan(&marked); err != nil {
		t.Fatal(err)
	}
	if marked {
		t.Error("a resumed trial is still marked as paused by its parent, want the mark cleared")
	}
	if err := migrations.To(ctx, conn, 23); err != nil {
		t.Fatalf("migrate down to 23 once no hpo job is paused: %v", err)
	}
	expectVersion(t, conn, 23)
}

// Below 023 a run's end gives back its whole reservation, so migrating down returns to the
// quota the hours that renewals charged to running runs and took off its reservation.
// Without them the quota would reserve less than the run's end releases, and the end of
// the run would fail.
func TestDownPast023GivesBackChargedHours(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 23, "fine_tune")
	_, err := conn.Exec(ctx, `UPDATE jobs SET status = 'running';
		INSERT INTO quotas (project_id, gpu_hours_budget, max_concurrent_jobs, period_start, period_end,
		                    current_concurrent, gpu_hours_reserved)
		VALUES ('vision', 100, 2, '2025-02-01', '2025-03-01', 1, 30);
		INSERT INTO runs (job_id, job_created_at, run_number, status, gpu_milli, pod_name, started_at,
		                  gpu_hours_reserved, gpu_hours_charged)
		VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 1, 'running', 4000, 'p1',
		        '2025-01-31 16:30+00', 40, 10)`)
	if err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 22); err != nil {
		t.Fatal(err)
	}
	var reserved float64
	if err := conn.QueryRow(ctx, `SELECT gpu_hours_reserved::float8 FROM quotas`).Scan(&reserved); err != nil {
		t.Fatal(err)
	}
	if reserved != 40 {
		t.Errorf("quota reserves %v GPU-hours below 023, want the running run's whole 40", reserved)
	}
}

// Migration 026 records who paused a job. The pauser's role and token name are set
// together, only on a paused job, and a trigger clears them when the job leaves paused
// under any writer. Its down step drops both columns, also while a job is held.
func TestPauseHoldsThrough026(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 25, "fine_tune")
	if err := migrations.To(ctx, conn, 26); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		sql, state string
	}{
		{`UPDATE jobs SET paused_by_role = 'operator', paused_by_token = 'oncall'`, "23514"},
		{`UPDATE jobs SET status = 'paused', paused_by_role = 'operator'`, "23514"},
		{`UPDATE jobs SET status = 'paused', paused_by_role = 'operator', paused_by_token = 'oncall'`, ""},
		{`UPDATE jobs SET status = 'queued'`, ""},
	}
	for _, step := range steps {
		_, err := conn.Exec(ctx, step.sql)
		if got := sqlState(err); got != step.state {
			t.Errorf("%s: SQLSTATE %q (error %v), want %q", step.sql, got, err, step.state)
		}
	}
	var marked int
	err := conn.QueryRow(ctx, `SELECT count(*) FROM jobs
		WHERE paused_by_role IS NOT NULL OR paused_by_token IS NOT NULL`).Scan(&marked)
	if err != nil {
		t.Fatal(err)
	}
	if marked != 0 {
		t.Errorf("%d resumed jobs still record their pauser, want both columns cleared", marked)
	}

	_, err = conn.Exec(ctx, `UPDATE jobs SET status = 'paused', paused_by_role = 'admin', paused_by_token = 'root'`)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrations.To(ctx, conn, 25); err != nil {
		t.Fatalf("migrate down to 25 with a held job: %v", err)
	}
	var columns int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'jobs' AND column_name IN ('paused_by_role', 'paused_by_token')`).Scan(&columns)
	if err != nil {
		t.Fatal(err)
	}
	if columns != 0 {
		t.Errorf("%d pauser columns left on jobs at version 25, want 0", columns)
	}
	if _, err := conn.Exec(ctx, `UPDATE jobs SET status = 'queued'`); err != nil {
		t.Errorf("resume of the formerly held job at version 25: %v", err)
	}
	if err := migrations.To(ctx, conn, 26); err != nil {
		t.Fatalf("migrate up to 26 again: %v", err)
	}
}

// Migration 027 leaves a live run stored before it without the start of its container's
// wait, so the dispatcher counts its image pull grace from the pod's start as before. Its
// down step drops the column and keeps the run.
func TestContainerWaitStartThrough027(t *testing.T) {
	ctx := context.Background()
	conn := migratedTo(t, 26, "fine_tune")
	_, err := conn.Exec(ctx, `UPDATE jobs SET status = 'running';
		INSERT INTO runs (job_id, job_created_at, run_number, status, gpu_milli, pod_name)
		VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 1, 'pending', 4000, 'p1')`)
	if err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 27); err != nil {
		t.Fatal(err)
	}
	var started *time.Time
	if err := conn.QueryRow(ctx, `SELECT container_wait_started_at FROM runs`).Scan(&started); err != nil {
		t.Fatal(err)
	}
	if started != nil {
		t.Errorf("run stored before 027 has container_wait_started_at %v, want NULL", started)
	}
	if _, err := conn.Exec(ctx, `UPDATE runs SET container_wait_started_at = '2025-01-20 09:00+00'`); err != nil {
		t.Fatal(err)
	}

	if err := migrations.To(ctx, conn, 26); err != nil {
		t.Fatal(err)
	}
	var columns, runs int
	err = conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM information_schema.columns
		WHERE table_name = 'runs' AND column_name = 'container_wait_started_at'), (SELECT count(*) FROM runs)`).
		Scan(&columns, &runs)
	if err != nil {
		t.Fatal(err)
	}
	if columns != 0 {
		t.Errorf("%d container_wait_started_at columns left after migrating down to 26, want 0", columns)
	}
	if runs != 1 {
		t.Errorf("%d runs after migrating down to 26, want 1", runs)
	}
	expectVersion(t, conn, 26)
}
