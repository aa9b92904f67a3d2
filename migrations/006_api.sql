-- What the HTTP API needs: bearer tokens and their roles, the audit log of admin actions,
-- and a deadline after which a drained queue's live runs are preempted.

-- When set, the dispatcher ends the project's live runs as preempted (their jobs go back to
-- the queue) once this time has passed. Only a drained queue has a deadline.
ALTER TABLE quotas
    ADD COLUMN drain_deadline timestamptz,
    ADD CONSTRAINT quotas_drain_deadline_check CHECK (drain_deadline IS NULL OR drained_at IS NOT NULL);

-- submitter: submits and manages jobs of the projects listed on its token. operator: every
-- project's jobs and queues. admin: an operator who also sets quotas, creates projects and
-- reads the audit log.
CREATE TYPE api_role AS ENUM ('submitter', 'operator', 'admin');

-- Only the SHA-256 of a token is stored, so a copy of this table does not let anyone call
-- the API. A lookup is by hash equality through the unique index.
CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    -- Who holds the token, as the audit log names them.
    name         varchar(200) NOT NULL CHECK (name <> ''),
    role         api_role NOT NULL,
    projects     varchar(63)[] NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz,
    CHECK ((role = 'submitter') = (cardinality(projects) > 0))
);

-- One row per admin action: quota changes, drains, reprioritizations, project changes and
-- the job actions of operators and admins. before_json and after_json are the changed rows
-- as the API shows them; NULL when there was no row before.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    uuid REFERENCES api_tokens (id),
    actor       varchar(200) NOT NULL,
    role        api_role NOT NULL,
    action      varchar(100) NOT NULL CHECK (action <> ''),
    project_id  varchar(63),
    job_id      uuid,
    before_json jsonb,
    after_json  jsonb
);

CREATE INDEX audit_log_project_idx ON audit_log (project_id, id);

---- create above / drop below ----

DROP TABLE audit_log;
DROP TABLE api_tokens;
DROP TYPE api_role;
ALTER TABLE quotas DROP CONSTRAINT quotas_drain_deadline_check, DROP COLUMN drain_deadline;
