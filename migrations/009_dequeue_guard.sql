-- The dequeue sends its writes and its COMMIT to the server in one round trip, so that the
-- shared quota and GPU model rows stay locked only while the server runs the end of that
-- batch, and not while the reply travels to the daemon and a COMMIT comes back. The daemon
-- therefore cannot look at a guard's row count before the commit: the server checks it.
--
-- admission_guard returns got when it equals want. Otherwise it raises SD003, which ends
-- the transaction before its COMMIT runs; store.Dequeue reads SD003 as "a row changed since
-- it was read" and decides again on locked rows.
CREATE FUNCTION admission_guard(what text, got bigint, want bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF got <> want THEN
        RAISE EXCEPTION 'guard of % matched % of % rows', what, got, want USING ERRCODE = 'SD003';
    END IF;
    RETURN got;
END
$$;

---- create above / drop below ----

DROP FUNCTION admission_guard(text, bigint, bigint);
