package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/scheduler"
)

// StateWaitingForBudget names, in the report, queued jobs that wait for a budget that will
// not grow during the replay.
const StateWaitingForBudget = "queued (budget exhausted)"

// waitForEnd waits until no job can make progress: none runs, and every queued job waits
// for budget. Fill-mode jobs never end, so a fill replay does not wait.
func (r *Replayer) waitForEnd(ctx context.Context, rec *recorder) error {
	if r.cfg.Mode == trace.ModeFill {
		return nil
	}
	total := len(r.plan.schedule.Entries)
	lastPrint := time.Now()
	for {
		var active int
		err := r.store.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs
			WHERE status = 'running' OR (status = 'queued' AND wait_reason IS DISTINCT FROM $1)`,
			scheduler.ReasonBudget).Scan(&active)
		if err != nil {
			return fmt.Errorf("count active jobs: %w", err)
		}
		if active == 0 {
			fmt.Fprintln(r.cfg.Progress, rec.progressLine(total))
			return nil
		}
		if time.Since(lastPrint) >= 5*time.Second {
			fmt.Fprintln(r.cfg.Progress, rec.progressLine(total))
			lastPrint = time.Now()
		}
		if err := sleepUntil(ctx, time.Now().Add(500*time.Millisecond)); err != nil {
			return fmt.Errorf("wait for the jobs to end (%d still active): %w", active, err)
		}
	}
}

// writeReport gathers the figures from the database and writes the report.
func (r *Replayer) writeReport(ctx context.Context, rec *recorder, started time.Time, submitted int) (string, error) {
	d := report.Data{
		Title:   "Trace replay of " + r.plan.source(),
		Command: r.cfg.Command, Mode: string(r.cfg.Mode), Speedup: r.cfg.Speedup, Load: r.cfg.Load,
		Started: started, Finished: time.Now(),
		Tasks:    r.plan.counts.reportCounts(submitted),
		Problems: r.plan.problems,
	}
	if r.fillStop != "" {
		d.Problems = append([]string{"fill mode: " + r.fillStop}, d.Problems...)
	}

	var err error
	steps := []func() error{
		func() error { d.Jobs, err = r.jobStates(ctx); return err },
		func() error { d.Waits, err = r.tierWaits(ctx); return err },
		func() error { d.Projects, err = r.projectUsage(ctx); return err },
		func() error { d.Dispatch, err = r.dispatchRate(ctx); return err },
		func() error { d.Capacity, d.Fill, err = r.capacity(ctx); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return "", fmt.Errorf("gather report figures: %w", err)
		}
	}
	if r.cfg.Mode != trace.ModeFill {
		d.Fill = nil
	}

	rec.mu.Lock()
	d.Samples, d.Daemon = rec.samples, rec.usage
	rec.mu.Unlock()
	return report.Write(r.cfg.ReportDir, d)
}

func (p *plan) source() string {
	if len(p.schedule.Entries) == 0 {
		return "an empty trace"
	}
	return p.schedule.Entries[0].Task.Source
}
