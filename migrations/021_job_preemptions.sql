-- A preemption used no attempt and nothing counted it, so a job preempted on every run was
-- requeued forever. preemptions counts the job's preempted runs, and the run end that
-- brings it to max_preemptions fails the job. Jobs stored before this migration start at 0
-- with the default bound. The defaults are constants, so no partition of jobs is
-- rewritten, but the CHECKs make PostgreSQL scan each partition once
-- under the ALTER's lock.
ALTER TABLE jobs
    ADD COLUMN preemptions integer NOT NULL DEFAULT 0 CHECK (preemptions >= 0),
    ADD COLUMN max_preemptions integer NOT NULL DEFAULT 20 CHECK (max_preemptions BETWEEN 1 AND 1000);

---- create above / drop below ----

ALTER TABLE jobs DROP COLUMN max_preemptions, DROP COLUMN preemptions;
