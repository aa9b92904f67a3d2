-- jobs_check_update ran a PL/pgSQL function for every updated job row: each admission, and
-- each wait reason the scheduler writes. Its three duties become three triggers whose WHEN
-- clauses skip the function where it would change nothing, so the dequeue calls none of
-- them:
--  - config_json stays as submitted: checked only when an UPDATE sets config_json.
--  - status moves only along job_status_transitions: checked only when an UPDATE sets status
--    to a new value other than queued to running, which the table allows and only admission
--    does.
--  - updated_at is the time of the last change: set to now() unless the UPDATE sets it.
DROP TRIGGER jobs_check_update ON jobs;
DROP FUNCTION jobs_check_update();

CREATE FUNCTION jobs_reject_config_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'config_json of job % cannot change after submission', OLD.id
        USING ERRCODE = 'SD002';
END
$$;

CREATE TRIGGER jobs_check_config BEFORE UPDATE OF config_json ON jobs
    FOR EACH ROW WHEN (NEW.config_json IS DISTINCT FROM OLD.config_json)
    EXECUTE FUNCTION jobs_reject_config_change();

CREATE FUNCTION jobs_check_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM job_status_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'job % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_check_transition BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status <> NEW.status AND NOT (OLD.status = 'queued' AND NEW.status = 'running'))
    EXECUTE FUNCTION jobs_check_transition();

CREATE FUNCTION jobs_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_touch BEFORE UPDATE ON jobs
    FOR EACH ROW WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at)
    EXECUTE FUNCTION jobs_touch();

---- create above / drop below ----

DROP TRIGGER jobs_touch ON jobs;
DROP FUNCTION jobs_touch();
DROP TRIGGER jobs_check_transition ON jobs;
DROP FUNCTION jobs_check_transition();
DROP TRIGGER jobs_check_config ON jobs;
DROP FUNCTION jobs_reject_config_change();

CREATE FUNCTION jobs_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.config_json IS DISTINCT FROM OLD.config_json THEN
        RAISE EXCEPTION 'config_json of job % cannot change after submission', OLD.id
            USING ERRCODE = 'SD002';
    END IF;

    IF NEW.status <> OLD.status AND NOT EXISTS (
        SELECT 1 FROM job_status_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'job % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'SD001';
    END IF;

    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_check_update BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_check_update();
