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

-- A paused job fails when its run failed with no attempt left before the pause stopped its
-- pod, as the max-runtime backstop's stop can: resuming it would outlive its attempts.
INSERT INTO job_status_transitions (from_status, to_status, why) VALUES
    ('paused', 'failed', 'its run failed with no attempt left before the pause stopped its pod');

---- create above / drop below ----

DELETE FROM job_status_transitions WHERE from_status = 'paused' AND to_status = 'failed';
ALTER TABLE runs
    DROP CONSTRAINT runs_stop_complete,
    DROP COLUMN stop_requested_at,
    DROP COLUMN stop_retryable,
    DROP COLUMN stop_reason,
    DROP COLUMN stop_status;
