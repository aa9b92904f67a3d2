-- GPU-hours of ended runs by project, org and UTC day of the run's start. The GPU-hour
-- report sums these rows and adds the runs still running, so a month over years of history
-- reads a few hundred rows instead of every run of the month joined to its job.
--
-- A trigger on runs keeps the table equal to the sum over ended runs that started, in the
-- transaction that ends the run (store.EndRun). Because the database maintains it, a
-- replica still running the previous binary during a rolling upgrade keeps it right too.
CREATE TABLE gpu_hours_daily (
    day        date NOT NULL,
    project_id varchar(63) NOT NULL,
    org_id     varchar(63) NOT NULL,
    runs       bigint NOT NULL CHECK (runs >= 0),
    -- Jobs whose first started run is counted in this row, so that a job retried over
    -- several days or months counts once, on the day it first started.
    jobs       bigint NOT NULL CHECK (jobs >= 0),
    gpu_hours  numeric(20, 6) NOT NULL CHECK (gpu_hours >= 0),
    PRIMARY KEY (day, project_id, org_id)
);

-- Whether run is the first run of its job that started: the one that counts the job.
CREATE FUNCTION run_is_first_start(job_id uuid, run_number integer) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM runs o
        WHERE o.job_id = $1 AND o.run_number < $2 AND o.started_at IS NOT NULL)
$$;

-- Adds sign times one ended run to its day's row. The job supplies project and org.
CREATE FUNCTION gpu_hours_daily_add(r runs, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gpu_hours_daily AS d (day, project_id, org_id, runs, jobs, gpu_hours)
    SELECT (r.started_at AT TIME ZONE 'UTC')::date, j.project_id, j.org_id, sign,
           sign * run_is_first_start(r.job_id, r.run_number)::int, sign * r.gpu_hours_used
    FROM jobs j
    WHERE j.id = r.job_id AND j.created_at = r.job_created_at
    ON CONFLICT (day, project_id, org_id) DO UPDATE
    SET runs = d.runs + EXCLUDED.runs, jobs = d.jobs + EXCLUDED.jobs,
        gpu_hours = d.gpu_hours + EXCLUDED.gpu_hours;
END
$$;

-- A run counts once it has ended after starting. An update takes the old row's share
-- out and puts the new one's in, which also covers hours corrected after the end.
CREATE FUNCTION runs_sync_gpu_hours_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status NOT IN ('pending', 'running')
            AND OLD.started_at IS NOT NULL THEN
        PERFORM gpu_hours_daily_add(OLD, -1);
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status NOT IN ('pending', 'running')
            AND NEW.started_at IS NOT NULL THEN
        PERFORM gpu_hours_daily_add(NEW, 1);
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN clauses keep the trigger off the hot updates of live runs (pod created,
-- started, hours accrued): only a change to an ended run calls the function.
CREATE TRIGGER runs_sync_gpu_hours_daily_update
    AFTER UPDATE OF status, started_at, gpu_hours_used, job_id, run_number ON runs
    FOR EACH ROW
    WHEN (OLD.status NOT IN ('pending', 'running') OR NEW.status NOT IN ('pending', 'running'))
    EXECUTE FUNCTION runs_sync_gpu_hours_daily();

CREATE TRIGGER runs_sync_gpu_hours_daily_insert AFTER INSERT ON runs
    FOR EACH ROW WHEN (NEW.status NOT IN ('pending', 'running'))
    EXECUTE FUNCTION runs_sync_gpu_hours_daily();

CREATE TRIGGER runs_sync_gpu_hours_daily_delete AFTER DELETE ON runs
    FOR EACH ROW WHEN (OLD.status NOT IN ('pending', 'running'))
    EXECUTE FUNCTION runs_sync_gpu_hours_daily();

-- The runs that ended before this migration. The triggers above already hold a lock on
-- runs that blocks writers until the migration commits, so no run ends in between.
-- NOTE: this reads and sorts every started run once, and runs cannot be written meanwhile.
-- On 10M jobs and 30M runs it took 53 s on 2 cores (make bench times it).
INSERT INTO gpu_hours_daily (day, project_id, org_id, runs, jobs, gpu_hours)
SELECT (s.started_at AT TIME ZONE 'UTC')::date, j.project_id, j.org_id, count(*),
       count(*) FILTER (WHERE s.start_rank = 1), sum(s.gpu_hours_used)
FROM (
    SELECT r.job_id, r.job_created_at, r.status, r.started_at, r.gpu_hours_used,
           row_number() OVER (PARTITION BY r.job_id ORDER BY r.run_number) AS start_rank
    FROM runs r
    WHERE r.started_at IS NOT NULL
) s
JOIN jobs j ON j.id = s.job_id AND j.created_at = s.job_created_at
WHERE s.status NOT IN ('pending', 'running')
GROUP BY 1, 2, 3;

---- create above / drop below ----

DROP TRIGGER runs_sync_gpu_hours_daily_delete ON runs;
DROP TRIGGER runs_sync_gpu_hours_daily_insert ON runs;
DROP TRIGGER runs_sync_gpu_hours_daily_update ON runs;
DROP FUNCTION runs_sync_gpu_hours_daily();
DROP FUNCTION gpu_hours_daily_add(runs, integer);
DROP FUNCTION run_is_first_start(uuid, integer);
DROP TABLE gpu_hours_daily;
