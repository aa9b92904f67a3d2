-- The dequeue deletes its admitted jobs from job_queue itself, in the statement that moves
-- them to running (store/admit.go), instead of the row trigger jobs_sync_queue calling a
-- PL/pgSQL function once per admitted job. The trigger still keeps job_queue equal to the
-- queued jobs for every other writer. Only a transaction that set the variable
-- schedulerd.dequeue to on skips it, and only for moves from queued to running. The
-- variable is read with missing_ok, so a session that never set it reads NULL and the
-- trigger fires.
--
-- The WHEN clauses also skip the function for inserts and updates in which neither the old
-- nor the new status is queued, where it changed nothing: the end of a run, for example.
-- An INSERT trigger's WHEN clause cannot read OLD, so inserts get their own trigger.
DROP TRIGGER jobs_sync_queue ON jobs;

CREATE TRIGGER jobs_sync_queue_insert AFTER INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status = 'queued')
    EXECUTE FUNCTION jobs_sync_queue();

CREATE TRIGGER jobs_sync_queue AFTER UPDATE OF status, priority ON jobs
    FOR EACH ROW WHEN ((OLD.status = 'queued' OR NEW.status = 'queued')
                       AND NOT (OLD.status = 'queued' AND NEW.status = 'running'
                                AND current_setting('schedulerd.dequeue', true) IS NOT DISTINCT FROM 'on'))
    EXECUTE FUNCTION jobs_sync_queue();

---- create above / drop below ----

DROP TRIGGER jobs_sync_queue ON jobs;
DROP TRIGGER jobs_sync_queue_insert ON jobs;

CREATE TRIGGER jobs_sync_queue AFTER INSERT OR UPDATE OF status, priority ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_sync_queue();
