-- A run that spanned the end of its project's budget period was charged in full to the
-- period in which it ended. gpu_hours_charged is what the renewal of a budget period
-- already debited to the periods that ended during the run: the hours from its start to
-- each period's end. The run's end debits the rest to its current period and gives back its
-- reservation less that part, which the renewal took off the quota's reservation. It has
-- the scale of the reservations (4 digits), so that the quota's sums stay exact.
-- The constant default rewrites no row. The CHECK is NOT VALID, so it binds new and updated
-- rows without scanning the table under the ALTER's lock; every existing row holds 0.
ALTER TABLE runs ADD COLUMN gpu_hours_charged numeric(14, 4) NOT NULL DEFAULT 0;
ALTER TABLE runs ADD CONSTRAINT runs_gpu_hours_charged_check
    CHECK (gpu_hours_charged >= 0 AND gpu_hours_charged <= gpu_hours_reserved) NOT VALID;

---- create above / drop below ----

-- Below 23 a run's end gives back its whole reservation, so the quotas get back the hours
-- that renewals charged to live runs. Without them a quota would reserve less than such a
-- run's end releases, and the end would fail. The new period then pays the whole run, as
-- it did below 23.
UPDATE quotas q SET gpu_hours_reserved = q.gpu_hours_reserved + c.hours
FROM (SELECT j.project_id, sum(r.gpu_hours_charged) AS hours
      FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
      WHERE r.status IN ('pending', 'running') AND r.gpu_hours_charged > 0
      GROUP BY j.project_id) c
WHERE q.project_id = c.project_id;

ALTER TABLE runs DROP COLUMN gpu_hours_charged;
