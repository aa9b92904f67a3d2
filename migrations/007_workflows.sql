-- What the Temporal workflows need (docs/design/workflows.md): an outbox that carries job
-- and approval events to the workflows, a job's result, gapless model version numbers,
-- and the rules of the model registry.

-- A job's outcome as its workflow decided it: the evaluation metrics and the registered
-- version for a training job, the best trial for an hpo parent.
ALTER TABLE jobs ADD COLUMN result_json jsonb;

-- Who submitted the job (the API token's name): the requester of the approvals its workflow
-- asks for, who may therefore not approve them.
ALTER TABLE jobs ADD COLUMN submitted_by varchar(200);

-- Before this version an hpo job ran as one pod, like any other job. Such a job still
-- queued, paused or running would break the rule below now or when its run ends, and has
-- no trials for its workflow to follow, so the migration waits until none is left.
DO $$
DECLARE
    live bigint;
BEGIN
    SELECT count(*) INTO live FROM jobs
    WHERE job_type = 'hpo' AND status IN ('queued', 'paused', 'running');
    IF live > 0 THEN
        RAISE EXCEPTION 'cannot migrate to version 7: % hpo jobs are queued, paused or running as single pods, which version 7 runs as searches of trials', live
            USING HINT = 'Let them end or cancel them (schedulerd job cancel ID), then migrate again; list them with SELECT id, status FROM jobs WHERE job_type = ''hpo'' AND status IN (''queued'', ''paused'', ''running'').';
    END IF;
END
$$;

-- An hpo job is the parent of its trials and holds no pod: it never waits in the queue.
-- Its workflow moves it from submitted to running once the trials exist.
ALTER TABLE jobs ADD CONSTRAINT jobs_hpo_parent_never_queued
    CHECK (job_type <> 'hpo' OR status NOT IN ('queued', 'paused'));

INSERT INTO job_status_transitions (from_status, to_status, why) VALUES
    ('submitted', 'running', 'an hpo parent whose trials exist; it holds no pod itself');

-- Any other job reaches running only through admission, from queued.
CREATE FUNCTION jobs_check_hpo_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'submitted' AND NEW.status = 'running' AND NEW.job_type <> 'hpo' THEN
        RAISE EXCEPTION 'job % is %, not hpo: it runs only after admission from queued',
            OLD.id, NEW.job_type USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

-- The WHEN clauses keep the dequeue, which moves every admitted job to running, from
-- calling these functions at all.
CREATE TRIGGER jobs_check_hpo_start BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status = 'submitted' AND NEW.status = 'running')
    EXECUTE FUNCTION jobs_check_hpo_start();

-- The last version number given out per model. Taking the next number is an UPDATE of this
-- row inside the transaction that inserts the version, so concurrent registrations queue
-- on the row and a rolled-back registration gives its number back: numbers have no gaps.
ALTER TABLE models ADD COLUMN latest_version integer NOT NULL DEFAULT 0 CHECK (latest_version >= 0);

-- A job registers at most one model version, so a retried registration finds the one it made.
CREATE UNIQUE INDEX model_versions_one_per_job_idx ON model_versions (job_id);

-- The workflow that waits for the decision, and at most one open request per version and
-- stage, so a retried request finds the open one.
ALTER TABLE approvals ADD COLUMN workflow_id varchar(200);
CREATE UNIQUE INDEX approvals_one_pending_idx ON approvals (model_version_id, target_stage)
    WHERE status = 'pending';

-- A version reaches staging or prod only with an approved request for that stage, and an
-- archived version stays archived. The store archives the previous prod version in the same
-- transaction, which keeps model_versions_one_prod_idx satisfied.
CREATE FUNCTION model_versions_check_stage() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stage = OLD.stage THEN
        RETURN NEW;
    END IF;
    IF OLD.stage = 'archived' THEN
        RAISE EXCEPTION 'model version % is archived', OLD.id USING ERRCODE = 'SD001';
    END IF;
    IF NEW.stage IN ('staging', 'prod') AND NOT EXISTS (
        SELECT 1 FROM approvals a
        WHERE a.model_version_id = NEW.id AND a.status = 'approved'
          AND a.target_stage::text = NEW.stage::text
    ) THEN
        RAISE EXCEPTION 'model version % has no approved request for %', OLD.id, NEW.stage
            USING ERRCODE = 'SD001';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER model_versions_check_stage BEFORE UPDATE OF stage ON model_versions
    FOR EACH ROW EXECUTE FUNCTION model_versions_check_stage();

-- The outbox. A row is written in the transaction that changes the fact it reports, so no
-- event is lost when schedulerd or Temporal is down; the daemon delivers rows in id order
-- and deletes each once Temporal accepted it. kind is start (a job with a workflow was
-- submitted), job_ended (it reached a terminal status), trial_ended (a child of an hpo
-- parent did; sent to the parent) or approval_decided.
CREATE TABLE workflow_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow_id     varchar(200) NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('start', 'job_ended', 'trial_ended', 'approval_decided')),
    payload         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workflow_events_due_idx ON workflow_events (next_attempt_at, id);

CREATE FUNCTION workflow_event(workflow text, event text, body jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO workflow_events (workflow_id, kind, payload) VALUES (workflow, event, body);
    PERFORM pg_notify('schedulerd_workflow_events', '');
END
$$;

CREATE FUNCTION jobs_workflow_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    terminal job_status[] := ARRAY['completed', 'failed', 'cancelled', 'eval_failed']::job_status[];
    parent_workflow text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.temporal_workflow_id IS NOT NULL THEN
            PERFORM workflow_event(NEW.temporal_workflow_id, 'start', '{}');
        END IF;
        RETURN NULL;
    END IF;

    -- Only the first terminal status is an end: completed to eval_failed is the workflow's
    -- own decision and is not sent back to it.
    IF NOT (NEW.status = ANY (terminal)) OR OLD.status = ANY (terminal) THEN
        RETURN NULL;
    END IF;
    IF NEW.temporal_workflow_id IS NOT NULL THEN
        PERFORM workflow_event(NEW.temporal_workflow_id, 'job_ended',
            jsonb_build_object('status', NEW.status));
    END IF;
    IF NEW.parent_job_id IS NOT NULL THEN
        SELECT p.temporal_workflow_id INTO parent_workflow FROM jobs p
        WHERE p.id = NEW.parent_job_id AND p.created_at = NEW.parent_created_at;
        IF parent_workflow IS NOT NULL THEN
            PERFORM workflow_event(parent_workflow, 'trial_ended',
                jsonb_build_object('job_id', NEW.id, 'status', NEW.status));
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_workflow_start AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.temporal_workflow_id IS NOT NULL)
    EXECUTE FUNCTION jobs_workflow_events();

CREATE TRIGGER jobs_workflow_end AFTER UPDATE OF status ON jobs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
        AND NEW.status IN ('completed', 'failed', 'cancelled', 'eval_failed')
        AND (NEW.temporal_workflow_id IS NOT NULL OR NEW.parent_job_id IS NOT NULL))
    EXECUTE FUNCTION jobs_workflow_events();

CREATE FUNCTION approvals_workflow_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'pending' AND NEW.status <> 'pending' AND NEW.workflow_id IS NOT NULL THEN
        PERFORM workflow_event(NEW.workflow_id, 'approval_decided',
            jsonb_build_object('approval_id', NEW.id, 'status', NEW.status));
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER approvals_workflow_events AFTER UPDATE OF status ON approvals
    FOR EACH ROW EXECUTE FUNCTION approvals_workflow_events();

---- create above / drop below ----

DROP TRIGGER approvals_workflow_events ON approvals;
DROP FUNCTION approvals_workflow_events();
DROP TRIGGER jobs_workflow_end ON jobs;
DROP TRIGGER jobs_workflow_start ON jobs;
DROP FUNCTION jobs_workflow_events();
DROP FUNCTION workflow_event(text, text, jsonb);
DROP TABLE workflow_events;
DROP TRIGGER model_versions_check_stage ON model_versions;
DROP FUNCTION model_versions_check_stage();
DROP INDEX approvals_one_pending_idx;
ALTER TABLE approvals DROP COLUMN workflow_id;
DROP INDEX model_versions_one_per_job_idx;
ALTER TABLE models DROP COLUMN latest_version;
DROP TRIGGER jobs_check_hpo_start ON jobs;
DROP FUNCTION jobs_check_hpo_start();
DELETE FROM job_status_transitions WHERE from_status = 'submitted' AND to_status = 'running';
ALTER TABLE jobs DROP CONSTRAINT jobs_hpo_parent_never_queued;
ALTER TABLE jobs DROP COLUMN submitted_by;
ALTER TABLE jobs DROP COLUMN result_json;
