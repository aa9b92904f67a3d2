-- Deleting runs takes their share out of gpu_hours_daily once per statement instead of
-- once per row. The row trigger ran after the whole statement, when every deleted run was
-- already gone, so with several started runs of one job in one statement (pruning old
-- runs, say) each later run looked like its job's first start, the job was taken out of
-- its day's count more than once, and the CHECK on jobs failed the statement. The
-- statement trigger sees the deleted rows together and finds each job's first start among
-- the runs deleted and the runs kept.
-- NOTE: deleting a job's first started run still takes the job out of its day's count,
-- and the job's next started run does not take it over.
DROP TRIGGER runs_sync_gpu_hours_daily_delete ON runs;

CREATE FUNCTION runs_deleted_gpu_hours_daily() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH ended AS (
        SELECT g.job_id, g.job_created_at, g.started_at, g.gpu_hours_used,
               NOT EXISTS (SELECT 1 FROM runs o
                           WHERE o.job_id = g.job_id AND o.run_number < g.run_number
                             AND o.started_at IS NOT NULL)
               AND NOT EXISTS (SELECT 1 FROM deleted_runs o
                               WHERE o.job_id = g.job_id AND o.run_number < g.run_number
                                 AND o.started_at IS NOT NULL) AS first_start
        FROM deleted_runs g
        WHERE g.status NOT IN ('pending', 'running') AND g.started_at IS NOT NULL
    ), shares AS (
        SELECT (e.started_at AT TIME ZONE 'UTC')::date AS day, j.project_id, j.org_id,
               count(*) AS runs, count(*) FILTER (WHERE e.first_start) AS jobs,
               sum(e.gpu_hours_used) AS gpu_hours
        FROM ended e
        JOIN jobs j ON j.id = e.job_id AND j.created_at = e.job_created_at
        GROUP BY 1, 2, 3
    )
    UPDATE gpu_hours_daily d
    SET runs = d.runs - s.runs, jobs = d.jobs - s.jobs, gpu_hours = d.gpu_hours - s.gpu_hours
    FROM shares s
    WHERE d.day = s.day AND d.project_id = s.project_id AND d.org_id = s.org_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER runs_deleted_gpu_hours_daily AFTER DELETE ON runs
    REFERENCING OLD TABLE AS deleted_runs
    FOR EACH STATEMENT EXECUTE FUNCTION runs_deleted_gpu_hours_daily();

---- create above / drop below ----

DROP TRIGGER runs_deleted_gpu_hours_daily ON runs;
DROP FUNCTION runs_deleted_gpu_hours_daily();

CREATE TRIGGER runs_sync_gpu_hours_daily_delete AFTER DELETE ON runs
    FOR EACH ROW WHEN (OLD.status NOT IN ('pending', 'running'))
    EXECUTE FUNCTION runs_sync_gpu_hours_daily();
