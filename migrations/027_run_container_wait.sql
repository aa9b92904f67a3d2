-- A run fails once a container of its pod has waited SCHEDULERD_IMAGE_PULL_GRACE with a
-- reason that may pass (ErrImagePull, ImagePullBackOff, CreateContainerError, or a missing
-- Secret or ConfigMap). No pod field records when a container began to wait, so the
-- dispatcher stores the time it first saw such a wait here, once per run. A restarted
-- daemon, or a replica that takes the Lease, counts the grace from the same time.
--
-- NULL until the dispatcher sees such a wait, and on runs that older versions wrote: for
-- those the grace counts from the pod's start, as before this migration. A nullable column
-- without a default rewrites no row, so the ALTER holds its lock only briefly.
ALTER TABLE runs ADD COLUMN container_wait_started_at timestamptz;

---- create above / drop below ----

-- Below 27 the dispatcher counts the grace from the pod's start again.
ALTER TABLE runs DROP COLUMN container_wait_started_at;
