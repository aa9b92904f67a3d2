-- ensure_job_partitions skipped a month when a table with the month's partition name existed,
-- whatever its range or even when it was no partition of jobs, and failed for every later
-- month when a partition made by hand under another name overlapped the month. It now
-- creates partitions for the parts of each month that no partition of jobs covers.

-- The bounds of every range partition of jobs, in UTC. MINVALUE and MAXVALUE become
-- -infinity and infinity, and a default partition is left out. PostgreSQL prints each
-- bound with its offset, so the cast gives the same instant whatever the session's TimeZone.
CREATE FUNCTION job_partition_bounds()
RETURNS TABLE (partition_name text, lower_utc timestamp, upper_utc timestamp)
LANGUAGE sql STABLE AS $$
    SELECT name,
           CASE WHEN bounds[1] = 'MINVALUE' THEN '-infinity'::timestamp
                ELSE btrim(bounds[1], '''')::timestamptz AT TIME ZONE 'UTC' END,
           CASE WHEN bounds[2] = 'MAXVALUE' THEN 'infinity'::timestamp
                ELSE btrim(bounds[2], '''')::timestamptz AT TIME ZONE 'UTC' END
    FROM (
        SELECT c.relname::text AS name,
               regexp_match(pg_get_expr(c.relpartbound, c.oid),
                            '^FOR VALUES FROM \((.+)\) TO \((.+)\)$') AS bounds
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'jobs'::regclass
    ) p
    WHERE bounds IS NOT NULL
$$;

-- Returns where the partitions of jobs that cover at_time without a gap end, or NULL when no
-- partition covers at_time. The partition task and the runway gauge measure the runway with
-- it, so that a partition beyond an uncovered month does not hide that month. A MAXVALUE
-- bound returns 9999-12-31, since clients cannot read an infinite timestamptz as a time.
CREATE FUNCTION job_partitions_covered_until(at_time timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    start_utc timestamp := at_time AT TIME ZONE 'UTC';
    reached   timestamp := start_utc;
    covering  record;
BEGIN
    FOR covering IN
        SELECT lower_utc, upper_utc FROM job_partition_bounds()
        WHERE upper_utc > start_utc
        ORDER BY lower_utc
    LOOP
        EXIT WHEN covering.lower_utc > reached;
        reached := greatest(reached, covering.upper_utc);
    END LOOP;

    IF reached = start_utc THEN
        RETURN NULL;
    END IF;
    RETURN least(reached, '9999-12-31 00:00:00'::timestamp) AT TIME ZONE 'UTC';
END
$$;

-- Creates one partition of jobs for [gap_start, gap_end) within the month that starts at
-- month_start, all in UTC. A whole month takes the month's name (jobs_2031_10). A part of a
-- month, or a month whose name another table has, takes a name with its start
-- (jobs_2031_10_from_15_000000).
CREATE FUNCTION create_job_partition(month_start timestamp, gap_start timestamp, gap_end timestamp)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := job_partition_name(month_start);
BEGIN
    IF gap_start <> month_start OR gap_end <> month_start + interval '1 month'
       OR to_regclass(quote_ident(name)) IS NOT NULL THEN
        name := name || '_from_' || to_char(gap_start, 'DD_HH24MISS');
    END IF;
    IF to_regclass(quote_ident(name)) IS NOT NULL THEN
        RAISE EXCEPTION 'cannot create the jobs partition from % to % UTC: table % exists and is no partition covering that range; rename it',
            gap_start, gap_end, name USING ERRCODE = 'duplicate_table';
    END IF;

    EXECUTE format(
        'CREATE TABLE %I PARTITION OF jobs FOR VALUES FROM (%L) TO (%L)',
        name,
        to_char(gap_start, 'YYYY-MM-DD HH24:MI:SS') || '+00',
        to_char(gap_end, 'YYYY-MM-DD HH24:MI:SS') || '+00');
END
$$;

-- Creates the partitions of jobs for the month containing from_time and the months_ahead
-- months after it, and returns how many it created. Each month gets partitions for the parts
-- that no partition covers, so a partition made by hand with another range is kept. Safe to
-- run from several replicas at once: a transaction-scoped advisory lock serialises the check
-- and the CREATE.
CREATE OR REPLACE FUNCTION ensure_job_partitions(from_time timestamptz, months_ahead integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamp := date_trunc('month', from_time AT TIME ZONE 'UTC');
    month_end   timestamp;
    gap_start   timestamp;
    covering    record;
    created     integer := 0;
BEGIN
    IF months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('schedulerd.ensure_job_partitions'));

    FOR i IN 0 .. months_ahead LOOP
        month_end := month_start + interval '1 month';
        gap_start := month_start;

        FOR covering IN
            SELECT lower_utc, upper_utc FROM job_partition_bounds()
            WHERE lower_utc < month_end AND upper_utc > month_start
            ORDER BY lower_utc
        LOOP
            IF covering.lower_utc > gap_start THEN
                PERFORM create_job_partition(month_start, gap_start, covering.lower_utc);
                created := created + 1;
            END IF;
            gap_start := greatest(gap_start, covering.upper_utc);
        END LOOP;

        IF gap_start < month_end THEN
            PERFORM create_job_partition(month_start, gap_start, month_end);
            created := created + 1;
        END IF;

        month_start := month_end;
    END LOOP;

    RETURN created;
END
$$;

---- create above / drop below ----

-- The body from migration 2. Partitions this version created stay.
CREATE OR REPLACE FUNCTION ensure_job_partitions(from_time timestamptz, months_ahead integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    month_start timestamp := date_trunc('month', from_time AT TIME ZONE 'UTC');
    month_end   timestamp;
    created     integer := 0;
    name        text;
BEGIN
    IF months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, got %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('schedulerd.ensure_job_partitions'));

    FOR i IN 0 .. months_ahead LOOP
        month_end := month_start + interval '1 month';
        name := job_partition_name(month_start);

        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF jobs FOR VALUES FROM (%L) TO (%L)',
                name,
                to_char(month_start, 'YYYY-MM-DD HH24:MI:SS') || '+00',
                to_char(month_end, 'YYYY-MM-DD HH24:MI:SS') || '+00');
            created := created + 1;
        END IF;

        month_start := month_end;
    END LOOP;

    RETURN created;
END
$$;

DROP FUNCTION create_job_partition(timestamp, timestamp, timestamp);
DROP FUNCTION job_partitions_covered_until(timestamptz);
DROP FUNCTION job_partition_bounds();
