-- The whole schedulerd schema: projects and quotas, month-partitioned jobs, runs and their
-- metrics, artifacts, the model registry and approvals. docs/design/schema.md explains the
-- choices (composite job keys, the idempotency table, the queued-job table).

CREATE TYPE job_type AS ENUM ('fine_tune', 'hpo', 'retrain', 'rlhf', 'eval_only');

CREATE TYPE job_status AS ENUM (
    'submitted', 'queued', 'running', 'paused', 'completed', 'failed', 'cancelled', 'eval_failed'
);

-- pending (pod created, not yet running) and cancelled extend the four run states of the
-- design: a run row exists from the moment its pod is created, so a crash between creating
-- the pod and seeing it run can always be recovered from the row.
CREATE TYPE run_status AS ENUM ('pending', 'running', 'completed', 'failed', 'preempted', 'cancelled');

CREATE TYPE artifact_type AS ENUM ('checkpoint', 'model', 'adapter', 'log', 'eval_report');

CREATE TYPE model_stage AS ENUM ('dev', 'staging', 'prod', 'archived');

CREATE TYPE approval_status AS ENUM ('pending', 'approved', 'rejected');

CREATE TYPE approval_target_stage AS ENUM ('staging', 'prod');

CREATE TABLE projects (
    id            varchar(63) PRIMARY KEY CHECK (id ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'),
    org_id        varchar(63) NOT NULL CHECK (org_id <> ''),
    display_name  varchar(200) NOT NULL DEFAULT '',
    k8s_namespace varchar(63) NOT NULL CHECK (k8s_namespace ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'),
    owner         varchar(200) NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- One quota row per project. gpu_hours_reserved holds what admitted jobs may still use
-- (GPUs times their maximum run time), so used + reserved never passes the budget.
CREATE TABLE quotas (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id          varchar(63) NOT NULL UNIQUE REFERENCES projects (id) ON DELETE CASCADE,
    gpu_hours_budget    numeric(14, 4) NOT NULL CHECK (gpu_hours_budget >= 0),
    gpu_hours_used      numeric(14, 4) NOT NULL DEFAULT 0 CHECK (gpu_hours_used >= 0),
    gpu_hours_reserved  numeric(14, 4) NOT NULL DEFAULT 0 CHECK (gpu_hours_reserved >= 0),
    max_concurrent_jobs integer NOT NULL CHECK (max_concurrent_jobs >= 0),
    current_concurrent  integer NOT NULL DEFAULT 0
        CHECK (current_concurrent >= 0 AND current_concurrent <= max_concurrent_jobs),
    priority_tier       integer NOT NULL DEFAULT 5 CHECK (priority_tier BETWEEN 0 AND 100),
    period_start        date NOT NULL,
    period_end          date NOT NULL,
    drained_at          timestamptz,
    CHECK (period_end > period_start)
);

CREATE TABLE jobs (
    id                   uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    idempotency_key      varchar(200),
    project_id           varchar(63) NOT NULL REFERENCES projects (id),
    org_id               varchar(63) NOT NULL,
    job_type             job_type NOT NULL,
    status               job_status NOT NULL DEFAULT 'queued',
    priority             integer NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 100),
    config_json          jsonb NOT NULL,
    temporal_workflow_id varchar(200),
    parent_job_id        uuid,
    parent_created_at    timestamptz,
    updated_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz,
    error_message        text,
    tags                 jsonb NOT NULL DEFAULT '{}',
    -- Scheduling columns, copied from config_json at submission so that admission reads
    -- plain columns. gpu_milli is thousandths of a GPU: two whole GPUs are 2000.
    gpu_milli            integer NOT NULL DEFAULT 0 CHECK (gpu_milli BETWEEN 0 AND 64000),
    gpu_models           text[] NOT NULL DEFAULT '{}',
    max_runtime_seconds  integer NOT NULL CHECK (max_runtime_seconds > 0),
    max_attempts         integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    run_count            integer NOT NULL DEFAULT 0 CHECK (run_count >= 0),
    wait_reason          text,
    PRIMARY KEY (id, created_at),
    CHECK ((parent_job_id IS NULL) = (parent_created_at IS NULL)),
    FOREIGN KEY (parent_job_id, parent_created_at) REFERENCES jobs (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX jobs_project_status_idx ON jobs (project_id, status);
CREATE INDEX jobs_queue_order_idx ON jobs (status, priority DESC, created_at);
CREATE INDEX jobs_type_created_idx ON jobs (job_type, created_at);
CREATE INDEX jobs_created_idx ON jobs (created_at);
CREATE INDEX jobs_parent_idx ON jobs (parent_job_id) WHERE parent_job_id IS NOT NULL;

-- Idempotency keys live outside the partitioned table, because PostgreSQL only enforces a
-- unique index on a partitioned table per partition unless it includes created_at. The key is
-- scoped to the project, and request_sha256 tells a retry from a different request.
CREATE TABLE job_idempotency_keys (
    project_id      varchar(63) NOT NULL REFERENCES projects (id),
    idempotency_key varchar(200) NOT NULL CHECK (idempotency_key <> ''),
    job_id          uuid NOT NULL UNIQUE,
    job_created_at  timestamptz NOT NULL,
    request_sha256  bytea NOT NULL CHECK (length(request_sha256) = 32),
    PRIMARY KEY (project_id, idempotency_key),
    FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at)
        ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
);

-- The queued jobs, and only those: a trigger on jobs keeps this table equal to the set of
-- jobs whose status is queued. The scheduler dequeues from here, so its cost follows the
-- queue length rather than the months of history kept in jobs.
CREATE TABLE job_queue (
    job_id         uuid PRIMARY KEY,
    job_created_at timestamptz NOT NULL,
    project_id     varchar(63) NOT NULL,
    priority       integer NOT NULL,
    gpu_milli      integer NOT NULL,
    gpu_models     text[] NOT NULL,
    FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at) ON DELETE CASCADE
);

CREATE INDEX job_queue_order_idx ON job_queue (priority DESC, job_created_at, job_id);

CREATE TABLE runs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id               uuid NOT NULL,
    job_created_at       timestamptz NOT NULL,
    run_number           integer NOT NULL CHECK (run_number >= 1),
    status               run_status NOT NULL DEFAULT 'pending',
    created_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz,
    gpu_hours_used       numeric(14, 6) NOT NULL DEFAULT 0 CHECK (gpu_hours_used >= 0),
    gpu_milli            integer NOT NULL CHECK (gpu_milli >= 0),
    last_checkpoint_uri  varchar(1024),
    last_checkpoint_step integer CHECK (last_checkpoint_step >= 0),
    metrics_json         jsonb NOT NULL DEFAULT '{}',
    worker_node          varchar(253),
    pod_name             varchar(253) NOT NULL,
    end_reason           text,
    exit_code            integer,
    UNIQUE (job_id, run_number),
    FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at)
);

CREATE INDEX runs_status_idx ON runs (status);

-- Metric samples a run reports while it trains (loss per step and so on). The final
-- snapshot is runs.metrics_json.
CREATE TABLE run_metrics (
    run_id      uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name        varchar(200) NOT NULL,
    step        bigint NOT NULL CHECK (step >= 0),
    value       double precision NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, name, step)
);

CREATE TABLE artifacts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id          uuid NOT NULL REFERENCES runs (id),
    artifact_type   artifact_type NOT NULL,
    storage_uri     varchar(1024) NOT NULL CHECK (storage_uri <> ''),
    checksum_sha256 char(64) NOT NULL CHECK (checksum_sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    metadata_json   jsonb NOT NULL DEFAULT '{}',
    deleted_at      timestamptz
);

CREATE INDEX artifacts_run_type_idx ON artifacts (run_id, artifact_type);
CREATE INDEX artifacts_created_idx ON artifacts (created_at);

CREATE TABLE models (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id     varchar(63) NOT NULL REFERENCES projects (id),
    model_name     varchar(200) NOT NULL CHECK (model_name <> ''),
    base_model_ref varchar(200),
    created_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (project_id, model_name)
);

CREATE TABLE model_versions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_id          uuid NOT NULL REFERENCES models (id),
    version_number    integer NOT NULL CHECK (version_number >= 1),
    stage             model_stage NOT NULL DEFAULT 'dev',
    job_id            uuid NOT NULL,
    job_created_at    timestamptz NOT NULL,
    run_id            uuid REFERENCES runs (id),
    artifact_uri      varchar(1024) NOT NULL,
    dataset_version   varchar(200),
    config_hash       varchar(128),
    code_commit       varchar(64),
    mlflow_run_id     varchar(200),
    eval_metrics_json jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    promoted_at       timestamptz,
    promoted_by       varchar(200),
    UNIQUE (model_id, version_number),
    FOREIGN KEY (job_id, job_created_at) REFERENCES jobs (id, created_at)
);

CREATE INDEX model_versions_stage_idx ON model_versions (model_id, stage);
CREATE INDEX model_versions_latest_idx ON model_versions (model_id, version_number DESC);
CREATE UNIQUE INDEX model_versions_one_prod_idx ON model_versions (model_id) WHERE stage = 'prod';

CREATE TABLE approvals (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    model_version_id   uuid NOT NULL REFERENCES model_versions (id),
    requested_by       varchar(200) NOT NULL CHECK (requested_by <> ''),
    approved_by        varchar(200),
    status             approval_status NOT NULL DEFAULT 'pending',
    target_stage       approval_target_stage NOT NULL,
    eval_snapshot_json jsonb NOT NULL,
    requested_at       timestamptz NOT NULL DEFAULT now(),
    decided_at         timestamptz,
    reason             text,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
);

CREATE INDEX approvals_pending_idx ON approvals (status, requested_at);
CREATE INDEX approvals_version_idx ON approvals (model_version_id);

---- create above / drop below ----

DROP TABLE approvals;
DROP TABLE model_versions;
DROP TABLE models;
DROP TABLE artifacts;
DROP TABLE run_metrics;
DROP TABLE runs;
DROP TABLE job_queue;
DROP TABLE job_idempotency_keys;
DROP TABLE jobs;
DROP TABLE quotas;
DROP TABLE projects;
DROP TYPE approval_target_stage;
DROP TYPE approval_status;
DROP TYPE model_stage;
DROP TYPE artifact_type;
DROP TYPE run_status;
DROP TYPE job_status;
DROP TYPE job_type;
