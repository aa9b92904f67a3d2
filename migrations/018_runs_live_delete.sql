-- A pending or running run holds what its admission took: a concurrency slot and a
-- reservation on its project's quota, and GPUs of its model. Deleting it (a prune of old
-- runs without a status filter, say) left all three held for good, since only a run's end
-- releases them, and its job running without a run. Such a delete is now rejected. A
-- reset that also puts the quotas and models right itself, as the benchmarks do, sets
-- schedulerd.delete_live_runs to on in its transaction.
CREATE FUNCTION runs_reject_live_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('pending', 'running')
       AND current_setting('schedulerd.delete_live_runs', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION 'run % is %: end it before deleting it (cancel or pause its job, or drain its queue), or its quota reservation, concurrency slot and GPUs stay held',
            OLD.id, OLD.status USING ERRCODE = 'SD001';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER runs_reject_live_delete BEFORE DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION runs_reject_live_delete();

---- create above / drop below ----

DROP TRIGGER runs_reject_live_delete ON runs;
DROP FUNCTION runs_reject_live_delete();
