// Command schedulerd-bench measures schedulerd next to references run in the same session
// on the same servers. It compares the dequeue with pgbench -N and River, the dequeue at
// growing jobs tables with itself, and pod dispatch with a raw client-go loop. It also
// measures submit-to-pod latency, the daemon's memory and the GPU-hour report.
// scripts/bench.sh starts the servers and runs it. It prints one table and writes it as
// Markdown with the machine's description.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/schedulerd/schedulerd/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "schedulerd-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		databaseURL = flag.String("database-url", "", "PostgreSQL server URL as a user that may create databases (required)")
		kubeconfig  = flag.String("kubeconfig", "", "kubeconfig of the local kube-apiserver; without it the Kubernetes measurements are skipped")
		pgBin       = flag.String("pg-bin", "/usr/lib/postgresql/15/bin", "directory of pgbench and psql")
		daemonBin   = flag.String("daemon-binary", "", "built schedulerd binary, for the memory measurement")
		daemonLog   = flag.String("daemon-log", "", "file for the output of that daemon (default: a temporary file, deleted after a clean stop)")
		runs        = flag.Int("runs", 3, "times each measurement is repeated")
		only        = flag.String("only", "", "comma-separated measurements to run (default all): "+strings.Join(bench.AllMeasurements, ","))
		outDir      = flag.String("out", "bench/results", "directory of the Markdown record")
		profileDir  = flag.String("profile-dir", "", "write CPU and allocation profiles of each measurement here")
		kubeQPS     = flag.Float64("kube-qps", 500, "Kubernetes client QPS, the daemon's default")
		kubeBurst   = flag.Int("kube-burst", 1000, "Kubernetes client burst, the daemon's default")

		dequeueJobs = flag.Int("dequeue-jobs", 20000, "queued jobs drained by each dequeue and River run")
		workers     = flag.String("workers", "1,8", "dequeue loops, pgbench clients and River clients, comma-separated")
		pgScale     = flag.Int("pgbench-scale", 10, "pgbench -i scale (100,000 accounts each)")
		pgTime      = flag.Duration("pgbench-time", 10*time.Second, "length of each pgbench run")

		growthSizes  = flag.String("growth-sizes", "100000,1000000,10000000", "rows in jobs for the growth measurement, comma-separated")
		growthQueued = flag.Int("growth-queued", 5000, "queued jobs among the growth rows")
		// NOTE: with 3 runs per job (30M runs at 10M jobs) seeding the runs alone took 911 s on a
		// shared 2-core machine, and `make bench` took 34 minutes instead of at most 30.
		runsPerJob = flag.Int("runs-per-job", 3, "runs of each finished job for the accounting measurement (3 gives 30M runs at 10M jobs)")

		nodes        = flag.Int("nodes", 128, "simulated GPU nodes (10 GPUs, 110 pods each)")
		dispatchPods = flag.Int("dispatch-pods", 4000, "pods created by each side of a dispatch run")
		idleJobs     = flag.Int("latency-idle-jobs", 100, "jobs per idle latency run")
		loaded       = flag.Duration("latency-loaded-time", 10*time.Second, "length of each latency run at half the peak")
		memoryPods   = flag.Int("memory-pods", 10000, "running pods the daemon follows in the memory measurement")
	)
	flag.Parse()
	if *databaseURL == "" {
		return errors.New("-database-url is required")
	}
	workerCounts, err := parseInts(*workers)
	if err != nil {
		return fmt.Errorf("invalid -workers: %w", err)
	}
	sizes, err := parseInts(*growthSizes)
	if err != nil {
		return fmt.Errorf("invalid -growth-sizes: %w", err)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := &bench.Env{ServerURL: *databaseURL, PGBinDir: *pgBin, DaemonBinary: *daemonBin, DaemonLog: *daemonLog, Runs: *runs, Log: log}
	opts := bench.Options{DequeueJobs: *dequeueJobs, Workers: workerCounts, PGBenchScale: *pgScale,
		PGBenchTime: *pgTime, GrowthSizes: sizes, GrowthQueued: *growthQueued, RunsPerJob: *runsPerJob,
		Nodes: *nodes, DispatchPods: *dispatchPods, LatencyIdleJobs: *idleJobs, LatencyLoaded: *loaded,
		MemoryPods: *memoryPods, Kubeconfig: *kubeconfig, ProfileDir: *profileDir}
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	if *kubeconfig != "" {
		env.Kube, err = clientcmd.BuildConfigFromFlags("", *kubeconfig)
		if err != nil {
			return fmt.Errorf("load kubeconfig %s: %w", *kubeconfig, err)
		}
		env.Kube.QPS, env.Kube.Burst, env.Kube.UserAgent = float32(*kubeQPS), *kubeBurst, "schedulerd-bench"
	} else if len(opts.Only) == 0 {
		opts.Only = []string{bench.NameDequeue, bench.NameGrowth, bench.NameAccounting}
		log.Warn("no -kubeconfig: skipping the dispatch, latency and memory measurements")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	maintenance, err := env.Pool(ctx, "postgres", 2)
	if err != nil {
		return err
	}
	results := &bench.Results{Machine: bench.DescribeMachine(ctx, maintenance), Settings: describe(opts, *runs)}
	maintenance.Close()

	runner := &bench.Runner{Env: env, Opts: opts, Res: results}
	runner.Run(ctx)
	results.Machine.LoadEnd = bench.LoadAverage()

	if err := results.WriteTable(os.Stdout); err != nil {
		return err
	}
	return writeRecord(results, *outDir)
}

// writeRecord writes RESULTS-<date>.md into dir, adding the time when a record of that date
// exists already.
func writeRecord(results *bench.Results, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "RESULTS-"+results.Machine.Start.Format("2006-01-02")+".md")
	if _, err := os.Stat(path); err == nil {
		path = filepath.Join(dir, "RESULTS-"+results.Machine.Start.Format("2006-01-02-1504")+".md")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := results.WriteMarkdown(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Println("\nwrote", path)
	return nil
}

func describe(o bench.Options, runs int) string {
	sizes := make([]string, len(o.GrowthSizes))
	for i, s := range o.GrowthSizes {
		sizes[i] = strconv.Itoa(s)
	}
	return fmt.Sprintf("%d runs each; dequeue %d jobs, workers %v; growth sizes %s with %d queued, "+
		"%d runs per finished job; %d nodes, dispatch %d pods, memory %d pods",
		runs, o.DequeueJobs, o.Workers, strings.Join(sizes, "/"), o.GrowthQueued, o.RunsPerJob,
		o.Nodes, o.DispatchPods, o.MemoryPods)
}

func parseInts(list string) ([]int, error) {
	var out []int
	for _, field := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", field)
		}
		out = append(out, n)
	}
	return out, nil
}
