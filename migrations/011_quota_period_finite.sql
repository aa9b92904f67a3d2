-- A budget period has finite bounds. An infinite bound gives the period no length to renew
-- by, and the scheduler cannot read it (Go's time.Time has no infinity), so a single quota
-- with one made every dequeue fail, for every project. Only SQL could write one: the API
-- takes calendar dates. If a quota breaks this, the migration fails and names the
-- constraint. The API cannot read such a quota either, so fix it in SQL and migrate again:
--   SELECT project_id FROM quotas WHERE NOT (isfinite(period_start) AND isfinite(period_end));
--   UPDATE quotas SET period_start = '2026-12-01', period_end = '2027-01-01' WHERE project_id = '...';
ALTER TABLE quotas ADD CONSTRAINT quotas_period_finite
    CHECK (isfinite(period_start) AND isfinite(period_end));

---- create above / drop below ----

ALTER TABLE quotas DROP CONSTRAINT quotas_period_finite;
