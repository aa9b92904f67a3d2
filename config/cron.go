package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/retention"
)

// cronSettings are checked here although the cron service parses the schedules again when
// it starts, so that a typo stops the command before it connects to anything.
var cronSettings = []setting{
	{"cron-tz", "SCHEDULERD_CRON_TZ", "time zone of cron schedules without CRON_TZ=, such as Europe/Paris; empty is UTC", "",
		func(c *Config, v string) (err error) { c.CronLocation, err = parseLocation(v); return }},
	{"cron-partitions", "SCHEDULERD_CRON_PARTITIONS", "cron schedule of the partition task; off disables it",
		cron.DefaultPartitionSchedule,
		func(c *Config, v string) error { c.CronPartitions = v; return validateSchedule(v) }},
	{"cron-retention", "SCHEDULERD_CRON_RETENTION", "cron schedule of checkpoint retention; off disables it",
		retention.DefaultSchedule,
		func(c *Config, v string) error { c.CronRetention = v; return validateSchedule(v) }},
	{"cron-budgets", "SCHEDULERD_CRON_BUDGETS", "cron schedule of the renewal of ended budget periods; off disables it",
		accounting.DefaultBudgetSchedule,
		func(c *Config, v string) error { c.CronBudgets = v; return validateSchedule(v) }},
	{"partition-months-ahead", "SCHEDULERD_PARTITION_MONTHS_AHEAD",
		"months after the current one that get jobs partitions", "3",
		func(c *Config, v string) (err error) { c.PartitionMonthsAhead, err = parseMonthsAhead(v); return }},
	{"s3-endpoint", "SCHEDULERD_S3_ENDPOINT", "S3 endpoint URL for S3-compatible servers; empty uses AWS", "",
		func(c *Config, v string) error { c.S3.Endpoint = v; return nil }},
	{"s3-region", "SCHEDULERD_S3_REGION", "S3 region; empty takes AWS_REGION or the AWS profile's", "",
		func(c *Config, v string) error { c.S3.Region = v; return nil }},
	{"s3-path-style", "SCHEDULERD_S3_PATH_STYLE",
		"true or false: address buckets in the path, as most S3-compatible servers need", "false",
		func(c *Config, v string) (err error) { c.S3.PathStyle, err = parseBool(v); return }},
	{"retention-keep-latest", "SCHEDULERD_RETENTION_KEEP_LATEST", "latest checkpoints kept per run", "3",
		func(c *Config, v string) (err error) { c.RetentionPolicy.KeepLatest, err = nonNegativeInt(v); return }},
	{"retention-best-metric", "SCHEDULERD_RETENTION_BEST_METRIC",
		"metric in metadata_json.metrics whose best checkpoint is kept; empty keeps none", "",
		func(c *Config, v string) error { c.RetentionPolicy.BestMetric = v; return nil }},
	{"retention-best-direction", "SCHEDULERD_RETENTION_BEST_DIRECTION",
		"min or max: which value of the best metric is best", "min",
		func(c *Config, v string) error {
			c.RetentionPolicy.BestDirection = retention.Direction(v)
			return oneOf(v, string(retention.Min), string(retention.Max))
		}},
	{"retention-min-age", "SCHEDULERD_RETENTION_MIN_AGE", "checkpoints younger than this are kept", "168h",
		func(c *Config, v string) (err error) { c.RetentionPolicy.MinAge, err = nonNegativeDuration(v); return }},
	{"retention-batch", "SCHEDULERD_RETENTION_BATCH", "objects per S3 DeleteObjects request, at most 1000", "1000",
		func(c *Config, v string) (err error) { c.RetentionBatch, err = parseRetentionBatch(v); return }},
}

func parseLocation(v string) (*time.Location, error) {
	if v == "" {
		return nil, nil
	}
	location, err := time.LoadLocation(v)
	if err != nil {
		return nil, fmt.Errorf("%w; want an IANA time zone name such as Europe/Paris", err)
	}
	return location, nil
}

// validateSchedule accepts "off" or a schedule that the cron service can parse. The
// schedule's time zone does not change whether it parses, so none is passed.
func validateSchedule(v string) error {
	if v == "off" {
		return nil
	}
	if _, err := cron.ParseSchedule(v, nil); err != nil {
		return fmt.Errorf("%w; write off to disable the task", err)
	}
	return nil
}

// parseMonthsAhead rejects 0, with which a month's partition would appear only at the
// partition task's first firing in that month, so that submissions before it would be
// rejected. A value above cron.MaxMonthsAhead would fail the task at each firing.
func parseMonthsAhead(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > cron.MaxMonthsAhead {
		return 0, fmt.Errorf("want 1 to %d (0 leaves each month without a partition until the task runs in it), got %q",
			cron.MaxMonthsAhead, v)
	}
	return n, nil
}

// parseRetentionBatch is checked here because retention would replace a value out of
// range with the maximum without a word.
func parseRetentionBatch(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > retention.MaxDeleteKeys {
		return 0, fmt.Errorf("want 1 to %d objects per DeleteObjects request (S3's maximum), got %q",
			retention.MaxDeleteKeys, v)
	}
	return n, nil
}

func nonNegativeInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want an integer from 0 up, got %q", v)
	}
	return n, nil
}

func nonNegativeDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration from 0 up, such as 168h, got %q", v)
	}
	return d, nil
}
