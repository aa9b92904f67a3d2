package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// historyMonths is how many monthly jobs partitions the history spreads over: the current
// month and the eleven before it.
const historyMonths = 12

// loadChunk is the most rows one seeding statement inserts, so that progress shows.
const loadChunk = 1_000_000

// sqlSeedHistory inserts the finished jobs $1..$2 of a sweep of $3 rows spread evenly in
// time from $4 over $5 seconds, so that each statement appends in time (and UUIDv7) order.
// The status mix is 80% completed, 15% failed and 5% cancelled. Each job records three
// runs, which seedRuns adds later.
const sqlSeedHistory = `
INSERT INTO jobs (id, created_at, project_id, org_id, job_type, status, priority, config_json,
                  gpu_milli, gpu_models, max_runtime_seconds, max_attempts, attempts, run_count,
                  started_at, completed_at, updated_at, error_message)
SELECT ` + uuid7SQL + `, ts, ($6::text[])[g % $8 + 1], ($7::text[])[g % $8 + 1],
       (ARRAY['fine_tune', 'hpo', 'retrain', 'rlhf', 'eval_only']::job_type[])[g % 5 + 1],
       CASE WHEN g % 100 < 80 THEN 'completed' WHEN g % 100 < 95 THEN 'failed' ELSE 'cancelled' END::job_status,
       (g * 7) % 10 * 10, ($9::jsonb[])[g % $11 + 1], ($10::int[])[g % $11 + 1], '{}', 3600, 3,
       CASE WHEN g % 100 BETWEEN 80 AND 94 THEN 3 ELSE 0 END, 3,
       ts + interval '1 minute', ts + interval '3 hours', ts + interval '3 hours',
       CASE WHEN g % 100 BETWEEN 80 AND 94 THEN 'exit code 1' END
FROM generate_series($1::bigint, $2::bigint) g
CROSS JOIN LATERAL (SELECT $4::timestamptz + (g::float8 / $3) * $5 * interval '1 second' AS ts) t
CROSS JOIN LATERAL (SELECT decode(md5(g::text || random()::text), 'hex') AS b) r`

// seedHistory adds count finished jobs spread over the last historyMonths months. Its
// rows bypass the jobs triggers (session_replication_role = replica), which admit only
// submitted or queued jobs as new rows and check foreign keys row by row; the rows are
// what those rules would have produced over months of work.
func seedHistory(ctx context.Context, pool *pgxpool.Pool, count int, log func(string, ...any)) error {
	if count <= 0 {
		return nil
	}
	if _, err := pool.Exec(ctx, `SELECT ensure_job_partitions(now() - interval '11 months', 11)`); err != nil {
		return fmt.Errorf("create jobs partitions: %w", err)
	}
	var from time.Time
	if err := pool.QueryRow(ctx, `SELECT date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
		- interval '11 months'`).Scan(&from); err != nil {
		return err
	}
	// The sweep ends a day ago, so that it never reaches the queued jobs of the fixture.
	span := time.Since(from) - 24*time.Hour

	kinds, err := shapes(0)
	if err != nil {
		return err
	}
	projects, orgs := make([]string, benchProjects), make([]string, benchProjects)
	for i := range benchProjects {
		projects[i], orgs[i] = projectID(i), orgID(i)
	}
	configs, milli := make([]string, len(kinds)), make([]int, len(kinds))
	for i, k := range kinds {
		configs[i], milli[i] = string(k.config), k.milli
	}

	for lo := 1; lo <= count; lo += loadChunk {
		hi := min(lo+loadChunk-1, count)
		started := time.Now()
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sqlSeedHistory, lo, hi, count, from, span.Seconds(),
				projects, orgs, benchProjects, configs, milli, len(kinds))
			return err
		})
		if err != nil {
			return fmt.Errorf("seed finished jobs %d to %d: %w", lo, hi, err)
		}
		log("seeded finished jobs", "rows", hi, "of", count, "seconds", time.Since(started).Seconds())
	}
	return nil
}

// sqlSeedRuns adds $1 runs to every finished job of one partition: the earlier ones
// preempted, the last one ending as its job did. Each run used a random share of its
// reservation. Run ids are UUIDv7 of their start, so that the primary key grows at its end.
// The runs bypass the trigger that adds each ended run to gpu_hours_daily, so the same
// statement adds them by day, project and org, counting each job on its first run. It
// returns how many runs it added.
const sqlSeedRuns = `
WITH src AS MATERIALIZED (
    SELECT ` + uuid7SQL + ` AS id, j.id AS job_id, j.created_at AS job_created_at, n AS run_number,
           CASE WHEN n < $1 THEN 'preempted'
                WHEN j.status = 'completed' THEN 'completed'
                WHEN j.status = 'failed' THEN 'failed'
                ELSE 'cancelled' END::run_status AS status,
           ts AS created_at, ts + interval '10 seconds' AS started_at,
           ts + interval '50 minutes' AS completed_at,
           round((j.gpu_milli / 1000.0 * random())::numeric, 6) AS gpu_hours_used,
           j.gpu_milli, 'job-' || j.id || '-r' || n AS pod_name, j.project_id, j.org_id
    FROM %s j
    CROSS JOIN generate_series(1, $1) n
    CROSS JOIN LATERAL (SELECT j.created_at + n * interval '55 minutes' AS ts) t
    CROSS JOIN LATERAL (SELECT decode(md5(j.id::text || n::text), 'hex') AS b) r
    WHERE j.status IN ('completed', 'failed', 'cancelled')
), added AS (
    INSERT INTO runs (id, job_id, job_created_at, run_number, status, created_at, started_at,
                      completed_at, gpu_hours_used, gpu_milli, gpu_model, namespace, pod_name,
                      gpu_hours_reserved, pod_created_at, end_reason)
    SELECT id, job_id, job_created_at, run_number, status, created_at, started_at, completed_at,
           gpu_hours_used, gpu_milli, 'A100', 'bench', pod_name, gpu_milli / 1000.0, created_at, NULL
    FROM src
), daily AS (
    INSERT INTO gpu_hours_daily AS d (day, project_id, org_id, runs, jobs, gpu_hours)
    SELECT (started_at AT TIME ZONE 'UTC')::date, project_id, org_id, count(*),
           count(*) FILTER (WHERE run_number = 1), sum(gpu_hours_used)
    FROM src GROUP BY 1, 2, 3
    ON CONFLICT (day, project_id, org_id) DO UPDATE
    SET runs = d.runs + EXCLUDED.runs, jobs = d.jobs + EXCLUDED.jobs,
        gpu_hours = d.gpu_hours + EXCLUDED.gpu_hours
)
SELECT count(*) FROM src`

// seedRuns adds perJob runs to every finished job, partition by partition, bypassing the
// foreign-key triggers as seedHistory does.
func seedRuns(ctx context.Context, pool *pgxpool.Pool, perJob int, log func(string, ...any)) error {
	rows, err := pool.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'jobs'::regclass ORDER BY c.relname`)
	if err != nil {
		return err
	}
	partitions, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, p := range partitions {
		started := time.Now()
		var added int64
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
				return err
			}
			return tx.QueryRow(ctx, fmt.Sprintf(sqlSeedRuns, pgx.Identifier{p}.Sanitize()), perJob).Scan(&added)
		})
		if err != nil {
			return fmt.Errorf("seed runs of partition %s: %w", p, err)
		}
		if added > 0 {
			log("seeded runs", "partition", p, "rows", added, "seconds", time.Since(started).Seconds())
		}
	}
	return nil
}

// vacuumAnalyze runs VACUUM (ANALYZE) on tables, as autovacuum eventually would, so that
// measurements see visibility maps and statistics of a settled database.
func vacuumAnalyze(ctx context.Context, pool *pgxpool.Pool, tables ...string) error {
	for _, t := range tables {
		if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) "+t); err != nil {
			return fmt.Errorf("vacuum %s: %w", t, err)
		}
	}
	return nil
}
