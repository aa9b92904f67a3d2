-- A budget period has finite bounds. An infinite bound gives the period no length to renew
-- by, and the scheduler cannot read it (Go's time.Time has no infinity), so a single quota
-- with one made every dequeue fail, for every project. Only SQL could write one: the API
-- takes calendar dates. If a quota breaks this, the migration fails and names the
-- constraint; give that quota a finite period with `schedulerd quota set` and migrate again.
ALTER TABLE quotas ADD CONSTRAINT quotas_period_finite
    CHECK (isfinite(period_start) AND isfinite(period_end));

---- create above / drop below ----

ALTER TABLE quotas DROP CONSTRAINT quotas_period_finite;
