package cron

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/schedulerd/schedulerd/internal/errlist"
)

// maxWait caps the scheduler loop's sleep, so that a step of the wall clock (which Go's
// timers, running on the monotonic clock, do not see) delays a firing by a minute at most.
const maxWait = time.Minute

// retryWait is the pause after a failed insert before the loop tries the firing again.
const retryWait = 5 * time.Second

// entry is one task's place in the schedule.
type entry struct {
	task     Task
	schedule Schedule
	next     time.Time // first firing not yet handled; zero until the first tick
}

// inserter inserts the River job of one firing. It reports whether the job already existed.
type inserter func(ctx context.Context, args taskArgs, opts *river.InsertOpts) (duplicate bool, err error)

// scheduler inserts a River job for each firing of each task.
type scheduler struct {
	mu          sync.Mutex
	entries     []*entry
	insert      inserter
	maxLateness time.Duration
	log         *slog.Logger
}

// TickResult counts what one Tick did.
type TickResult struct {
	Inserted   int // jobs this call inserted
	Duplicates int // firings whose job another replica (or an earlier call) had inserted
	Skipped    int // firings more than MaxLateness late, or passed over for a later one
}

func newScheduler(tasks []Task, loc *time.Location, insert inserter, maxLateness time.Duration, log *slog.Logger) (*scheduler, error) {
	s := &scheduler{insert: insert, maxLateness: maxLateness, log: log}
	for _, t := range tasks {
		schedule, err := ParseSchedule(t.Schedule, loc)
		if err != nil {
			return nil, fmt.Errorf("cron task %s: %w", t.Name, err)
		}
		s.entries = append(s.entries, &entry{task: t, schedule: schedule})
	}
	return s, nil
}

// tick inserts the jobs of the firings due at now and returns when the next firing is due.
// The first call for a task also looks MaxLateness back, so that a replica restarted at
// 03:00:20 still inserts the 03:00 firing, which is a no-op when another replica already has.
func (s *scheduler) tick(ctx context.Context, now time.Time) (TickResult, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	var (
		result TickResult
		errs   []error
		wake   = now.Add(maxWait)
	)
	for _, e := range s.entries {
		if err := s.tickEntry(ctx, e, now, &result); err != nil {
			// e.next is the failed firing, already due: wait retryWait rather than spin.
			errs = append(errs, err)
			wake = minTime(wake, now.Add(retryWait))
			continue
		}
		if !e.next.IsZero() {
			wake = minTime(wake, e.next)
		}
	}
	return result, wake, errlist.Join(errs...)
}

// tickEntry handles one task: it finds the latest firing at or before now, inserts its job
// if it is recent enough and moves the entry past now. When the insert fails the entry stays
// on that firing, so the next tick tries it again.
func (s *scheduler) tickEntry(ctx context.Context, e *entry, now time.Time, result *TickResult) error {
	if e.next.IsZero() {
		e.next = e.schedule.Next(now.Add(-s.maxLateness))
	}

	var due time.Time
	for !e.next.IsZero() && !e.next.After(now) {
		if !due.IsZero() {
			result.Skipped++
		}
		due = e.next
		e.next = e.schedule.Next(due)
	}
	if due.IsZero() {
		return nil
	}

	log := s.log.With("task", e.task.Name, "scheduled_at", due)
	if late := now.Sub(due); late > s.maxLateness {
		result.Skipped++
		log.Warn("cron firing skipped: noticed too late", "late", late, "max_lateness", s.maxLateness)
		return nil
	}

	duplicate, err := s.insert(ctx, taskArgs{Task: e.task.Name, ScheduledAt: due.UTC()}, insertOpts(e.task))
	if err != nil {
		e.next = due
		return fmt.Errorf("insert River job of cron task %s scheduled at %s: %w", e.task.Name, due.Format(time.RFC3339), err)
	}
	if duplicate {
		result.Duplicates++
		log.Debug("cron firing already inserted by another replica")
		return nil
	}
	result.Inserted++
	log.Debug("cron firing inserted")
	return nil
}

// loop ticks at each firing until ctx ends.
func (s *scheduler) loop(ctx context.Context, now func() time.Time) {
	s.log.Debug("cron scheduler loop started")
	defer s.log.Debug("cron scheduler loop stopped")

	for {
		current := now()
		_, wake, err := s.tick(ctx, current)
		if err != nil && ctx.Err() == nil {
			s.log.Error("cron scheduler tick failed; retrying", "error", err, "retry_in", retryWait)
		}

		timer := time.NewTimer(max(wake.Sub(current), 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
