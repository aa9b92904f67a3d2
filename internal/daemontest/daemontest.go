// Package daemontest runs a whole schedulerd in a test: a fresh migrated database from
// pgtest, the local Kubernetes cluster from kubetest, and the daemon's loops with short
// intervals, stopped when the test ends.
package daemontest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/kubetest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// Main starts the cluster and PostgreSQL for a package's tests, runs them and stops both.
func Main(m *testing.M) {
	os.Exit(Run(m, pgtest.Run))
}

// Run starts the cluster, runs the tests with run (pgtest.Run for PostgreSQL too), stops
// the cluster and returns the exit code, so that a TestMain can start other servers around
// it: s3test.Main(m, func(m *testing.M) int { return daemontest.Run(m, pgtest.Run) }).
func Run(m *testing.M, run func(*testing.M) int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	env, err := kubetest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemontest: start the Kubernetes cluster:", err)
		return 1
	}
	Kube = env
	code := run(m)
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "daemontest:", err)
	}
	return code
}

// Kube is the package's cluster, set by Main.
var Kube *kubetest.Env

// Options changes the daemon of one test.
type Options struct {
	UnschedulableTimeout time.Duration
	// Store is the database to run on, so that several daemons can share one; nil gives
	// the daemon a fresh database.
	Store *store.Store
	// Configure, when set, changes the daemon's configuration before the daemon is built,
	// for example to add a listener, a metrics registry or leader election.
	Configure func(*daemon.Config)
}

// Harness is a running daemon with its database.
type Harness struct {
	T      *testing.T
	Store  *store.Store
	Daemon *daemon.Daemon
	cancel context.CancelFunc
	exited chan struct{}
	runErr error
	// stopped is set once the test has seen Run's result, so Stop reports it only once.
	stopped bool
}

// Start runs a daemon on a fresh database, or on opts.Store; it stops when the test ends.
func Start(t *testing.T, opts Options) *Harness {
	t.Helper()
	h := &Harness{T: t, Store: opts.Store}
	if h.Store == nil {
		h.Store = store.New(pgtest.NewPool(t))
	}
	level := slog.LevelWarn
	if os.Getenv("SCHEDULERD_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	cfg := daemon.Config{
		Store: h.Store,
		Kube:  Kube.Clientset,
		Scheduler: scheduler.Config{Batch: 32, PollInterval: 200 * time.Millisecond,
			Policy: scheduler.Policy{StarvationBound: time.Minute}},
		Dispatcher: dispatcher.Config{UnschedulableTimeout: opts.UnschedulableTimeout,
			ResyncInterval: time.Second},
		AccrualInterval: time.Second,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	h.Daemon = daemon.New(cfg)

	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.exited = cancel, make(chan struct{})
	go func() {
		defer close(h.exited)
		h.runErr = h.Daemon.Run(ctx)
	}()
	t.Cleanup(h.Stop)
	return h
}

// Stop stops the daemon and waits for it, failing the test if Run returned an error that
// the test has not seen through Shutdown or Err.
func (h *Harness) Stop() {
	if h.stopped {
		return
	}
	if err := h.Shutdown(); err != nil {
		h.T.Errorf("daemon: %v", err)
	}
}

// Shutdown cancels the daemon's context, as SIGTERM does, waits for Run to return and
// returns its error.
func (h *Harness) Shutdown() error {
	h.cancel()
	<-h.exited
	h.stopped = true
	return h.runErr
}

// Exited is closed once the daemon's Run has returned, whether stopped or by itself.
func (h *Harness) Exited() <-chan struct{} { return h.exited }

// Err returns Run's error once Exited is closed.
func (h *Harness) Err() error {
	<-h.exited
	h.stopped = true
	return h.runErr
}

// Project creates a project with a quota, as CreateProject does.
func (h *Harness) Project(id string, budget float64, maxConcurrent int) store.Project {
	h.T.Helper()
	return CreateProject(h.T, h.Store, id, budget, maxConcurrent)
}

// Submit queues a job with spec.
func (h *Harness) Submit(project string, priority int, spec jobspec.Spec) store.Job {
	h.T.Helper()
	return SubmitJob(h.T, h.Store, project, priority, spec)
}

// CreateProject creates a project with a quota valid from a month ago to a year ahead, its
// namespace named after the test so that tests sharing the cluster never share pods.
func CreateProject(t testing.TB, s *store.Store, id string, budget float64, maxConcurrent int) store.Project {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("%s-%s", id, uuid.NewString()[:8])
	p, err := s.UpsertProject(ctx, store.Project{ID: id, OrgID: "acme", K8sNamespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.UpsertQuota(ctx, store.Quota{ProjectID: id, GPUHoursBudget: budget,
		MaxConcurrentJobs: maxConcurrent, PriorityTier: 5,
		PeriodStart: time.Now().AddDate(0, -1, 0), PeriodEnd: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// SubmitJob queues a fine_tune job with spec through the store, as the API's submit does.
func SubmitJob(t testing.TB, s *store.Store, project string, priority int, spec jobspec.Spec) store.Job {
	t.Helper()
	if err := spec.Validate(); err != nil {
		t.Fatalf("invalid spec: %v", err)
	}
	job, err := s.SubmitJob(context.Background(), NewSubmission(project, priority, spec))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// NewSubmission returns the submission of a fine_tune job with spec, without an
// idempotency key.
func NewSubmission(project string, priority int, spec jobspec.Spec) store.Submission {
	raw, _ := json.Marshal(spec)
	return store.Submission{
		ProjectID: project, JobType: "fine_tune", Priority: priority, Config: raw,
		GPUMilli: spec.GPUMilli(), GPUModels: spec.Resources.GPUModels, MaxRuntimeSeconds: spec.MaxRuntimeSeconds,
		MaxAttempts: spec.Attempts(), MaxPreemptions: spec.Preemptions(),
		CPUMilli: spec.Resources.CPUMilli, MemoryMiB: spec.Resources.MemoryMiB,
	}
}

// WaitJob polls the job until cond holds or timeout passes.
func (h *Harness) WaitJob(id uuid.UUID, timeout time.Duration, what string, cond func(store.Job) bool) store.Job {
	h.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		job, err := h.Store.GetJob(context.Background(), id)
		if err != nil {
			h.T.Fatal(err)
		}
		if cond(job) {
			return job
		}
		if time.Now().After(deadline) {
			h.T.Fatalf("job %s: %s not reached within %s; last status %s, runs %d, wait reason %v, error %v",
				id, what, timeout, job.Status, job.RunCount, deref(job.WaitReason), deref(job.ErrorMessage))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Runs returns the job's runs, in order.
func (h *Harness) Runs(job uuid.UUID) []store.Run {
	h.T.Helper()
	var runs []store.Run
	rows, err := h.Store.Pool().Query(context.Background(),
		`SELECT id FROM runs WHERE job_id = $1 ORDER BY run_number`, job)
	if err != nil {
		h.T.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			h.T.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		h.T.Fatal(err)
	}
	for _, id := range ids {
		run, err := h.Store.GetRun(context.Background(), id)
		if err != nil {
			h.T.Fatal(err)
		}
		runs = append(runs, run)
	}
	return runs
}

// Status is a WaitJob condition on the job's status.
func Status(want store.JobStatus) func(store.Job) bool {
	return func(j store.Job) bool { return j.Status == want }
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
