// Package replay drives a GPU-cluster trace through a running schedulerd: it creates the
// trace's nodes as KWOK nodes, the projects and their quotas, submits each GPU task as a job
// on the trace's clock (compressed by a speedup and a load factor), follows the jobs to
// their ends and writes a report. It decides nothing about scheduling; it is a client of
// the database and the cluster, like a user would be.
//
// NOTE: jobs are submitted through the store, not yet through an admin HTTP API; the
// daemon sees them exactly as it would see API submissions.
package replay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// Config is one replay.
type Config struct {
	NodesFile, TasksFile string
	// Limit replays only the first Limit GPU tasks in file order; 0 replays all.
	Limit int
	// Mode is trace.ModePaced or trace.ModeFill.
	Mode trace.Mode
	// Speedup is trace seconds per wall second; Load compresses arrivals further.
	Speedup, Load float64
	// BudgetScale multiplies the projects' GPU-hour budgets in paced mode, which are first
	// divided by Speedup because accounting meters wall-clock GPU time. Fill mode ignores it
	// and Speedup for budgets, because its budgets are sized never to limit.
	BudgetScale float64
	// MaxConcurrent is each project's concurrency limit; 0 keeps the trace defaults.
	MaxConcurrent int
	// ReportDir receives report.md and its plots.
	ReportDir string
	// DaemonPID is the schedulerd process whose memory and CPU the report shows; 0 for none.
	DaemonPID int
	// Timeout ends a replay that has not finished; 0 means 24 hours.
	Timeout time.Duration
	// Command is the command line, for the report.
	Command  string
	Progress io.Writer
	Logger   *slog.Logger
}

// Replayer runs one replay.
type Replayer struct {
	cfg   Config
	store *store.Store
	kube  kubernetes.Interface
	plan  *plan
	// fillStop says, in fill mode, which task found no room.
	fillStop string
	// step is the name of the step that Run is at, which the report of a replay that stops
	// early gives.
	step string
	// continued is the number of tasks that earlier runs had submitted.
	continued int
}

// Steps of a replay, as the report of a replay that stops early names them.
const (
	stepNodes    = "creating the trace's nodes"
	stepProjects = "creating the projects"
	stepSubmit   = "submitting trace tasks"
	stepWait     = "waiting for the submitted jobs to end"
)

// New checks the configuration and reads the trace, so that a malformed file stops the
// replay before anything is created or submitted.
func New(cfg Config, s *store.Store, kube kubernetes.Interface) (*Replayer, error) {
	if err := validate(&cfg); err != nil {
		return nil, err
	}
	p, err := loadPlan(cfg)
	if err != nil {
		return nil, err
	}
	return &Replayer{cfg: cfg, store: s, kube: kube, plan: p}, nil
}

// Validate checks the configuration's values without reading the trace, so that the CLI
// rejects a bad flag before it connects to the database.
func (cfg Config) Validate() error { return validate(&cfg) }

// validate checks cfg and fills in the defaults of the fields left zero.
func validate(cfg *Config) error {
	switch {
	case cfg.NodesFile == "" || cfg.TasksFile == "":
		return fmt.Errorf("both the node file and the task file are required")
	case cfg.Speedup <= 0:
		return fmt.Errorf("invalid speedup %v: must be positive", cfg.Speedup)
	case cfg.Load <= 0:
		return fmt.Errorf("invalid load %v: must be positive", cfg.Load)
	case cfg.Mode != trace.ModePaced && cfg.Mode != trace.ModeFill:
		return fmt.Errorf("invalid mode %q: want %s or %s", cfg.Mode, trace.ModePaced, trace.ModeFill)
	case cfg.Limit < 0:
		return fmt.Errorf("invalid limit %d: must be 0 (all) or positive", cfg.Limit)
	case cfg.BudgetScale < 0 || math.IsNaN(cfg.BudgetScale):
		return fmt.Errorf("invalid budget scale %v: must be positive", cfg.BudgetScale)
	case cfg.MaxConcurrent < 0:
		return fmt.Errorf("invalid max concurrent %d: must be 0 (the trace projects' own) or positive", cfg.MaxConcurrent)
	case math.IsNaN(cfg.Speedup) || math.IsInf(cfg.Speedup, 0) || math.IsNaN(cfg.Load) || math.IsInf(cfg.Load, 0):
		return fmt.Errorf("invalid speedup %v or load %v: must be finite", cfg.Speedup, cfg.Load)
	}
	if cfg.BudgetScale <= 0 {
		cfg.BudgetScale = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 24 * time.Hour
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run replays the trace and writes the report, returning its path. When ctx ends or
// Config.Timeout passes first, Run still writes a report of what happened up to then,
// marked partial, and returns its path together with an error that names the cause. A
// replay that fails for another reason once it has started submitting does the same, with
// the error as the cause. Run is RunWithAbort with an abort context that never ends.
func (r *Replayer) Run(ctx context.Context) (string, error) {
	return r.RunWithAbort(ctx, context.Background())
}

// RunWithAbort is Run with a second context, abort, which stops the writing of a partial
// report. A caller that ends ctx at its first signal ends abort at its second, so that a
// user who does not want to wait for the report can leave at once. A partial report that
// starts while ctx is still running (after a failure or Config.Timeout) also stops when
// ctx ends. Either way, RunWithAbort then returns no path and an error that wraps the
// replay's error and the cause of the stop.
func (r *Replayer) RunWithAbort(ctx, abort context.Context) (string, error) {
	started := time.Now()
	runCtx, cancel := context.WithTimeoutCause(ctx, r.cfg.Timeout, timeoutError{r.cfg.Timeout})
	defer cancel()
	rec := newRecorder(r.store, r.cfg.DaemonPID, r.cfg.Logger)

	submitted, err := r.replay(runCtx, rec, started)
	switch {
	case err == nil:
		// Step 3: the report.
		return r.writeReport(runCtx, rec, started, submitted, nil)
	case runCtx.Err() != nil:
		reason := stopReason(runCtx)
		runErr := fmt.Errorf("%s while %s: %w", reason, r.step, err)
		return r.writePartialReport(ctx, abort, rec, started, reason, runErr)
	case r.submitting():
		runErr := fmt.Errorf("failed while %s: %w", r.step, err)
		return r.writePartialReport(ctx, abort, rec, started, "failed: "+err.Error(), runErr)
	default:
		return "", err
	}
}

// replay runs the steps before the report and returns how many tasks were submitted.
func (r *Replayer) replay(ctx context.Context, rec *recorder, started time.Time) (int, error) {
	// Step 1: the cluster and the projects.
	r.step = stepNodes
	if err := r.createNodes(ctx); err != nil {
		return 0, err
	}
	r.step = stepProjects
	if err := r.createProjects(ctx); err != nil {
		return 0, err
	}

	// Step 2: submit on the trace's clock while sampling, until every job has ended.
	sampling, stopSampling := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rec.run(sampling, started) }()

	r.step = stepSubmit
	submitted, err := r.submitAll(ctx, rec)
	if err == nil {
		r.step = stepWait
		err = r.waitForEnd(ctx, rec)
	}
	stopSampling()
	<-done
	return submitted, err
}
