-- Taking a run's share out of gpu_hours_daily subtracts from the existing row. Before, the
-- function inserted a row of negative counts and let ON CONFLICT add it, but PostgreSQL
-- checks a row's CHECK constraints before ON CONFLICT turns the insert into an update, so
-- every update of an ended run's hours and every delete of an ended run failed with a
-- CHECK violation. NOTE: deleting a job's first started run takes the job out of its day's
-- count, and the job's next started run does not take it over. Deleting several started
-- runs of one job in one statement still fails: each run's trigger runs after the whole
-- statement and takes a later run for the first start. Delete them one statement each,
-- last run first.
CREATE OR REPLACE FUNCTION gpu_hours_daily_add(r runs, sign integer) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF sign < 0 THEN
        UPDATE gpu_hours_daily d
        SET runs = d.runs - 1, jobs = d.jobs - run_is_first_start(r.job_id, r.run_number)::int,
            gpu_hours = d.gpu_hours - r.gpu_hours_used
        FROM jobs j
        WHERE j.id = r.job_id AND j.created_at = r.job_created_at
          AND d.day = (r.started_at AT TIME ZONE 'UTC')::date
          AND d.project_id = j.project_id AND d.org_id = j.org_id;
        RETURN;
    END IF;

    INSERT INTO gpu_hours_daily AS d (day, project_id, org_id, runs, jobs, gpu_hours)
    SELECT (r.started_at AT TIME ZONE 'UTC')::date, j.project_id, j.org_id, 1,
           run_is_first_start(r.job_id, r.run_number)::int, r.gpu_hours_used
    FROM jobs j
    WHERE j.id = r.job_id AND j.created_at = r.job_created_at
    ON CONFLICT (day, project_id, org_id) DO UPDATE
    SET runs = d.runs + EXCLUDED.runs, jobs = d.jobs + EXCLUDED.jobs,
        gpu_hours = d.gpu_hours + EXCLUDED.gpu_hours;
END
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION gpu_hours_daily_add(r runs, sign integer) RETURNS void
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
