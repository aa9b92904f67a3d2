-- jobs_sync_queue ran its PL/pgSQL function once per updated job, and a DELETE from
-- job_queue in it for each job that left the queue: 64 calls and 64 DELETEs for one
-- admission of 64 jobs, a tenth of the server's time in that statement. Updates now sync
-- job_queue once per statement, from the statement's transition tables, with one DELETE and
-- one INSERT. A trigger with transition tables cannot name columns, so it runs after every
-- UPDATE of jobs; one that moves no job in or out of the queue and changes no queued
-- job's priority finds nothing to do. Inserts keep the row trigger, now only for queued jobs:
-- submissions insert one job at a time.
DROP TRIGGER jobs_sync_queue ON jobs;

CREATE TRIGGER jobs_sync_queue AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION jobs_sync_queue();

CREATE FUNCTION jobs_sync_queue_updates() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_queue q
    USING old_jobs o, new_jobs n
    WHERE n.id = o.id AND n.created_at = o.created_at AND q.job_id = o.id
      AND o.status = 'queued' AND n.status <> 'queued';

    INSERT INTO job_queue (job_id, job_created_at, project_id, priority, gpu_milli, gpu_models,
                           max_runtime_seconds, cpu_milli, memory_mib)
    SELECT n.id, n.created_at, n.project_id, n.priority, n.gpu_milli, n.gpu_models,
           n.max_runtime_seconds, n.cpu_milli, n.memory_mib
    FROM new_jobs n
    JOIN old_jobs o ON o.id = n.id AND o.created_at = n.created_at
    WHERE n.status = 'queued' AND (o.status <> 'queued' OR o.priority <> n.priority)
    ON CONFLICT (job_id) DO UPDATE SET priority = EXCLUDED.priority;
    -- Wakes schedulers that LISTEN, at commit, as jobs_sync_queue does for inserts.
    IF FOUND THEN
        PERFORM pg_notify('schedulerd_queue', '');
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_sync_queue_updates AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobs_sync_queue_updates();

---- create above / drop below ----

DROP TRIGGER jobs_sync_queue_updates ON jobs;
DROP FUNCTION jobs_sync_queue_updates();
DROP TRIGGER jobs_sync_queue ON jobs;

CREATE TRIGGER jobs_sync_queue AFTER INSERT OR UPDATE OF status, priority ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_sync_queue();
