-- Rules the database enforces whoever writes: legal status transitions, columns that never
-- change after insert, and the job_queue table that mirrors the queued jobs.
--
-- Errors raised here carry SQLSTATEs of class SD so the store can map them to its sentinel
-- errors without parsing messages: SD001 illegal status transition, SD002 immutable column.

-- The legal job status transitions, as data. A transition not listed here is rejected.
CREATE TABLE job_status_transitions (
    from_status job_status NOT NULL,
    to_status   job_status NOT NULL,
    why         text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

INSERT INTO job_status_transitions (from_status, to_status, why) VALUES
    ('submitted', 'queued', 'accepted and waiting for admission'),
    ('submitted', 'cancelled', 'cancelled before it was queued'),
    ('submitted', 'failed', 'rejected after submission, for example by its workflow'),
    ('queued', 'running', 'admitted by the scheduler and handed to the dispatcher'),
    ('queued', 'paused', 'paused by a user while waiting'),
    ('queued', 'cancelled', 'cancelled while waiting'),
    ('queued', 'failed', 'can never run, for example its GPU model left the cluster'),
    ('running', 'queued', 'preempted, evicted or drained: requeued to resume from a checkpoint'),
    ('running', 'paused', 'paused by a user: its pod is stopped and it resumes later'),
    ('running', 'completed', 'its last run succeeded'),
    ('running', 'failed', 'out of attempts, or a failure that no retry can fix'),
    ('running', 'cancelled', 'cancelled while running: its pod is deleted'),
    ('running', 'eval_failed', 'trained, but its evaluation fell below the thresholds'),
    ('paused', 'queued', 'resumed by a user'),
    ('paused', 'cancelled', 'cancelled while paused'),
    ('completed', 'eval_failed', 'its evaluation, run after training, fell below the thresholds');

CREATE FUNCTION jobs_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.config_json IS DISTINCT FROM OLD.config_json THEN
        RAISE EXCEPTION 'config_json of job % cannot change after submission', OLD.id
            USING ERRCODE = 'SD002';
    END IF;

    IF NEW.status <> OLD.status AND NOT EXISTS (
        SELECT 1 FROM job_status_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'job % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'SD001';
    END IF;

    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_check_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_update();

-- A job enters the system as submitted or queued; every later status is reached through the
-- transitions above.
CREATE FUNCTION jobs_check_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status NOT IN ('submitted', 'queued') THEN
        RAISE EXCEPTION 'a new job starts as submitted or queued, not %', NEW.status
            USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_check_insert BEFORE INSERT ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_insert();

-- Keeps job_queue equal to the set of queued jobs, in the same transaction as the change.
CREATE FUNCTION jobs_sync_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'queued' AND NEW.status <> 'queued' THEN
        DELETE FROM job_queue WHERE job_id = OLD.id;
        RETURN NULL;
    END IF;

    IF NEW.status = 'queued' THEN
        INSERT INTO job_queue (job_id, job_created_at, project_id, priority, gpu_milli, gpu_models)
        VALUES (NEW.id, NEW.created_at, NEW.project_id, NEW.priority, NEW.gpu_milli, NEW.gpu_models)
        ON CONFLICT (job_id) DO UPDATE SET priority = EXCLUDED.priority;
    END IF;

    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_sync_queue AFTER INSERT OR UPDATE OF status, priority ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_sync_queue();

-- The legal run status transitions. pending and running move forward only; the four end
-- states are final.
CREATE FUNCTION runs_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND NOT (
        (OLD.status = 'pending' AND NEW.status IN ('running', 'failed', 'preempted', 'cancelled'))
        OR (OLD.status = 'running' AND NEW.status IN ('completed', 'failed', 'preempted', 'cancelled'))
    ) THEN
        RAISE EXCEPTION 'run % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'SD001';
    END IF;

    IF NEW.job_id <> OLD.job_id OR NEW.run_number <> OLD.run_number THEN
        RAISE EXCEPTION 'run % cannot change its job or number', OLD.id USING ERRCODE = 'SD002';
    END IF;

    RETURN NEW;
END
$$;

CREATE TRIGGER runs_check_update BEFORE UPDATE ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_check_update();

-- An approver decides on exactly what was requested: the evaluation snapshot, the version
-- and the target stage are fixed at insert.
CREATE FUNCTION approvals_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.eval_snapshot_json IS DISTINCT FROM OLD.eval_snapshot_json
        OR NEW.model_version_id <> OLD.model_version_id
        OR NEW.target_stage <> OLD.target_stage
        OR NEW.requested_by <> OLD.requested_by THEN
        RAISE EXCEPTION 'approval % cannot change what was requested', OLD.id
            USING ERRCODE = 'SD002';
    END IF;

    IF OLD.status <> 'pending' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'approval % was already %', OLD.id, OLD.status USING ERRCODE = 'SD001';
    END IF;

    RETURN NEW;
END
$$;

CREATE TRIGGER approvals_check_update BEFORE UPDATE ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_check_update();

---- create above / drop below ----

DROP TRIGGER approvals_check_update ON approvals;
DROP FUNCTION approvals_check_update();
DROP TRIGGER runs_check_update ON runs;
DROP FUNCTION runs_check_update();
DROP TRIGGER jobs_sync_queue ON jobs;
DROP FUNCTION jobs_sync_queue();
DROP TRIGGER jobs_check_insert ON jobs;
DROP FUNCTION jobs_check_insert();
DROP TRIGGER jobs_check_update ON jobs;
DROP FUNCTION jobs_check_update();
DROP TABLE job_status_transitions;
