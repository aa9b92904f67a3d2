package migrations_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/migrations"
)

// The runs of one job that ended before migration 008: a preempted run on 20 January and a
// completed one on 21 January, and a run of another job still running.
const sqlRunsBefore008 = `
SELECT ensure_job_partitions('2025-01-20 08:00+00', 0);
INSERT INTO projects (id, org_id, k8s_namespace) VALUES ('vision', 'acme', 'vision');
INSERT INTO jobs (id, created_at, project_id, org_id, job_type, status, config_json, max_runtime_seconds)
VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 'vision', 'acme', 'fine_tune',
        'queued', '{}', 3600),
       ('00000000-0000-0000-0000-000000000002', '2025-01-20 08:00+00', 'vision', 'acme', 'fine_tune',
        'queued', '{}', 3600);
UPDATE jobs SET status = 'running';
INSERT INTO runs (job_id, job_created_at, run_number, status, started_at, gpu_hours_used, gpu_milli, pod_name)
VALUES ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 1, 'preempted',
        '2025-01-20 09:00+00', 1.5, 1000, 'p1'),
       ('00000000-0000-0000-0000-000000000001', '2025-01-20 08:00+00', 2, 'completed',
        '2025-01-21 09:00+00', 2.25, 1000, 'p2'),
       ('00000000-0000-0000-0000-000000000002', '2025-01-20 08:00+00', 1, 'running',
        '2025-01-20 10:00+00', 4, 1000, 'p3');`

type dailyRow struct {
	day        string
	runs, jobs int
	hours      float64
}

// readDaily returns vision's gpu_hours_daily rows in day order.
func readDaily(t *testing.T, conn *pgx.Conn) []dailyRow {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT day::text, runs, jobs, gpu_hours::float8
		FROM gpu_hours_daily WHERE project_id = 'vision' AND org_id = 'acme' ORDER BY day`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dailyRow, error) {
		var d dailyRow
		err := row.Scan(&d.day, &d.runs, &d.jobs, &d.hours)
		return d, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func expectDaily(t *testing.T, got, want []dailyRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("gpu_hours_daily rows %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// latestWithRuns returns a connection to a new database at the latest version that holds
// the runs of sqlRunsBefore008.
func latestWithRuns(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	if err := migrations.Up(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sqlRunsBefore008); err != nil {
		t.Fatal(err)
	}
	return conn
}

// An ended run's hours corrected in SQL, and ended runs deleted one statement each, change
// the daily rows by the difference.
func TestGPUHoursDailyCorrection(t *testing.T) {
	ctx := context.Background()
	conn := latestWithRuns(t)
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 1, 1, 1.5}, {"2025-01-21", 1, 0, 2.25}})

	if _, err := conn.Exec(ctx, `UPDATE runs SET gpu_hours_used = 2 WHERE pod_name = 'p2'`); err != nil {
		t.Fatalf("correct an ended run's hours: %v", err)
	}
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 1, 1, 1.5}, {"2025-01-21", 1, 0, 2}})

	if _, err := conn.Exec(ctx, `DELETE FROM runs WHERE pod_name = 'p2'`); err != nil {
		t.Fatalf("delete an ended run: %v", err)
	}
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 1, 1, 1.5}, {"2025-01-21", 0, 0, 0}})

	if _, err := conn.Exec(ctx, `DELETE FROM runs WHERE pod_name = 'p1'`); err != nil {
		t.Fatalf("delete the job's first run after its later one: %v", err)
	}
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 0, 0, 0}, {"2025-01-21", 0, 0, 0}})
}

// Several started runs of one job deleted in one statement, as pruning old runs does, take
// the job out of its day's count once.
func TestGPUHoursDailyBulkDelete(t *testing.T) {
	ctx := context.Background()
	conn := latestWithRuns(t)

	tag, err := conn.Exec(ctx, `DELETE FROM runs WHERE job_id = '00000000-0000-0000-0000-000000000001'`)
	if err != nil {
		t.Fatalf("delete both ended runs of a job in one statement: %v", err)
	}
	if tag.RowsAffected() != 2 {
		t.Fatalf("deleted %d runs, want 2", tag.RowsAffected())
	}
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 0, 0, 0}, {"2025-01-21", 0, 0, 0}})
}

func TestGPUHoursDailyBackfill(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.NewEmptyDatabase(t))
	if err := migrations.To(ctx, conn, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, sqlRunsBefore008); err != nil {
		t.Fatal(err)
	}
	if err := migrations.To(ctx, conn, 8); err != nil {
		t.Fatal(err)
	}

	// The running run is left out: the report reads it from runs.
	expectDaily(t, readDaily(t, conn), []dailyRow{{"2025-01-20", 1, 1, 1.5}, {"2025-01-21", 1, 0, 2.25}})
}
