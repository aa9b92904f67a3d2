package retention

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is a pool, a connection or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// referencedSQL is true when a model version, the checkpoint's own run, a resumable run or
// another live artifact row points at the checkpoint a. A run's own last checkpoint stays
// after its job ends, because a completed run without a model artifact registers it as the
// model. A job that is completed, failed, cancelled or eval_failed never runs again, so the
// last checkpoints of its runs are no resume points for other runs. Two runs of a job may
// write to the same URI, so rows that name each other's objects keep each other, even when
// the policy would delete both.
var referencedSQL = `(
    EXISTS (SELECT 1 FROM model_versions mv WHERE ` + overlapSQL("mv.artifact_uri") + `)
    OR ` + sharedSQL + `
    OR EXISTS (SELECT 1 FROM runs lr WHERE lr.id = a.run_id AND ` + overlapSQL("lr.last_checkpoint_uri") + `)
    OR EXISTS (
        SELECT 1 FROM runs rr
        JOIN jobs rj ON rj.id = rr.job_id AND rj.created_at = rr.job_created_at
        WHERE ` + overlapSQL("rr.last_checkpoint_uri") + `
          AND rj.status NOT IN ('completed', 'failed', 'cancelled', 'eval_failed')))`

// sharedSQL is true when another artifact row not being deleted names some of the checkpoint
// a's objects, in the three ways overlapSQL tests. Each test is written so that it can be a
// probe of the index artifacts_live_uri_idx (migration 14), whose C collation makes the
// URIs under a directory "P/" the range from "P/" up to "P0". The directories above a are
// a's prefixes that end in "/", one probe each.
const sharedSQL = `(
    EXISTS (SELECT 1 FROM artifacts o
            WHERE o.delete_started_at IS NULL AND o.id <> a.id
              AND o.storage_uri COLLATE "C" = a.storage_uri)
    OR (a.storage_uri LIKE '%/' AND EXISTS (SELECT 1 FROM artifacts o
            WHERE o.delete_started_at IS NULL
              AND o.storage_uri COLLATE "C" > a.storage_uri
              AND o.storage_uri COLLATE "C" < left(a.storage_uri, -1) || '0'))
    OR EXISTS (SELECT 1 FROM generate_series(1, length(a.storage_uri) - 1) p
            JOIN artifacts o ON o.storage_uri COLLATE "C" = left(a.storage_uri, p)
            WHERE substr(a.storage_uri, p, 1) = '/' AND o.delete_started_at IS NULL))`

// overlapSQL is true when the URI in column names the checkpoint a's objects or some of
// them: the same URI, a file inside a checkpoint directory (a URI ending in "/"), or a
// directory that contains the checkpoint.
// NOTE: only the equality can use an index; the prefix tests scan model_versions and the
// runs with a last checkpoint, once per checkpoint.
func overlapSQL(column string) string {
	return "(" + column + " = a.storage_uri" +
		" OR (a.storage_uri LIKE '%/' AND starts_with(" + column + ", a.storage_uri))" +
		" OR (" + column + " LIKE '%/' AND starts_with(a.storage_uri, " + column + ")))"
}

// Runs with more than one live checkpoint, a page at a time by run id; a run with one has
// nothing to delete.
var loadPageSQL = `
WITH page AS (
    SELECT run_id FROM artifacts
    WHERE artifact_type = 'checkpoint' AND delete_started_at IS NULL AND deleted_at IS NULL
      AND run_id > $1
    GROUP BY run_id HAVING count(*) > 1
    ORDER BY run_id LIMIT $2
)
SELECT a.id, a.run_id, j.project_id, a.storage_uri, a.size_bytes, a.created_at,
       a.metadata_json -> 'step', a.metadata_json -> 'metrics', ` + referencedSQL + `
FROM page
JOIN artifacts a ON a.run_id = page.run_id
JOIN runs r ON r.id = a.run_id
JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
WHERE a.artifact_type = 'checkpoint' AND a.delete_started_at IS NULL AND a.deleted_at IS NULL
ORDER BY a.run_id, a.id`

// loadPage returns the live checkpoints of up to limit runs after the run id after, grouped
// by run in run id order.
func loadPage(ctx context.Context, db querier, after uuid.UUID, limit int) ([][]Checkpoint, error) {
	rows, err := db.Query(ctx, loadPageSQL, after, limit)
	if err != nil {
		return nil, fmt.Errorf("load checkpoints of runs after %s: %w", after, err)
	}
	defer rows.Close()

	var runs [][]Checkpoint
	for rows.Next() {
		var c Checkpoint
		var step, metrics []byte
		if err := rows.Scan(&c.ID, &c.RunID, &c.ProjectID, &c.URI, &c.SizeBytes, &c.CreatedAt,
			&step, &metrics, &c.Referenced); err != nil {
			return nil, fmt.Errorf("read checkpoint row: %w", err)
		}
		c.Step, c.Metrics = parseStep(step), parseMetrics(metrics)

		if n := len(runs); n == 0 || runs[n-1][0].RunID != c.RunID {
			runs = append(runs, nil)
		}
		runs[len(runs)-1] = append(runs[len(runs)-1], c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load checkpoints of runs after %s: %w", after, err)
	}
	return runs, nil
}

// parseStep returns a JSON number, or nil for anything else (absent, a string, null).
func parseStep(raw []byte) *float64 {
	var v float64
	if raw == nil || json.Unmarshal(raw, &v) != nil {
		return nil
	}
	return &v
}

// parseMetrics keeps the numeric entries of a JSON object.
func parseMetrics(raw []byte) map[string]float64 {
	var all map[string]json.RawMessage
	if raw == nil || json.Unmarshal(raw, &all) != nil {
		return nil
	}
	out := make(map[string]float64, len(all))
	for name, value := range all {
		var v float64
		if json.Unmarshal(value, &v) == nil {
			out[name] = v
		}
	}
	return out
}

// loadOverrides reads every project's policy override.
func loadOverrides(ctx context.Context, db querier) (map[string]override, error) {
	rows, err := db.Query(ctx, `
		SELECT project_id, keep_latest, best_metric, best_direction::text,
		       (extract(epoch FROM min_age) * 1000000)::bigint
		FROM checkpoint_retention_overrides`)
	if err != nil {
		return nil, fmt.Errorf("load checkpoint retention overrides: %w", err)
	}
	defer rows.Close()

	out := make(map[string]override)
	for rows.Next() {
		var project string
		var o override
		var direction *string
		var micros *int64
		if err := rows.Scan(&project, &o.KeepLatest, &o.BestMetric, &direction, &micros); err != nil {
			return nil, fmt.Errorf("read checkpoint retention override: %w", err)
		}
		if direction != nil {
			d := Direction(*direction)
			o.BestDirection = &d
		}
		if micros != nil {
			age := time.Duration(*micros) * time.Microsecond
			o.MinAge = &age
		}
		out[project] = o
	}
	return out, rows.Err()
}

// markDeleting is the first step of a delete. It sets delete_started_at on the rows still
// live and still unreferenced, and returns their ids. A row that a model version, a run or
// another artifact row started to point at since planning is left as it is.
func markDeleting(ctx context.Context, db querier, ids []uuid.UUID, now time.Time) (map[uuid.UUID]bool, error) {
	rows, err := db.Query(ctx, `
		UPDATE artifacts a SET delete_started_at = $2
		WHERE a.id = ANY($1) AND a.delete_started_at IS NULL AND a.deleted_at IS NULL
		  AND NOT `+referencedSQL+`
		RETURNING a.id`, ids, now)
	if err != nil {
		return nil, fmt.Errorf("mark %d checkpoints as being deleted: %w", len(ids), err)
	}
	marked, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("mark %d checkpoints as being deleted: %w", len(ids), err)
	}
	out := make(map[uuid.UUID]bool, len(marked))
	for _, id := range marked {
		out[id] = true
	}
	return out, nil
}

// pendingRow is an artifact whose delete started and did not finish.
type pendingRow struct {
	ID        uuid.UUID
	URI       string
	SizeBytes int64
	StartedAt time.Time
	// Referenced is true when a live row, a model version or a run names the row's objects
	// again, for example a checkpoint that a run wrote at the same URI after the mark.
	Referenced bool
}

// loadPending returns up to limit rows being deleted, with ids after after.
func loadPending(ctx context.Context, db querier, after uuid.UUID, limit int) ([]pendingRow, error) {
	rows, err := db.Query(ctx, `
		SELECT a.id, a.storage_uri, a.size_bytes, a.delete_started_at, `+referencedSQL+`
		FROM artifacts a
		WHERE a.delete_started_at IS NOT NULL AND a.deleted_at IS NULL AND a.id > $1
		ORDER BY a.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("load artifacts being deleted: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[pendingRow])
	if err != nil {
		return nil, fmt.Errorf("load artifacts being deleted: %w", err)
	}
	return out, nil
}

// markDeleted is the last step of a delete, once S3 confirmed it. deleted_at never precedes
// delete_started_at, even when the replica that started the delete had a clock ahead.
func markDeleted(ctx context.Context, db querier, ids []uuid.UUID, now time.Time) (int64, error) {
	tag, err := db.Exec(ctx, `
		UPDATE artifacts SET deleted_at = GREATEST(delete_started_at, $2)
		WHERE id = ANY($1) AND delete_started_at IS NOT NULL AND deleted_at IS NULL`, ids, now)
	if err != nil {
		return 0, fmt.Errorf("mark %d artifacts deleted: %w", len(ids), err)
	}
	return tag.RowsAffected(), nil
}
