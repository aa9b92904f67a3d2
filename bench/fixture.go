package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// Fixture sizes that every measurement shares.
const (
	benchProjects = 10
	// ampleBudget and ampleConcurrency keep quotas from refusing any job, so that the
	// measurements time admission work, not refusals. numeric(14, 4) allows up to 1e10.
	ampleBudget      = 1e9
	ampleConcurrency = 1_000_000
)

// gpuModels are the models of the fixtures, all with ample capacity.
var gpuModels = []string{"A100", "H100", "L4", "V100"}

// projectID names the i-th bench project; two orgs share them.
func projectID(i int) string { return fmt.Sprintf("bench-p%02d", i) }

func orgID(i int) string { return fmt.Sprintf("org-%d", i%2) }

// seedProjects creates the bench projects with ample quotas, all using namespace.
func seedProjects(ctx context.Context, s *store.Store, namespace string) error {
	for i := range benchProjects {
		p := store.Project{ID: projectID(i), OrgID: orgID(i), K8sNamespace: namespace}
		if _, err := s.UpsertProject(ctx, p); err != nil {
			return err
		}
		_, err := s.UpsertQuota(ctx, store.Quota{ProjectID: p.ID, GPUHoursBudget: ampleBudget,
			MaxConcurrentJobs: ampleConcurrency, PriorityTier: 5,
			PeriodStart: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
			PeriodEnd:   time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return err
		}
	}
	return nil
}

// seedAmpleCapacity gives every bench GPU model room for far more jobs than any
// measurement queues. The dispatcher, when it runs, replaces it with what the nodes have.
func seedAmpleCapacity(ctx context.Context, s *store.Store) error {
	models := make([]store.ModelCapacity, len(gpuModels))
	for i, m := range gpuModels {
		models[i] = store.ModelCapacity{Model: m, CapacityMilli: 1 << 40, Nodes: 1000, LargestNodeMilli: 8000}
	}
	return s.SyncGPUCapacity(ctx, models)
}

// setNamespace points every bench project at namespace; runs admitted afterwards create
// their pods there.
func setNamespace(ctx context.Context, pool *pgxpool.Pool, namespace string) error {
	_, err := pool.Exec(ctx, `UPDATE projects SET k8s_namespace = $1`, namespace)
	return err
}

// jobShape is one of the job kinds the fixtures cycle through.
type jobShape struct {
	milli  int
	config json.RawMessage
}

// shapes returns the job kinds: 1, 2 and 4 whole GPUs and a 500-thousandth share. A
// positive runSeconds makes their simulated pods finish; 0 keeps them running.
func shapes(runSeconds float64) ([]jobShape, error) {
	var out []jobShape
	for _, r := range []jobspec.Resources{
		{GPUs: 1, CPUMilli: 100, MemoryMiB: 128},
		{GPUs: 2, CPUMilli: 100, MemoryMiB: 128},
		{GPUShareMilli: 500, CPUMilli: 100, MemoryMiB: 128},
		{GPUs: 4, CPUMilli: 100, MemoryMiB: 128},
	} {
		spec := jobspec.Spec{Image: "registry.example/bench/train:1", Command: []string{"train"},
			Resources: r, MaxRuntimeSeconds: 3600}
		if runSeconds > 0 {
			spec.Simulation = &jobspec.Simulation{RunSeconds: runSeconds}
		}
		if err := spec.Validate(); err != nil {
			return nil, fmt.Errorf("bench job spec: %w", err)
		}
		raw, err := json.Marshal(spec)
		if err != nil {
			return nil, err
		}
		out = append(out, jobShape{milli: spec.GPUMilli(), config: raw})
	}
	return out, nil
}

// sharedShape returns one job kind with a 100-thousandth GPU share, so that many pods fit
// on few simulated nodes.
func sharedShape(runSeconds float64) (jobShape, error) {
	spec := jobspec.Spec{Image: "registry.example/bench/train:1", Command: []string{"train"},
		Resources:         jobspec.Resources{GPUShareMilli: 100, CPUMilli: 10, MemoryMiB: 16},
		MaxRuntimeSeconds: 3600}
	if runSeconds > 0 {
		spec.Simulation = &jobspec.Simulation{RunSeconds: runSeconds}
	}
	raw, err := json.Marshal(spec)
	return jobShape{milli: spec.GPUMilli(), config: raw}, err
}

// uuid7SQL computes, per row, a UUIDv7 whose timestamp is the column ts, as SubmitJob's ids
// are: 48 bits of Unix milliseconds, version 7, RFC 4122 variant, the rest random. It
// needs a LATERAL (SELECT decode(md5(...), 'hex') AS b) that refers to the row, so that
// PostgreSQL computes it per row.
const uuid7SQL = `encode(set_byte(set_byte(
    overlay(r.b PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    6, (get_byte(r.b, 6) & 15) | 112), 8, (get_byte(r.b, 8) & 63) | 128), 'hex')::uuid`

// sqlSeedQueued inserts $1 queued jobs created from $2 on, one millisecond apart, cycling
// through the projects, shapes, priorities and GPU-model lists. The jobs triggers check the
// status and add each job to job_queue, as SubmitJob's insert does.
const sqlSeedQueued = `
INSERT INTO jobs (id, created_at, project_id, org_id, job_type, status, priority, config_json,
                  gpu_milli, gpu_models, max_runtime_seconds, max_attempts)
SELECT ` + uuid7SQL + `, ts, ($3::text[])[g % $5 + 1], ($4::text[])[g % $5 + 1], 'fine_tune', 'queued',
       (g * 7) % 10 * 10, ($6::jsonb[])[g % $8 + 1], ($7::int[])[g % $8 + 1],
       CASE g % 3 WHEN 0 THEN ARRAY[$9::text] WHEN 1 THEN ARRAY[$9::text, $10::text] ELSE '{}' END,
       3600, 3
FROM generate_series(1, $1) g
CROSS JOIN LATERAL (SELECT $2::timestamptz + g * interval '1 millisecond' AS ts) t
CROSS JOIN LATERAL (SELECT decode(md5(g::text || random()::text), 'hex') AS b) r`

// seedQueued inserts n queued jobs of the given shapes, created in the last minutes.
func seedQueued(ctx context.Context, pool *pgxpool.Pool, n int, kinds []jobShape) error {
	projects, orgs := make([]string, benchProjects), make([]string, benchProjects)
	for i := range benchProjects {
		projects[i], orgs[i] = projectID(i), orgID(i)
	}
	configs, milli := make([]string, len(kinds)), make([]int, len(kinds))
	for i, k := range kinds {
		configs[i], milli[i] = string(k.config), k.milli
	}
	start := time.Now().Add(-time.Duration(n+1000) * time.Millisecond)
	_, err := pool.Exec(ctx, sqlSeedQueued, n, start, projects, orgs, benchProjects,
		configs, milli, len(kinds), gpuModels[0], gpuModels[1])
	if err != nil {
		return fmt.Errorf("seed %d queued jobs: %w", n, err)
	}
	return nil
}

// sqlRequeue undoes a dequeue measurement: the admitted jobs go back to the queue (the
// trigger re-adds them to job_queue), their pending runs go, and quotas and GPU models
// hold nothing again. The run count goes back to 0 as well, so that every measurement
// dispatches first runs, which resume from no checkpoint, like the raw loop's pods. The
// tables are vacuumed so that every run starts without the dead row versions of the
// previous one, as River's reference starts from a truncated table.
//
// The delete and the three updates after it run in one transaction that allows deleting
// live runs (migration 18 rejects it elsewhere), because the updates release what the runs
// held.
var sqlRequeue = []string{
	`BEGIN`,
	`SET LOCAL schedulerd.delete_live_runs = on`,
	`DELETE FROM runs WHERE status IN ('pending', 'running')`,
	`UPDATE jobs SET status = 'queued', run_count = 0 WHERE status = 'running'`,
	`UPDATE quotas SET current_concurrent = 0, gpu_hours_reserved = 0`,
	`UPDATE gpu_models SET allocated_milli = 0`,
	`COMMIT`,
	`VACUUM ANALYZE jobs`,
	`VACUUM ANALYZE job_queue`,
	`VACUUM ANALYZE runs`,
	`VACUUM ANALYZE quotas`,
	`VACUUM ANALYZE gpu_models`,
}

// requeue runs sqlRequeue on one connection and returns how many jobs are queued
// afterwards.
func requeue(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("reset after a dequeue run: %w", err)
	}
	defer conn.Release()
	for _, stmt := range sqlRequeue {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return 0, fmt.Errorf("reset after a dequeue run: %s: %w", stmt, err)
		}
	}
	var queued int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM job_queue`).Scan(&queued)
	return queued, err
}

// SeedQueue prepares a migrated, empty database for a dequeue: the bench projects with
// ample quotas, ample capacity of every bench GPU model, and jobs queued jobs of mixed
// shapes. The Go benchmarks of the store and accounting packages use it.
func SeedQueue(ctx context.Context, pool *pgxpool.Pool, jobs int) error {
	s := store.New(pool)
	if err := seedProjects(ctx, s, "bench"); err != nil {
		return err
	}
	if err := seedAmpleCapacity(ctx, s); err != nil {
		return err
	}
	kinds, err := shapes(0)
	if err != nil {
		return err
	}
	return seedQueued(ctx, pool, jobs, kinds)
}
