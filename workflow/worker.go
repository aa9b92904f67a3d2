package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	sdkworkflow "go.temporal.io/sdk/workflow"

	"github.com/schedulerd/schedulerd/store"
)

// Config is the Temporal connection and the parts the activities use.
type Config struct {
	// Address is the Temporal frontend, host:port.
	Address string
	// Namespace is the Temporal namespace ("default").
	Namespace string
	Store     *store.Store
	// Objects reads eval reports and checks model artifacts. With nil, every step that needs
	// S3 fails and Temporal retries it until a worker with S3 runs it.
	Objects ObjectReader
	// PollInterval is how often the outbox is read when no notification came (2s).
	PollInterval time.Duration
	Logger       *slog.Logger
}

// Runner is the Temporal side of one schedulerd: a worker that runs the job workflows and
// their activities, and the sender that carries outbox events to Temporal. Every replica
// runs one; Temporal shares the work between their workers, and the outbox rows are locked
// while sent, so no event goes out twice at once.
type Runner struct {
	cfg    Config
	client client.Client
	worker worker.Worker
	wake   chan struct{}
}

// New returns a Runner for cfg; Run connects.
func New(cfg Config) *Runner {
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Runner{cfg: cfg, wake: make(chan struct{}, 1)}
}

// Run connects to Temporal, retrying with back-off while it is unreachable (events wait in
// the outbox meanwhile), then runs the worker and the outbox sender until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	if err := r.connect(ctx); err != nil {
		return nil // ctx ended before Temporal accepted a connection
	}
	defer r.client.Close()
	if err := r.worker.Start(); err != nil {
		return fmt.Errorf("start the Temporal worker: %w", err)
	}
	defer r.worker.Stop()
	r.cfg.Logger.Info("Temporal worker started", "address", r.cfg.Address, "namespace", r.cfg.Namespace,
		"task_queue", TaskQueue)

	var wg sync.WaitGroup
	wg.Go(func() {
		r.cfg.Store.Listen(ctx, store.WorkflowEventsChannel, r.Wake, r.cfg.Logger)
	})
	r.sendLoop(ctx)
	wg.Wait()
	return nil
}

// connect dials Temporal until a connection succeeds or ctx ends, and registers the workflow and its
// activities on a new worker.
func (r *Runner) connect(ctx context.Context) error {
	backoff := time.Second
	for {
		c, err := client.DialContext(ctx, client.Options{
			HostPort: r.cfg.Address, Namespace: r.cfg.Namespace,
			Logger: tlog.NewStructuredLogger(r.cfg.Logger.With("component", "temporal")),
		})
		if err == nil {
			r.client = c
			break
		}
		r.cfg.Logger.Warn("Temporal unreachable; workflow events wait in the outbox", "address", r.cfg.Address,
			"err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}

	r.worker = worker.New(r.client, TaskQueue, worker.Options{})
	r.worker.RegisterWorkflowWithOptions(JobWorkflow, sdkworkflow.RegisterOptions{Name: WorkflowName})
	r.worker.RegisterWorkflowWithOptions(ResumeWorkflow, sdkworkflow.RegisterOptions{Name: ResumeWorkflowName})
	r.worker.RegisterActivity(&Activities{Store: r.cfg.Store, Objects: r.cfg.Objects,
		Logger: r.cfg.Logger.With("component", "workflow")})
	return nil
}

// Wake makes the sender read the outbox now.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// sendLoop delivers outbox events whenever woken and at every poll interval.
func (r *Runner) sendLoop(ctx context.Context) {
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	for {
		r.sendDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-ticker.C:
		}
	}
}

// sendDue delivers due events in batches until none is left or a delivery fails.
func (r *Runner) sendDue(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := r.cfg.Store.DeliverWorkflowEvents(ctx, 50, func(e store.WorkflowEvent) error {
			err := r.deliver(ctx, e)
			if err != nil && ctx.Err() == nil {
				r.cfg.Logger.Warn("workflow event not delivered; retrying later", "event_id", e.ID, "kind", e.Kind,
					"workflow_id", e.WorkflowID, "attempt", e.Attempts+1, "retry_in", retryAfter(e.Attempts+1), "err", err)
			}
			return err
		}, retryAfter)
		if err != nil {
			if ctx.Err() == nil {
				r.cfg.Logger.Warn("workflow events not delivered", "err", err)
			}
			return
		}
		if n < 50 {
			return
		}
	}
}

// retryAfter backs off a failing event from 1 s to 1 min.
func retryAfter(attempts int) time.Duration {
	return min(time.Second<<min(attempts, 6), time.Minute)
}

// deliver starts the event's workflow for a start event, and sends any other event to the
// running workflow as a signal. Only a start event starts a workflow. A signal for a
// workflow that does not run is dropped as delivered. Either the workflow has finished,
// and may have been removed by the namespace's retention, or its start event still waits
// in the outbox, and the workflow reads the job from the database when it starts.
func (r *Runner) deliver(ctx context.Context, e store.WorkflowEvent) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	job, err := store.JobRefOfWorkflow(e.WorkflowID)
	if err != nil {
		r.cfg.Logger.Error("workflow event dropped", "event_id", e.ID, "workflow_id", e.WorkflowID, "err", err)
		return nil
	}

	if e.Kind == "start" {
		err = r.start(ctx, e.WorkflowID, job)
	} else {
		err = r.signal(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("send %s to workflow %s: %w", e.Kind, e.WorkflowID, err)
	}
	r.cfg.Logger.Debug("workflow event delivered", "event_id", e.ID, "kind", e.Kind, "workflow_id", e.WorkflowID)
	return nil
}

// start starts the job's workflow. The reuse policy REJECT_DUPLICATE makes a repeated start
// event a no-op while Temporal still has the workflow, running or finished.
func (r *Runner) start(ctx context.Context, workflowID string, job store.JobRef) error {
	options := client.StartWorkflowOptions{
		ID: workflowID, TaskQueue: TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}
	_, err := r.client.ExecuteWorkflow(ctx, options, WorkflowName, job)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}

// signal sends the event to its workflow if the workflow runs.
func (r *Runner) signal(ctx context.Context, e store.WorkflowEvent) error {
	var payload map[string]any
	if err := json.Unmarshal(e.Payload, &payload); err != nil {
		r.cfg.Logger.Error("workflow event dropped", "event_id", e.ID, "kind", e.Kind, "err", err)
		return nil
	}
	err := r.client.SignalWorkflow(ctx, e.WorkflowID, "", e.Kind, payload)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		r.cfg.Logger.Debug("workflow event dropped: the workflow does not run", "event_id", e.ID, "kind", e.Kind,
			"workflow_id", e.WorkflowID)
		return nil
	}
	return err
}
