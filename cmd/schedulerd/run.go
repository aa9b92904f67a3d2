package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/config"
	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/migrations"
	"github.com/schedulerd/schedulerd/retention"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// runDaemon is `schedulerd run`: the scheduler, the dispatcher, GPU-hour accrual and the
// HTTP endpoints, until SIGINT or SIGTERM.
func runDaemon(ctx context.Context, env *environment, args []string) error {
	cfg := env.cfg
	if len(args) == 1 && isHelp(args[0]) {
		return flag.ErrHelp // the settings, run's only flags, are printed
	}
	if len(args) > 0 {
		return usageError{fmt.Sprintf("run takes only settings flags, not %q%s", args, settingHint("run", args[0]))}
	}
	setGCPercent(env.getenv)
	setMemoryLimit(env.getenv, env.log)
	election := leaderElection(cfg)
	settings := newCronSettings(cfg)
	kube, err := newKubeClient(cfg)
	if err != nil {
		return err
	}

	db, err := openStore(ctx, env, 40)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := requireCurrentSchema(ctx, env); err != nil {
		return err
	}
	// The address is bound before anything starts, so a port in use fails the start.
	listener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	routeKlog(env.log)
	workflows, err := newWorkflows(ctx, env, db, settings)
	if err != nil {
		return err
	}

	apiServer := api.New(api.Config{Store: db, Workflows: workflows != nil, S3Configured: s3Configured(env, settings),
		ArtifactURIPrefix: cfg.ArtifactURIPrefix, Logger: env.log.With("component", "api")})
	var metricsGuard func(http.Handler) http.Handler
	if cfg.MetricsRole != "" {
		metricsGuard = func(h http.Handler) http.Handler {
			return apiServer.Guard(store.Role(cfg.MetricsRole), "/metrics", h)
		}
	}
	d := daemon.New(daemon.Config{
		Store:          db,
		Kube:           kube,
		Scheduler:      scheduler.Config{Batch: cfg.DequeueBatch, PollInterval: cfg.PollInterval},
		Dispatcher:     dispatcherConfig(cfg),
		Listener:       listener,
		Registry:       newRegistry(),
		LeaderElection: election,
		Handler:        apiServer,
		MetricsGuard:   metricsGuard,
		Workflows:      workflows,
		Logger:         env.log,
	})
	stopCron, err := startCron(ctx, env, db, settings, d.Metrics())
	if err != nil {
		return err
	}
	defer stopCron()

	env.log.Info("schedulerd started", "http_addr", listener.Addr().String())
	return d.Run(ctx)
}

// dispatcherConfig returns the dispatcher's settings from cfg. The others keep the
// dispatcher's defaults.
func dispatcherConfig(cfg config.Config) dispatcher.Config {
	return dispatcher.Config{UnschedulableTimeout: cfg.UnschedulableTimeout, GPUWaitTimeout: cfg.GPUWaitTimeout,
		ImagePullGrace: cfg.ImagePullGrace, PodTolerations: cfg.PodTolerations}
}

// newWorkflows returns the Temporal side of the daemon when a Temporal address is set, or
// nil: without it, jobs run without workflows and the API refuses what only a workflow
// carries out (hpo jobs, evaluation, registration). Eval reports are read from the S3
// configured for retention.
func newWorkflows(ctx context.Context, env *environment, db *store.Store, settings cronSettings) (*workflow.Runner, error) {
	address := env.cfg.TemporalAddress
	if address == "" {
		env.log.Info("job workflows are off: set -temporal-address or SCHEDULERD_TEMPORAL_ADDRESS to turn them on")
		return nil, nil
	}
	var objects workflow.ObjectReader
	if s3Configured(env, settings) {
		client, err := retention.NewS3Client(ctx, settings.s3)
		if err != nil {
			return nil, err
		}
		objects = client
	} else {
		env.log.Warn("no S3 configured: the API rejects hpo jobs and jobs with evaluation or model sections")
	}
	return workflow.New(workflow.Config{Address: address, Namespace: env.cfg.TemporalNamespace,
		Store: db, Objects: objects, Logger: env.log}), nil
}

// s3Configured reports whether an S3 endpoint or region is set, in the settings or in
// AWS_REGION, which the AWS SDK reads.
func s3Configured(env *environment, settings cronSettings) bool {
	return settings.s3.Endpoint != "" || settings.s3.Region != "" || env.getenv("AWS_REGION") != ""
}

// requireCurrentSchema refuses to run against a database whose migrations this binary does
// not match: an old schema lacks columns, a newer one may have changed their meaning.
func requireCurrentSchema(ctx context.Context, env *environment) error {
	conn, err := connect(ctx, env)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	status, err := migrations.CurrentStatus(ctx, conn)
	if err != nil {
		return err
	}
	switch {
	case status.Current < status.Latest:
		return fmt.Errorf("database schema is at version %d, this binary needs %d: run 'schedulerd migrate up'", status.Current, status.Latest)
	case status.Current > status.Latest:
		return fmt.Errorf("database schema is at version %d, newer than this binary's %d: upgrade schedulerd", status.Current, status.Latest)
	}
	return nil
}

// startCron starts the cron tasks, which run once per scheduled time across all replicas.
// Retention is off when no S3 endpoint or region is configured, since it would have nowhere
// to delete from. With every task off, no cron service starts.
func startCron(ctx context.Context, env *environment, db *store.Store, settings cronSettings, m *metrics.Metrics) (func(), error) {
	if settings.retentionSchedule != "off" && !s3Configured(env, settings) {
		env.log.Warn("checkpoint retention is off: set SCHEDULERD_S3_ENDPOINT or SCHEDULERD_S3_REGION to turn it on")
		settings.retentionSchedule = "off"
	}
	if settings.partitionsSchedule == "off" && settings.retentionSchedule == "off" && settings.budgetsSchedule == "off" {
		env.log.Warn("every cron task is off: no jobs partitions are created ahead and no budget period renews")
		return func() {}, nil
	}
	svc, err := newCronService(ctx, db.Pool(), settings, env.log, m)
	if err != nil {
		return nil, err
	}
	if err := svc.Start(ctx); err != nil {
		return nil, fmt.Errorf("start cron service: %w", err)
	}
	return func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := svc.Stop(stopCtx); err != nil {
			env.log.Error("cron service did not stop cleanly", "err", err)
		}
	}, nil
}
