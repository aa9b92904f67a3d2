package cron

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// JobKind is the River job kind of every task run.
const JobKind = "schedulerd_cron_task"

// Queue is the River queue the task runs go through.
const Queue = "schedulerd_cron"

// taskArgs are the arguments of one task run. The pair is the job's unique key, so each
// replica that inserts a firing inserts the same job. ScheduledAt is in UTC so that the JSON,
// and with it the key, does not depend on a replica's zone.
type taskArgs struct {
	Task        string    `json:"task"`
	ScheduledAt time.Time `json:"scheduled_at"`
}

func (taskArgs) Kind() string { return JobKind }

// insertOpts makes a firing's job unique in every state, so that not even a discarded or
// cancelled run of a firing lets another replica insert it again. River's job cleaner
// removes finished jobs after a day; Config.MaxLateness keeps late inserts well inside that.
func insertOpts(t Task) *river.InsertOpts {
	return &river.InsertOpts{
		Queue:       Queue,
		MaxAttempts: t.MaxAttempts,
		UniqueOpts: river.UniqueOpts{
			ByArgs:  true,
			ByState: rivertype.JobStates(),
		},
	}
}

// taskWorker runs the task a job names and records the outcome.
type taskWorker struct {
	river.WorkerDefaults[taskArgs]

	tasks  map[string]Task
	status *statusWriter
	now    func() time.Time
	log    *slog.Logger

	onFinished func(Outcome)
}

// Timeout gives each task its own deadline rather than River's client-wide one.
func (w *taskWorker) Timeout(job *river.Job[taskArgs]) time.Duration {
	if t, ok := w.tasks[job.Args.Task]; ok {
		return t.Timeout
	}
	return 0
}

// Work runs one firing of a task. A task this binary does not know, left by an older or
// newer version, is cancelled rather than retried.
func (w *taskWorker) Work(ctx context.Context, job *river.Job[taskArgs]) error {
	task, ok := w.tasks[job.Args.Task]
	if !ok {
		return river.JobCancel(fmt.Errorf("unknown cron task %q", job.Args.Task))
	}
	log := w.log.With("task", task.Name, "scheduled_at", job.Args.ScheduledAt, "attempt", job.Attempt)
	log.Debug("cron task started")

	started := w.now()
	runErr := task.Run(ctx, job.Args.ScheduledAt)
	finished := w.now()

	outcome := Outcome{
		Task: task.Name, ScheduledAt: job.Args.ScheduledAt,
		StartedAt: started, FinishedAt: finished, Err: runErr,
	}
	if err := w.status.record(context.WithoutCancel(ctx), outcome); err != nil {
		log.Error("cron task status not recorded", "error", err)
	}
	if w.onFinished != nil {
		w.onFinished(outcome)
	}

	if runErr != nil {
		log.Warn("cron task failed", "error", runErr, "max_attempts", job.MaxAttempts)
		return fmt.Errorf("cron task %s scheduled at %s: %w", task.Name, job.Args.ScheduledAt.Format(time.RFC3339), runErr)
	}
	log.Info("cron task finished", "duration", finished.Sub(started))
	return nil
}
