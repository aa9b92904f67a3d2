package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/accounting"
	"github.com/schedulerd/schedulerd/config"
	"github.com/schedulerd/schedulerd/cron"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/retention"
	"github.com/schedulerd/schedulerd/store"
)

// cronSettings configure the cron tasks, and s3 also the reading of eval reports.
type cronSettings struct {
	location           *time.Location // zone of schedules without CRON_TZ=; nil is UTC
	partitionsSchedule string
	retentionSchedule  string
	budgetsSchedule    string
	monthsAhead        int
	s3                 retention.S3Config
	policy             retention.Policy
	retentionBatchSize int
}

// newCronSettings takes the cron settings from cfg, which config has checked.
func newCronSettings(cfg config.Config) cronSettings {
	return cronSettings{
		location:           cfg.CronLocation,
		partitionsSchedule: cfg.CronPartitions,
		retentionSchedule:  cfg.CronRetention,
		budgetsSchedule:    cfg.CronBudgets,
		monthsAhead:        cfg.PartitionMonthsAhead,
		s3:                 cfg.S3,
		policy:             cfg.RetentionPolicy,
		retentionBatchSize: cfg.RetentionBatch,
	}
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
	if err := parseNoArgs(fs, args[2:]); err != nil {
		return err
	}
	settings := newCronSettings(env.cfg)
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
	svc, err := cron.NewService(pool, cron.Config{Tasks: tasks, Location: s.location, Logger: log.With("component", "cron"),
		OnFinished: func(o cron.Outcome) { m.CronTaskFinished(o.Task, o.Err) }})
	if err != nil {
		return nil, fmt.Errorf("build cron service: %w", err)
	}
	return svc, nil
}
