package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/retention"
	"github.com/schedulerd/schedulerd/store"
)

// cronSettings configure the cron tasks. They are read from SCHEDULERD_* variables by
// loadCronSettings, and `cron run` also takes them as flags.
type cronSettings struct {
	timeZone           string // zone of schedules without CRON_TZ=; empty is UTC
	partitionsSchedule string
	retentionSchedule  string
	budgetsSchedule    string
	monthsAhead        int
	s3                 retention.S3Config
	policy             retention.Policy
	retentionBatchSize int
}

// cronVariables lists each setting's variable, flag and default, for the help text.
var cronVariables = []struct{ env, flag, fallback, usage string }{
	{"SCHEDULERD_CRON_TZ", "cron-tz", "", "time zone of cron schedules without CRON_TZ=; empty is UTC"},
	{"SCHEDULERD_CRON_PARTITIONS", "cron-partitions", cron.DefaultPartitionSchedule, "cron schedule of the partition task; off disables it"},
	{"SCHEDULERD_CRON_RETENTION", "cron-retention", retention.DefaultSchedule, "cron schedule of checkpoint retention; off disables it"},
	{"SCHEDULERD_CRON_BUDGETS", "cron-budgets", accounting.DefaultBudgetSchedule, "cron schedule of the renewal of ended budget periods; off disables it"},
	{"SCHEDULERD_PARTITION_MONTHS_AHEAD", "partition-months-ahead", "3", "months after the current one that get jobs partitions"},
	{"SCHEDULERD_S3_ENDPOINT", "s3-endpoint", "", "S3 endpoint URL for S3-compatible servers; empty uses AWS"},
	{"SCHEDULERD_S3_REGION", "s3-region", "", "S3 region; empty takes AWS_REGION or the AWS profile's"},
	{"SCHEDULERD_S3_PATH_STYLE", "s3-path-style", "false", "address buckets in the path, as most S3-compatible servers need"},
	{"SCHEDULERD_RETENTION_KEEP_LATEST", "retention-keep-latest", "3", "latest checkpoints kept per run"},
	{"SCHEDULERD_RETENTION_BEST_METRIC", "retention-best-metric", "", "metric in metadata_json.metrics whose best checkpoint is kept; empty keeps none"},
	{"SCHEDULERD_RETENTION_BEST_DIRECTION", "retention-best-direction", "min", "min or max: which value of the best metric is best"},
	{"SCHEDULERD_RETENTION_MIN_AGE", "retention-min-age", "168h", "checkpoints younger than this are kept"},
	{"SCHEDULERD_RETENTION_BATCH", "retention-batch", "1000", "objects per S3 DeleteObjects request, at most 1000"},
}

// registerCronFlags defines every cron setting as a flag whose default is its variable.
func registerCronFlags(fs *flag.FlagSet, getenv func(string) string) map[string]*string {
	values := make(map[string]*string, len(cronVariables))
	for _, v := range cronVariables {
		value := v.fallback
		if env := getenv(v.env); env != "" {
			value = env
		}
		values[v.env] = fs.String(v.flag, value, fmt.Sprintf("%s (env %s)", v.usage, v.env))
	}
	return values
}

// loadCronSettings reads the cron settings from the environment, as `schedulerd run` needs.
func loadCronSettings(getenv func(string) string) (cronSettings, error) {
	fs := flag.NewFlagSet("cron", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return parseCronSettings(registerCronFlags(fs, getenv))
}

func parseCronSettings(v map[string]*string) (s cronSettings, err error) {
	s.timeZone = *v["SCHEDULERD_CRON_TZ"]
	s.partitionsSchedule = *v["SCHEDULERD_CRON_PARTITIONS"]
	s.retentionSchedule = *v["SCHEDULERD_CRON_RETENTION"]
	s.budgetsSchedule = *v["SCHEDULERD_CRON_BUDGETS"]
	s.s3 = retention.S3Config{Endpoint: *v["SCHEDULERD_S3_ENDPOINT"], Region: *v["SCHEDULERD_S3_REGION"]}
	s.policy.BestMetric = *v["SCHEDULERD_RETENTION_BEST_METRIC"]
	s.policy.BestDirection = retention.Direction(*v["SCHEDULERD_RETENTION_BEST_DIRECTION"])

	number := func(name string, target *int) {
		n, convErr := strconv.Atoi(*v[name])
		if convErr != nil && err == nil {
			err = fmt.Errorf("invalid %s: want an integer, got %q", name, *v[name])
		}
		*target = n
	}
	number("SCHEDULERD_PARTITION_MONTHS_AHEAD", &s.monthsAhead)
	number("SCHEDULERD_RETENTION_KEEP_LATEST", &s.policy.KeepLatest)
	number("SCHEDULERD_RETENTION_BATCH", &s.retentionBatchSize)
	if err == nil && (s.monthsAhead < 1 || s.monthsAhead > cron.MaxMonthsAhead) {
		// Checked here so that `schedulerd run` does not start with a partition task that
		// fails at each firing. With 0, a month's partition would appear only at the task's
		// first firing in that month, and submissions before it would be rejected.
		err = fmt.Errorf("invalid SCHEDULERD_PARTITION_MONTHS_AHEAD: want 1 to %d (0 leaves each month "+
			"without a partition until the task runs in it), got %d", cron.MaxMonthsAhead, s.monthsAhead)
	}
	if err == nil && (s.retentionBatchSize < 1 || s.retentionBatchSize > retention.MaxDeleteKeys) {
		// Checked here because retention would replace a value out of range with the
		// maximum without a word.
		err = fmt.Errorf("invalid SCHEDULERD_RETENTION_BATCH: want 1 to %d objects per DeleteObjects "+
			"request (S3's maximum), got %d", retention.MaxDeleteKeys, s.retentionBatchSize)
	}
	if s.s3.PathStyle, err = parseBool("SCHEDULERD_S3_PATH_STYLE", *v["SCHEDULERD_S3_PATH_STYLE"], err); err != nil {
		return s, err
	}
	if s.policy.MinAge, err = time.ParseDuration(*v["SCHEDULERD_RETENTION_MIN_AGE"]); err != nil {
		return s, fmt.Errorf("invalid SCHEDULERD_RETENTION_MIN_AGE: want a duration such as 168h, got %q", *v["SCHEDULERD_RETENTION_MIN_AGE"])
	}
	if err := s.policy.Validate(); err != nil {
		return s, err
	}
	return s, s.checkSchedules()
}

// checkSchedules parses the time zone and the schedules, which the cron service parses
// again when it starts, so that a typo fails before anything connects.
func (s cronSettings) checkSchedules() error {
	var location *time.Location
	if s.timeZone != "" {
		loc, err := time.LoadLocation(s.timeZone)
		if err != nil {
			return fmt.Errorf("invalid SCHEDULERD_CRON_TZ %q: %w", s.timeZone, err)
		}
		location = loc
	}
	schedules := []struct{ name, spec string }{
		{"SCHEDULERD_CRON_PARTITIONS", s.partitionsSchedule},
		{"SCHEDULERD_CRON_RETENTION", s.retentionSchedule},
		{"SCHEDULERD_CRON_BUDGETS", s.budgetsSchedule},
	}
	for _, sc := range schedules {
		if sc.spec == "off" {
			continue
		}
		if _, err := cron.ParseSchedule(sc.spec, location); err != nil {
			return fmt.Errorf("invalid %s: %w; write off to disable the task", sc.name, err)
		}
	}
	return nil
}

func parseBool(name, value string, earlier error) (bool, error) {
	if earlier != nil {
		return false, earlier
	}
	b, err := strconv.ParseBool(value)
	if err != nil {
		return false, fmt.Errorf("invalid %s: want true or false, got %q", name, value)
	}
	return b, nil
}

// runCron is `schedulerd cron run partitions|retention|budgets [-dry-run]`: one run of a
// task, now, by hand and without River, for operators and scripts.
func runCron(ctx context.Context, env *environment, args []string) error {
	if (len(args) > 0 && isHelp(args[0])) || (len(args) > 1 && args[0] == "run" && isHelp(args[1])) {
		return helpText{"usage: schedulerd cron run partitions|retention|budgets [-dry-run] [flags]; add -h after the task for its flags"}
	}
	if len(args) < 2 || args[0] != "run" {
		return usageError{"want: cron run partitions|retention|budgets [-dry-run] [flags]"}
	}
	task := args[1]
	if task != "partitions" && task != "retention" && task != "budgets" {
		return usageError{fmt.Sprintf("unknown cron task %q: want partitions, retention or budgets", task)}
	}
	fs := flag.NewFlagSet("cron run "+task, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dryRun := fs.Bool("dry-run", false, "retention only: print what would be deleted and the bytes freed, and change nothing")
	values := registerCronFlags(fs, env.getenv)
	if err := parseNoArgs(fs, args[2:]); err != nil {
		return err
	}
	settings, err := parseCronSettings(values)
	if err != nil {
		return usageError{err.Error()}
	}
	if *dryRun && task != "retention" {
		return usageError{"-dry-run applies to the retention task only"}
	}

	db, err := openStore(ctx, env, 4)
	if err != nil {
		return err
	}
	defer db.Close()

	switch task {
	case "partitions":
		return runPartitionsOnce(ctx, env, db.Pool(), settings)
	case "budgets":
		return runBudgetsOnce(ctx, env, db)
	}
	return runRetentionOnce(ctx, env, db.Pool(), settings, *dryRun)
}

func runPartitionsOnce(ctx context.Context, env *environment, pool *pgxpool.Pool, s cronSettings) error {
	report, err := cron.EnsurePartitions(ctx, pool, time.Now(), s.monthsAhead)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "created %d jobs partitions; the last ends %s; runway %d months\n",
		report.Created, report.LastBound.Format("2006-01-02"), report.RunwayMonths)
	return nil
}

func runBudgetsOnce(ctx context.Context, env *environment, db *store.Store) error {
	renewals, err := accounting.RenewBudgets(ctx, db, env.log)
	if err != nil {
		return err
	}
	for _, r := range renewals {
		fmt.Fprintf(env.stdout, "renewed %s: %s to %s, %.2f GPU-hours used; now %s to %s\n", r.ProjectID,
			r.OldStart.Format(time.DateOnly), r.OldEnd.Format(time.DateOnly), r.UsedBefore,
			r.NewStart.Format(time.DateOnly), r.NewEnd.Format(time.DateOnly))
	}
	fmt.Fprintf(env.stdout, "budgets renewed: %d\n", len(renewals))
	return nil
}

func runRetentionOnce(ctx context.Context, env *environment, pool *pgxpool.Pool, s cronSettings, dryRun bool) error {
	r, err := newRetainer(ctx, pool, s, env.log, nil)
	if err != nil {
		return err
	}
	report, runErr := r.Run(ctx, time.Now(), dryRun)

	verb := "deleted"
	if dryRun {
		verb = "would delete"
	}
	for _, d := range report.Planned {
		fmt.Fprintf(env.stdout, "%s %s (run %s, project %s, %d bytes)\n", verb, d.URI, d.RunID, d.ProjectID, d.SizeBytes)
	}
	fmt.Fprintf(env.stdout, "%s %d checkpoints, %d bytes; runs checked %d, left whole %d; kept %d; "+
		"finished from earlier runs %d, pending %d, deferred %d, rejected by S3 %d\n",
		verb, len(report.Planned), report.BytesFreed, report.RunsChecked, report.RunsSkipped, report.Kept,
		report.Resumed, report.Pending, report.Deferred, report.Refused)
	return runErr
}

// newRetainer builds the retention task; m, when not nil, counts what it deletes.
func newRetainer(ctx context.Context, pool *pgxpool.Pool, s cronSettings, log *slog.Logger, m *metrics.Metrics) (*retention.Retainer, error) {
	client, err := retention.NewS3Client(ctx, s.s3)
	if err != nil {
		return nil, err
	}
	return retention.New(pool, client, retention.Config{
		Policy: s.policy, BatchSize: s.retentionBatchSize, Logger: log.With("task", "retention"),
		OnDeleted: m.RetentionDeleted,
	})
}

// newCronService builds the cron service that `schedulerd run` starts on every replica.
// It expects River's tables, which `schedulerd migrate up` creates with cron.MigrateRiver.
// With every schedule off it returns an error, since the service needs a task.
func newCronService(ctx context.Context, pool *pgxpool.Pool, s cronSettings, log *slog.Logger, m *metrics.Metrics) (*cron.Service, error) {
	var location *time.Location
	if s.timeZone != "" {
		loc, err := time.LoadLocation(s.timeZone)
		if err != nil {
			return nil, fmt.Errorf("invalid SCHEDULERD_CRON_TZ %q: %w", s.timeZone, err)
		}
		location = loc
	}

	var tasks []cron.Task
	if s.partitionsSchedule != "off" {
		tasks = append(tasks, cron.PartitionTask(pool, s.partitionsSchedule, s.monthsAhead, log.With("task", "partitions")))
	}
	if s.retentionSchedule != "off" {
		r, err := newRetainer(ctx, pool, s, log, m)
		if err != nil {
			return nil, err
		}
		tasks = append(tasks, r.Task(s.retentionSchedule))
	}
	if s.budgetsSchedule != "off" {
		tasks = append(tasks, accounting.BudgetTask(store.New(pool), s.budgetsSchedule, log.With("task", "budgets")))
	}
	svc, err := cron.NewService(pool, cron.Config{Tasks: tasks, Location: location, Logger: log.With("component", "cron"),
		OnFinished: func(o cron.Outcome) { m.CronTaskFinished(o.Task, o.Err) }})
	if err != nil {
		return nil, fmt.Errorf("build cron service: %w", err)
	}
	return svc, nil
}
