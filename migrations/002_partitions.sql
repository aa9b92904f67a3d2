-- Monthly partitions of jobs. ensure_job_partitions is the one place that names and bounds
-- them: the migration calls it for the first months and the partition cron task calls it
-- again for the months ahead. Bounds are the first of each month at 00:00 UTC, computed in
-- UTC whatever the session's TimeZone is, so two servers in different zones agree.

CREATE FUNCTION job_partition_name(month_start_utc timestamp) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'jobs_' || to_char(month_start_utc, 'YYYY_MM')
$$;

-- Creates the partitions of jobs for the month containing from_time and the months_ahead
-- months after it, and returns how many it created. Safe to run from several replicas at
-- once: a transaction-scoped advisory lock serialises the check and the CREATE.
CREATE FUNCTION ensure_job_partitions(from_time timestamptz, months_ahead integer)
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

-- The first partitions: the previous month (so jobs submitted just before midnight UTC on
-- the first still land), the current month and three ahead.
SELECT ensure_job_partitions(now() - interval '1 month', 4);

---- create above / drop below ----

-- The partitions stay: they hold job rows that runs refer to, and they go with the jobs
-- table itself when migration 1 is rolled back.
DROP FUNCTION ensure_job_partitions(timestamptz, integer);
DROP FUNCTION job_partition_name(timestamp);
