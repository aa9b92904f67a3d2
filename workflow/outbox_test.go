package workflow_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/temporaltest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
	"github.com/schedulerd/schedulerd/workflow"
)

// The tests here run the outbox sender and the worker of a workflow.Runner against the
// shared Temporal server, without a daemon.

// runRunner runs a Runner on the steps' database and S3 until the test ends.
func (s *steps) runRunner() {
	s.t.Helper()
	runner := workflow.New(workflow.Config{Address: temporaltest.Shared(s.t).Address, Store: s.store,
		Objects: s.s3, PollInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	s.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("runner: %v", err)
		}
	})
}

// submitWithWorkflow submits a job that has a workflow, whose start event the outbox
// holds.
func (s *steps) submitWithWorkflow(spec jobspec.Spec) store.Job {
	s.t.Helper()
	sub := daemontest.NewSubmission("vision", 5, spec)
	sub.SubmittedBy, sub.Workflow = "alice", true
	job, err := s.store.SubmitJob(context.Background(), sub)
	if err != nil {
		s.t.Fatal(err)
	}
	return job
}

// outboxCount counts the job's events of a kind that wait in the outbox.
func (s *steps) outboxCount(job store.Job, kind string) int {
	s.t.Helper()
	var n int
	err := s.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM workflow_events WHERE workflow_id = $1 AND kind = $2`,
		store.WorkflowID(job.ID), kind).Scan(&n)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

// waitOutbox waits until the job has no event of kind in the outbox.
func (s *steps) waitOutbox(job store.Job, kind string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.outboxCount(job, kind) > 0 {
		if time.Now().After(deadline) {
			s.t.Fatalf("the %s event of job %s was not delivered within 30s", kind, job.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// describe returns the status of the job's workflow, or nil when Temporal has no workflow
// with its id.
func describe(t *testing.T, job store.Job) *enums.WorkflowExecutionStatus {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: temporaltest.Shared(t).Address, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, err := c.DescribeWorkflow(context.Background(), store.WorkflowID(job.ID), "")
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	status := desc.RawResponse.GetWorkflowExecutionInfo().GetStatus()
	return &status
}

// TestLateEventStartsNoWorkflow: a trial_ended event for a finished job whose workflow
// Temporal no longer has (as after the namespace's retention) is delivered without
// starting a workflow, so the job's result stays as its workflow left it.
func TestLateEventStartsNoWorkflow(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	job := s.submitWithWorkflow(trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
	if _, err := s.store.Pool().Exec(ctx, `DELETE FROM workflow_events`); err != nil {
		t.Fatal(err) // its start event was delivered long ago
	}
	run := s.startRun()
	s.endRun(run, store.RunCompleted)
	final := workflow.Result{Status: store.JobCompleted, Evaluation: &workflow.Evaluation{
		Metrics: map[string]float64{"accuracy": 0.9}}}
	if err := s.store.SetJobResult(ctx, job.Ref(), final); err != nil {
		t.Fatal(err)
	}
	before, err := s.store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.Pool().Exec(ctx, `SELECT workflow_event($1, 'trial_ended', $2)`,
		store.WorkflowID(job.ID), `{"job_id": "`+job.ID.String()+`", "status": "completed"}`); err != nil {
		t.Fatal(err)
	}

	s.runRunner()
	s.waitOutbox(job, "job_ended")
	s.waitOutbox(job, "trial_ended")
	if status := describe(t, job); status != nil {
		t.Errorf("a late trial_ended event started workflow %s (%s), want none", store.WorkflowID(job.ID), status)
	}
	after, err := s.store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(t, after.Result, before.Result) {
		t.Errorf("result %s after a late event, want %s", after.Result, before.Result)
	}
}

// TestEndBeforeStartEvent: a job that ended while its start event waits in the outbox
// (its delivery failed and backs off) gets no workflow from its job_ended event, and the
// start event later runs the whole lifecycle.
func TestEndBeforeStartEvent(t *testing.T) {
	s := newSteps(t, 1000)
	ctx := context.Background()
	job := s.submitWithWorkflow(trainSpec(func(spec *jobspec.Spec) { spec.Evaluation = minAccuracy(0.8) }))
	if _, err := s.store.Pool().Exec(ctx, `UPDATE workflow_events SET attempts = 1,
		next_attempt_at = now() + interval '1 hour' WHERE kind = 'start'`); err != nil {
		t.Fatal(err)
	}
	run := s.startRun()
	s.artifact(run, "eval_report", []byte(`{"metrics": {"accuracy": 0.93}}`), nil)
	s.endRun(run, store.RunCompleted)

	s.runRunner()
	s.waitOutbox(job, "job_ended")
	if status := describe(t, job); status != nil {
		t.Errorf("job_ended started workflow %s (%s) before its start event, want none",
			store.WorkflowID(job.ID), status)
	}
	if n := s.outboxCount(job, "start"); n != 1 {
		t.Fatalf("%d start events in the outbox, want 1", n)
	}

	if _, err := s.store.Pool().Exec(ctx, `UPDATE workflow_events SET next_attempt_at = now()`); err != nil {
		t.Fatal(err)
	}
	s.waitOutbox(job, "start")
	waitCompleted(t, job)
	after, err := s.store.GetJob(ctx, job.ID)
	if err != nil {
		t.Fatal(err)
	}
	var result workflow.Result
	if err := json.Unmarshal(after.Result, &result); err != nil {
		t.Fatalf("result %s: %v", after.Result, err)
	}
	if result.Status != store.JobCompleted {
		t.Errorf("result status %s, want completed", result.Status)
	}
	if result.Evaluation == nil || result.Evaluation.Metrics["accuracy"] != 0.93 {
		t.Errorf("evaluation %+v, want accuracy 0.93 from the report", result.Evaluation)
	}
}

// waitCompleted waits until the job's workflow has completed.
func waitCompleted(t *testing.T, job store.Job) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		status := describe(t, job)
		if status != nil && *status == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow of job %s is %v a minute after its start, want completed", job.ID, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return string(xs) == string(ys)
}
