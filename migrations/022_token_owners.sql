-- The requester of an approval may not decide it. Until this version schedulerd compared
-- token names, so a person who held a second token under another name could approve their
-- own request. A token now has an owner: the person or service account that holds it,
-- shared by all of that holder's tokens. The job records its submitter's owner, the
-- approval its requester's and its decider's, and the decider's owner must differ from the
-- requester's.
--
-- A NULL owner means the row's token name. Tokens, jobs and approvals stored before this
-- version therefore keep the identity that the name check gave them, and so do rows that a
-- daemon of the previous version writes during an upgrade. No existing row is rewritten.
ALTER TABLE api_tokens ADD COLUMN owner varchar(200) CHECK (owner <> '');

ALTER TABLE jobs ADD COLUMN submitter_owner varchar(200);

-- approved_by stays the decider's token name, as the audit log names it. The CHECK scans
-- the table once: every decided row already has approved_by <> requested_by.
ALTER TABLE approvals
    ADD COLUMN requester_owner varchar(200),
    ADD COLUMN decider_owner varchar(200),
    ADD CONSTRAINT approvals_decider_owner_check
        CHECK (coalesce(decider_owner, approved_by) <> coalesce(requester_owner, requested_by));

-- The requester's owner is fixed at insert, like the requester's name.
CREATE OR REPLACE FUNCTION approvals_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.eval_snapshot_json IS DISTINCT FROM OLD.eval_snapshot_json
        OR NEW.model_version_id <> OLD.model_version_id
        OR NEW.target_stage <> OLD.target_stage
        OR NEW.requested_by <> OLD.requested_by
        OR NEW.requester_owner IS DISTINCT FROM OLD.requester_owner THEN
        RAISE EXCEPTION 'approval % cannot change what was requested', OLD.id
            USING ERRCODE = 'SD002';
    END IF;

    IF OLD.status <> 'pending' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'approval % was already %', OLD.id, OLD.status USING ERRCODE = 'SD001';
    END IF;

    RETURN NEW;
END
$$;

---- create above / drop below ----

-- Below this version the names alone decide again; every approval stays.
CREATE OR REPLACE FUNCTION approvals_check_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.eval_snapshot_json IS DISTINCT FROM OLD.eval_snapshot_json
        OR NEW.model_version_id <> OLD.model_version_id
        OR NEW.target_stage <> OLD.target_stage
        OR NEW.requested_by <> OLD.requested_by THEN
        RAISE EXCEPTION 'approval % cannot change what was requested', OLD.id
            USING ERRCODE = 'SD002';
    END IF;

    IF OLD.status <> 'pending' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'approval % was already %', OLD.id, OLD.status USING ERRCODE = 'SD001';
    END IF;

    RETURN NEW;
END
$$;

ALTER TABLE approvals DROP CONSTRAINT approvals_decider_owner_check,
    DROP COLUMN decider_owner, DROP COLUMN requester_owner;
ALTER TABLE jobs DROP COLUMN submitter_owner;
ALTER TABLE api_tokens DROP COLUMN owner;
