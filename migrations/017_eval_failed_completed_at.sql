-- An hpo parent that failed its evaluation had no completed_at: FailEvaluation set only
-- its status, error and result, and the parent went to eval_failed from running. Its
-- updated_at is the time of that last change, when it ended.
UPDATE jobs SET completed_at = updated_at
WHERE status = 'eval_failed' AND completed_at IS NULL;

---- create above / drop below ----

-- The times filled in above cannot be told from real ones, so they stay.
SELECT 1;
