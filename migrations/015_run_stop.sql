-- A run that schedulerd stops (a pause, a cancel, a drain deadline, the max-runtime
-- backstop) stays live until its pod is gone, and then ends as recorded here. Before, the
-- run ended when the stop started, while its container still ran through its grace period:
-- a checkpoint saved on SIGTERM was rejected, and a job resumed at once could start its
-- next pod beside the stopping one. A stop is recorded once and kept.
ALTER TABLE runs
    ADD COLUMN stop_status run_status CHECK (stop_status IN ('failed', 'preempted', 'cancelled')),
    ADD COLUMN stop_reason text,
    ADD COLUMN stop_retryable boolean NOT NULL DEFAULT false,
    ADD COLUMN stop_requested_at timestamptz,
    ADD CONSTRAINT runs_stop_complete CHECK ((stop_status IS NULL) = (stop_requested_at IS NULL));

---- create above / drop below ----

ALTER TABLE runs
    DROP CONSTRAINT runs_stop_complete,
    DROP COLUMN stop_requested_at,
    DROP COLUMN stop_retryable,
    DROP COLUMN stop_reason,
    DROP COLUMN stop_status;
