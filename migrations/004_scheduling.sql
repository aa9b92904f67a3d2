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
    -- The most CPU and memory one node of the model offers, so that admission never picks
    -- a model none of whose nodes can hold the job's pod.
    largest_node_cpu_milli bigint NOT NULL DEFAULT 0 CHECK (largest_node_cpu_milli >= 0),
    largest_node_memory_mib bigint NOT NULL DEFAULT 0 CHECK (largest_node_memory_mib >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE runs
    ADD COLUMN gpu_model varchar(100),
    ADD COLUMN namespace varchar(63) NOT NULL DEFAULT '',
    ADD COLUMN pod_created_at timestamptz,
    ADD COLUMN gpu_hours_reserved numeric(14, 4) NOT NULL DEFAULT 0 CHECK (gpu_hours_reserved >= 0);

CREATE INDEX runs_live_idx ON runs (status) WHERE status IN ('pending', 'running');

-- A pod's CPU and memory request, copied from config_json at submission like gpu_milli.
ALTER TABLE jobs
    ADD COLUMN cpu_milli bigint NOT NULL DEFAULT 0 CHECK (cpu_milli >= 0),
    ADD COLUMN memory_mib bigint NOT NULL DEFAULT 0 CHECK (memory_mib >= 0);

ALTER TABLE job_queue
    ADD COLUMN queued_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN max_runtime_seconds integer NOT NULL DEFAULT 1,
    ADD COLUMN cpu_milli bigint NOT NULL DEFAULT 0,
    ADD COLUMN memory_mib bigint NOT NULL DEFAULT 0;

-- Jobs stored before this migration get the CPU and memory requests that submission now
-- copies from config_json, and queued jobs get their maximum run time, which sizes the
-- reservation that admission takes. Left at the defaults, a queued job reserved one second
-- of GPU time however long it ran, and the end of its run charged no more than that.
CREATE FUNCTION pg_temp.resource_request(config jsonb, key text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(config -> 'resources' -> key) = 'number'
                THEN least(greatest((config -> 'resources' ->> key)::numeric, 0), 1e15)::bigint
                ELSE 0 END
$$;

UPDATE jobs SET cpu_milli = pg_temp.resource_request(config_json, 'cpu_milli'),
                memory_mib = pg_temp.resource_request(config_json, 'memory_mib')
WHERE config_json -> 'resources' ?| ARRAY['cpu_milli', 'memory_mib'];

DROP FUNCTION pg_temp.resource_request(jsonb, text);

UPDATE job_queue q SET max_runtime_seconds = j.max_runtime_seconds, cpu_milli = j.cpu_milli,
                       memory_mib = j.memory_mib
FROM jobs j
WHERE j.id = q.job_id AND j.created_at = q.job_created_at;

CREATE OR REPLACE FUNCTION jobs_sync_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.status = 'queued' AND NEW.status <> 'queued' THEN
        DELETE FROM job_queue WHERE job_id = OLD.id;
        RETURN NULL;
    END IF;

    IF NEW.status = 'queued' THEN
        INSERT INTO job_queue (job_id, job_created_at, project_id, priority, gpu_milli, gpu_models,
                               max_runtime_seconds, cpu_milli, memory_mib)
        VALUES (NEW.id, NEW.created_at, NEW.project_id, NEW.priority, NEW.gpu_milli, NEW.gpu_models,
                NEW.max_runtime_seconds, NEW.cpu_milli, NEW.memory_mib)
        ON CONFLICT (job_id) DO UPDATE SET priority = EXCLUDED.priority;
        -- Wakes schedulers that LISTEN, at commit; PostgreSQL folds the notifications of one
        -- transaction into one.
        PERFORM pg_notify('schedulerd_queue', '');
    END IF;

    RETURN NULL;
END
$$;

---- create above / drop below ----

-- A live run's reservation exists only in the columns dropped below: without them its end
-- would release nothing, and its project's reserved GPU-hours would never come down.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM runs WHERE status IN ('pending', 'running')) THEN
        RAISE EXCEPTION 'cannot migrate below version 4 while runs are pending or running: their GPU-hour reservations would be lost'
            USING HINT = 'Drain the queues (schedulerd queue drain PROJECT) and wait for the runs to end, then migrate down again.';
    END IF;
END
$$;

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

ALTER TABLE job_queue DROP COLUMN memory_mib, DROP COLUMN cpu_milli, DROP COLUMN max_runtime_seconds,
    DROP COLUMN queued_at;
ALTER TABLE jobs DROP COLUMN memory_mib, DROP COLUMN cpu_milli;
DROP INDEX runs_live_idx;
ALTER TABLE runs DROP COLUMN gpu_hours_reserved, DROP COLUMN pod_created_at,
    DROP COLUMN namespace, DROP COLUMN gpu_model;
DROP TABLE gpu_models;
