// Package cron decides when schedulerd's maintenance tasks run, and that each scheduled run
// happens once however many replicas run the scheduler. It never decides what a task does:
// tasks such as job partitions and checkpoint retention own their work.
//
// A cron expression sets when a task fires (robfig/cron/v3 syntax, read in UTC unless CRON_TZ=
// or Config.Location names a zone). River, on the same PostgreSQL, executes: at each firing
// every replica inserts a River job unique by task and scheduled time, so one job exists per
// firing and one replica works it. River retries a failed run with backoff, and its rescuer
// runs again a job whose worker died. Each run's outcome goes to the cron_task_status table.
package cron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"
)

// Task is one maintenance task and its schedule.
type Task struct {
	// Name identifies the task in River jobs, logs and cron_task_status. Lowercase letters,
	// digits, '-' and '_'.
	Name string
	// Schedule is a cron expression such as "0 3 * * *" or "CRON_TZ=Europe/Paris 0 3 * * *".
	Schedule string
	// Timeout bounds one run; River cancels the run's context after it. Default 10 minutes.
	Timeout time.Duration
	// MaxAttempts is how many times River tries one firing before it gives up. Default 5.
	MaxAttempts int
	// Run does the work. scheduledAt is the firing time, the same on every replica, which a
	// task may use as its "now" so that a retry decides as the first attempt did. Run must
	// be safe to run again after a crash part way through.
	Run func(ctx context.Context, scheduledAt time.Time) error
}

// Defaults for Task and Config fields left zero.
const (
	DefaultTimeout     = 10 * time.Minute
	DefaultMaxAttempts = 5
	DefaultWorkers     = 2
	DefaultMaxLateness = 10 * time.Minute
	DefaultStopTimeout = 10 * time.Second
)

var taskNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,99}$`)

// Config configures a Service.
type Config struct {
	// Tasks are the tasks to schedule and run. Names must be unique.
	Tasks []Task
	// Location is the zone of expressions without CRON_TZ=. Nil means UTC.
	Location *time.Location
	// Logger receives the service's logs and River's. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// OnFinished is called after each run of a task, with its outcome, for metrics. Nil
	// calls nothing.
	OnFinished func(Outcome)
	// ClientID names this replica's River client; empty lets River pick one. It must
	// differ between replicas.
	ClientID string
	// Workers is how many tasks this replica runs at once. Default 2.
	Workers int
	// MaxLateness is how late the scheduler loop may notice a firing and still insert its
	// job. A later firing is skipped and logged: another replica has inserted it, or a
	// machine that slept must not run an old firing whose River job was already cleaned up.
	// Default 10 minutes.
	MaxLateness time.Duration
	// StopTimeout is how long running tasks may go on once the service stops, by Stop or
	// by the end of Start's context, before River cancels their contexts. Default 10 seconds.
	StopTimeout time.Duration
	// RescueAfter is how long a run may go on before River's rescuer takes it for a run
	// whose worker died, and runs it again. Default: the longest task timeout plus 5 minutes.
	RescueAfter time.Duration
}

// withDefaults returns c with zero fields filled in and every task checked.
func (c Config) withDefaults() (Config, error) {
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.MaxLateness <= 0 {
		c.MaxLateness = DefaultMaxLateness
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}

	tasks, longest, err := checkTasks(c.Tasks)
	if err != nil {
		return Config{}, err
	}
	c.Tasks = tasks
	if c.RescueAfter <= 0 {
		c.RescueAfter = longest + 5*time.Minute
	}
	if c.RescueAfter < longest {
		return Config{}, fmt.Errorf("cron: RescueAfter %s is shorter than the longest task timeout %s", c.RescueAfter, longest)
	}
	return c, nil
}

// checkTasks fills in task defaults, rejects bad or duplicate tasks and returns the longest
// timeout.
func checkTasks(in []Task) ([]Task, time.Duration, error) {
	if len(in) == 0 {
		return nil, 0, errors.New("cron: no tasks configured")
	}

	tasks := make([]Task, len(in))
	seen := make(map[string]bool)
	var longest time.Duration
	for i, t := range in {
		if !taskNameRE.MatchString(t.Name) {
			return nil, 0, fmt.Errorf("cron: invalid task name %q: want lowercase letters, digits, '-' and '_'", t.Name)
		}
		if seen[t.Name] {
			return nil, 0, fmt.Errorf("cron: task %q configured twice", t.Name)
		}
		if t.Run == nil {
			return nil, 0, fmt.Errorf("cron: task %q has no Run function", t.Name)
		}
		seen[t.Name] = true

		if t.Timeout <= 0 {
			t.Timeout = DefaultTimeout
		}
		if t.MaxAttempts <= 0 {
			t.MaxAttempts = DefaultMaxAttempts
		}
		longest = max(longest, t.Timeout)
		tasks[i] = t
	}
	return tasks, longest, nil
}
