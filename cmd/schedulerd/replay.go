package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
)

// runReplay is `schedulerd replay`: it replays a GPU-cluster trace through a running
// schedulerd that uses the same database and cluster, then writes a report. A replay that
// SIGINT, SIGTERM or -timeout stops, or that fails once it has started submitting, writes
// a partial report and exits 1. A second SIGINT or SIGTERM stops the writing of that report
// and exits 1 at once, without a report.
func runReplay(ctx context.Context, env *environment, args []string) error {
	cfg, err := parseReplayFlags(env, args)
	if err != nil {
		return err
	}
	kube, err := newKubeClient(env.cfg)
	if err != nil {
		return err
	}
	db, err := openStore(ctx, env, 8)
	if err != nil {
		return err
	}
	defer db.Close()

	r, err := replay.New(cfg, db, kube)
	if err != nil {
		return err
	}
	abort := env.abort
	if abort == nil {
		abort = context.Background()
	}
	path, err := r.RunWithAbort(ctx, abort)
	switch {
	case path != "" && err != nil:
		// The replay stopped early or failed, so the report is partial and the command fails.
		fmt.Fprintf(env.stdout, "partial report written to %s\n", path)
	case path != "":
		fmt.Fprintf(env.stdout, "report written to %s\n", path)
	}
	return err
}

func parseReplayFlags(env *environment, args []string) (replay.Config, error) {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	dir := fs.String("trace-dir", "", "folder with openb_node_list_gpu_node.csv and openb_pod_list_default.csv")
	nodes := fs.String("nodes", "", "node file (default: openb_node_list_gpu_node.csv in -trace-dir)")
	tasks := fs.String("tasks", "", "task file (default: openb_pod_list_default.csv in -trace-dir)")
	limit := fs.Int("limit", 0, "replay only the first N GPU tasks of the file; 0 replays all")
	mode := fs.String("mode", string(trace.ModePaced), "paced (the trace's clock) or fill (arrive in order, never leave)")
	speedup := fs.Float64("speedup", 20000, "trace seconds per wall-clock second")
	load := fs.Float64("load", 20, "extra compression of arrivals only: above 1 the cluster saturates")
	budgetScale := fs.Float64("budget-scale", 2, "paced mode: multiplies the projects' GPU-hour budgets (divided by -speedup first); fill-mode budgets never limit")
	concurrent := fs.Int("max-concurrent", 2000, "each project's concurrency limit; 0 keeps the trace projects' own (12 to 16, sized for the trace's own pace)")
	reportDir := fs.String("report-dir", "", "folder for report.md and its plots (default out/replay-TIME)")
	pid := fs.Int("daemon-pid", 0, "PID of the schedulerd whose peak memory and CPU the report shows")
	timeout := fs.Duration("timeout", 2*time.Hour, "stop after this long and write a partial report")
	if err := parseNoArgs(fs, args); err != nil {
		return replay.Config{}, err
	}

	cfg := replay.Config{NodesFile: *nodes, TasksFile: *tasks, Limit: *limit, Mode: trace.Mode(*mode),
		Speedup: *speedup, Load: *load, BudgetScale: *budgetScale, MaxConcurrent: *concurrent,
		ReportDir: *reportDir, DaemonPID: *pid, Timeout: *timeout, Progress: env.stdout,
		Command: "schedulerd replay " + strings.Join(args, " "), Logger: env.log}
	if cfg.NodesFile == "" && *dir != "" {
		cfg.NodesFile = filepath.Join(*dir, "openb_node_list_gpu_node.csv")
	}
	if cfg.TasksFile == "" && *dir != "" {
		cfg.TasksFile = filepath.Join(*dir, "openb_pod_list_default.csv")
	}
	if cfg.NodesFile == "" || cfg.TasksFile == "" {
		return cfg, usageError{"name the trace with -trace-dir, or with -nodes and -tasks"}
	}
	if cfg.ReportDir == "" {
		cfg.ReportDir = filepath.Join("out", "replay-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err.Error()}
	}
	if _, err := os.Stat(cfg.TasksFile); err != nil {
		return cfg, usageError{fmt.Sprintf("task file: %v", err)}
	}
	return cfg, nil
}
