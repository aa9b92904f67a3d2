-- Cron task outcomes and checkpoint retention. River's tables, the durable queue that runs
-- the cron tasks, are not created here: cron.MigrateRiver applies them, in schema river, with
-- River's own migrator.

-- The outcome of each cron task's latest run, one row per task, written by the run.
CREATE TABLE cron_task_status (
    task                  varchar(100) PRIMARY KEY CHECK (task <> ''),
    -- Firing time of the latest finished run; retries of one firing share it.
    last_scheduled_at     timestamptz NOT NULL,
    last_started_at       timestamptz NOT NULL,
    last_finished_at      timestamptz NOT NULL,
    last_success_at       timestamptz,
    last_duration_seconds double precision NOT NULL CHECK (last_duration_seconds >= 0),
    -- The latest failure, kept after later successes; last_success_at > last_error_at
    -- means the task has recovered.
    last_error            text,
    last_error_at         timestamptz,
    -- Failed runs since the last success, retries included.
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    failures_total        bigint NOT NULL DEFAULT 0 CHECK (failures_total >= 0)
);

CREATE TYPE metric_direction AS ENUM ('min', 'max');

-- Per-project changes to the global checkpoint retention policy, which is configuration. A
-- NULL column keeps the global value. best_metric '' turns the best-checkpoint rule off for
-- the project.
CREATE TABLE checkpoint_retention_overrides (
    project_id     varchar(63) PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    keep_latest    integer CHECK (keep_latest >= 0),
    best_metric    varchar(200),
    best_direction metric_direction,
    min_age        interval CHECK (min_age >= interval '0'),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (best_metric IS NULL OR best_metric = '' OR best_direction IS NOT NULL)
);

-- Deleting a checkpoint takes three steps so that a crash at any point leaves a row that
-- tells the truth: delete_started_at is set before the object is deleted (the object may be
-- gone from then on), and deleted_at after S3 confirmed the delete. Retention finishes rows
-- with delete_started_at set and deleted_at NULL on its next run. Rows deleted before this
-- migration get delete_started_at = deleted_at.
ALTER TABLE artifacts ADD COLUMN delete_started_at timestamptz;
UPDATE artifacts SET delete_started_at = deleted_at WHERE deleted_at IS NOT NULL;
ALTER TABLE artifacts ADD CONSTRAINT artifacts_delete_order_check
    CHECK (deleted_at IS NULL OR (delete_started_at IS NOT NULL AND deleted_at >= delete_started_at));

CREATE INDEX artifacts_deleting_idx ON artifacts (id)
    WHERE delete_started_at IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX artifacts_live_checkpoints_idx ON artifacts (run_id)
    WHERE artifact_type = 'checkpoint' AND delete_started_at IS NULL;

-- Retention keeps every checkpoint a model version or a resumable run points at, and looks
-- them up by URI.
CREATE INDEX model_versions_artifact_uri_idx ON model_versions (artifact_uri);
CREATE INDEX runs_last_checkpoint_uri_idx ON runs (last_checkpoint_uri)
    WHERE last_checkpoint_uri IS NOT NULL;

---- create above / drop below ----

DROP INDEX runs_last_checkpoint_uri_idx;
DROP INDEX model_versions_artifact_uri_idx;
DROP INDEX artifacts_live_checkpoints_idx;
DROP INDEX artifacts_deleting_idx;
ALTER TABLE artifacts DROP CONSTRAINT artifacts_delete_order_check;
-- A checkpoint whose deletion started may have lost its object already. Without
-- delete_started_at its row would look live and never be finished, so it is recorded as
-- deleted; its object, if S3 still has it, stays there unreferenced.
UPDATE artifacts SET deleted_at = delete_started_at
WHERE delete_started_at IS NOT NULL AND deleted_at IS NULL;
ALTER TABLE artifacts DROP COLUMN delete_started_at;
DROP TABLE checkpoint_retention_overrides;
DROP TYPE metric_direction;
DROP TABLE cron_task_status;
