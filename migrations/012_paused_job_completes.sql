-- A paused job completes when its run completed before the pause reached the pod. The
-- dispatcher records a pod that has finished as it finished, before it acts on a pause:
-- the training is done, and resuming the job would only train it again.
INSERT INTO job_status_transitions (from_status, to_status, why) VALUES
    ('paused', 'completed', 'its run completed before the pause stopped its pod');

---- create above / drop below ----

DELETE FROM job_status_transitions WHERE from_status = 'paused' AND to_status = 'completed';
