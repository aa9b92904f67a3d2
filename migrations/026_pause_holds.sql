-- A job records who paused it. paused_by_role and paused_by_token are the role and name of
-- the API token whose pause paused the job. Both are NULL on a job that is not paused, on a
-- trial that its hpo parent's pause paused (paused_by_parent), and on a job paused before
-- this migration or by a caller without a token (the replay, tests).
--
-- A pause by an operator or admin holds the job: a submitter's resume of it changes no row
-- (store.SetJobStatus guards the statement), so only an operator or admin can resume it. A
-- cancel and a priority change are not held back. A trigger clears both columns when the
-- job leaves paused in any way, as jobs_clear_paused_by_parent does for paused_by_parent.
--
-- Nullable columns without a default rewrite no partition. The CHECK is NOT VALID so that
-- PostgreSQL does not scan every partition under the ALTER's lock: every existing row has
-- NULL in both new columns and so meets it, and later inserts and updates are checked.
ALTER TABLE jobs
    ADD COLUMN paused_by_role api_role,
    ADD COLUMN paused_by_token text,
    ADD CONSTRAINT jobs_paused_by_check
        CHECK ((paused_by_role IS NULL) = (paused_by_token IS NULL)
               AND (paused_by_role IS NULL OR (status = 'paused' AND NOT paused_by_parent)))
        NOT VALID;

CREATE FUNCTION jobs_clear_paused_by() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.paused_by_role := NULL;
    NEW.paused_by_token := NULL;
    RETURN NEW;
END
$$;

-- The WHEN clause keeps every other update, the dequeue's included, from calling the
-- function.
CREATE TRIGGER jobs_clear_paused_by BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.paused_by_role IS NOT NULL AND NEW.status <> 'paused')
    EXECUTE FUNCTION jobs_clear_paused_by();

---- create above / drop below ----

-- Version 25 has no holds: a job that an operator or admin paused stays paused, and any
-- token of its project may resume it.
DROP TRIGGER jobs_clear_paused_by ON jobs;
DROP FUNCTION jobs_clear_paused_by();

ALTER TABLE jobs
    DROP CONSTRAINT jobs_paused_by_check,
    DROP COLUMN paused_by_token,
    DROP COLUMN paused_by_role;
