-- An hpo parent can be paused and resumed. Its pause pauses its queued and running trials
-- in the same transaction, and its resume queues again the trials that the pause paused
-- (store.MoveHPOParent). A parent still never waits in the queue: its resume moves it from
-- paused back to running.
--
-- paused_by_parent marks a trial that its parent's pause paused. A trial paused on its own
-- has false, so the parent's resume leaves it paused. A trigger clears the mark when the
-- trial leaves paused in any way, so the mark is true only on a paused trial.
--
-- The defaults are constants, so no partition of jobs is rewritten, but the CHECKs make
-- PostgreSQL scan each partition once under the ALTER's lock.
ALTER TABLE jobs
    DROP CONSTRAINT jobs_hpo_parent_never_queued,
    ADD CONSTRAINT jobs_hpo_parent_never_queued CHECK (job_type <> 'hpo' OR status <> 'queued'),
    ADD COLUMN paused_by_parent boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT jobs_paused_by_parent_check
        CHECK (NOT paused_by_parent OR (status = 'paused' AND parent_job_id IS NOT NULL));

INSERT INTO job_status_transitions (from_status, to_status, why) VALUES
    ('paused', 'running', 'an hpo parent resumed: the trials its pause paused are queued again'),
    ('paused', 'eval_failed', 'an hpo parent whose trials ended while it was paused, and whose best trial fell below the thresholds');

-- Three moves are an hpo parent's only, because any other job runs only after admission
-- and is evaluated only after it completed: submitted to running, paused to running and
-- paused to eval_failed.
CREATE OR REPLACE FUNCTION jobs_check_hpo_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.job_type <> 'hpo' THEN
        RAISE EXCEPTION 'job % is %, not hpo: only an hpo parent moves from % to %',
            OLD.id, NEW.job_type, OLD.status, NEW.status USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER jobs_check_hpo_start ON jobs;
CREATE TRIGGER jobs_check_hpo_start BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN ((OLD.status IN ('submitted', 'paused') AND NEW.status = 'running')
        OR (OLD.status = 'paused' AND NEW.status = 'eval_failed'))
    EXECUTE FUNCTION jobs_check_hpo_start();

-- A trial of a paused hpo parent stays paused until the parent's resume: a trial resumed
-- on its own would start while the search is paused. The parent's row is locked in share
-- mode, so a pause of the parent in flight is waited for and then seen.
CREATE FUNCTION jobs_check_trial_resume() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parent_status job_status;
BEGIN
    SELECT p.status INTO parent_status FROM jobs p
    WHERE p.id = NEW.parent_job_id AND p.created_at = NEW.parent_created_at AND p.job_type = 'hpo'
    FOR SHARE;
    IF parent_status = 'paused' THEN
        RAISE EXCEPTION 'job % cannot be resumed while its hpo parent % is paused',
            OLD.id, NEW.parent_job_id USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_check_trial_resume BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status = 'paused' AND NEW.status = 'queued' AND NEW.parent_job_id IS NOT NULL)
    EXECUTE FUNCTION jobs_check_trial_resume();

CREATE FUNCTION jobs_clear_paused_by_parent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.paused_by_parent := false;
    RETURN NEW;
END
$$;

-- The WHEN clause keeps every other update, the dequeue's included, from calling the
-- function.
CREATE TRIGGER jobs_clear_paused_by_parent BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.paused_by_parent AND NEW.status <> 'paused')
    EXECUTE FUNCTION jobs_clear_paused_by_parent();

---- create above / drop below ----

DO $$
DECLARE
    paused bigint;
BEGIN
    SELECT count(*) INTO paused FROM jobs WHERE job_type = 'hpo' AND status = 'paused';
    IF paused > 0 THEN
        RAISE EXCEPTION 'cannot migrate below version 24: % hpo jobs are paused, which version 23 cannot store', paused
            USING HINT = 'Resume or cancel them first (schedulerd job resume ID); list them with SELECT id FROM jobs WHERE job_type = ''hpo'' AND status = ''paused''.';
    END IF;
END
$$;

DROP TRIGGER jobs_clear_paused_by_parent ON jobs;
DROP FUNCTION jobs_clear_paused_by_parent();
DROP TRIGGER jobs_check_trial_resume ON jobs;
DROP FUNCTION jobs_check_trial_resume();

DROP TRIGGER jobs_check_hpo_start ON jobs;
CREATE OR REPLACE FUNCTION jobs_check_hpo_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'submitted' AND NEW.status = 'running' AND NEW.job_type <> 'hpo' THEN
        RAISE EXCEPTION 'job % is %, not hpo: it runs only after admission from queued',
            OLD.id, NEW.job_type USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER jobs_check_hpo_start BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status = 'submitted' AND NEW.status = 'running')
    EXECUTE FUNCTION jobs_check_hpo_start();

DELETE FROM job_status_transitions
WHERE from_status = 'paused' AND to_status IN ('running', 'eval_failed');

ALTER TABLE jobs
    DROP CONSTRAINT jobs_paused_by_parent_check,
    DROP COLUMN paused_by_parent,
    DROP CONSTRAINT jobs_hpo_parent_never_queued,
    ADD CONSTRAINT jobs_hpo_parent_never_queued CHECK (job_type <> 'hpo' OR status NOT IN ('queued', 'paused'));
