-- What admission needs beyond the design's tables: the GPU capacity of the cluster by model,
-- as the dispatcher last saw it, and the columns that tie a run to the model and pod it got.

-- GPU capacity by model, in thousandths of a GPU. The dispatcher writes capacity_milli from
-- the schedulable, ready nodes it watches; admission adds to allocated_milli and the end of
-- a run subtracts. allocated_milli may exceed capacity_milli after nodes are cordoned or
-- lost; admission then waits until enough runs end.
CREATE TABLE gpu_models (
    model           varchar(100) PRIMARY KEY,
    capacity_milli  bigint NOT NULL DEFAULT 0 CHECK (capacity_milli >= 0),
    allocated_milli bigint NOT NULL DEFAULT 0 CHECK (allocated_milli >= 0),
    nodes           integer NOT NULL DEFAULT 0 CHECK (nodes >= 0),
    largest_node_milli bigint NOT NULL DEFAULT 0 CHECK (largest_node_milli >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE runs
    ADD COLUMN gpu_model varchar(100),
    ADD COLUMN namespace varchar(63) NOT NULL DEFAULT '',
    ADD COLUMN pod_created_at timestamptz,
    ADD COLUMN gpu_hours_reserved numeric(14, 4) NOT NULL DEFAULT 0 CHECK (gpu_hours_reserved >= 0);

CREATE INDEX runs_live_idx ON runs (status) WHERE status IN ('pending', 'running');

ALTER TABLE job_queue
    ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN max_runtime_seconds integer NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION jobs_sync_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'queued' AND NEW.status <> 'queued' THEN
        DELETE FROM job_queue WHERE job_id = OLD.id;
        RETURN NULL;
    END IF;

    IF NEW.status = 'queued' THEN
        INSERT INTO job_queue (job_id, job_created_at, project_id, priority, gpu_milli, gpu_models,
                               max_runtime_seconds)
        VALUES (NEW.id, NEW.created_at, NEW.project_id, NEW.priority, NEW.gpu_milli, NEW.gpu_models,
                NEW.max_runtime_seconds)
        ON CONFLICT (job_id) DO UPDATE SET priority = EXCLUDED.priority;
        -- Wakes schedulers that LISTEN, at commit; PostgreSQL folds the notifications of one
        -- transaction into one.
        PERFORM pg_notify('schedulerd_queue', '');
    END IF;

    RETURN NULL;
END
$$;

---- create above / drop below ----

CREATE OR REPLACE FUNCTION jobs_sync_queue() RETURNS trigger
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

ALTER TABLE job_queue DROP COLUMN max_runtime_seconds, DROP COLUMN queued_at;
DROP INDEX runs_live_idx;
ALTER TABLE runs DROP COLUMN gpu_hours_reserved, DROP COLUMN pod_created_at,
    DROP COLUMN namespace, DROP COLUMN gpu_model;
DROP TABLE gpu_models;
