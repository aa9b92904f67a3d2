package replay

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/scheduler"
)

// StateWaitingForBudget names, in the report, queued jobs that wait for a budget that will
// not grow during the replay.
const StateWaitingForBudget = "queued (budget too small)"

// waitForEnd waits until no job can make progress: none runs, and every queued job waits
// for budget that the quota does not have. Fill-mode jobs never end, so a fill replay does not wait.
func (r *Replayer) waitForEnd(ctx context.Context, rec *recorder) error {
	if r.cfg.Mode == trace.ModeFill {
		return nil
	}
	total := len(r.plan.schedule.Entries)
	lastPrint := time.Now()
	for {
		active, err := r.activeJobs(ctx)
		if err != nil {
			return err
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
			return fmt.Errorf("wait for the jobs to end (%d still active%s): %w",
				active, r.describeActive(), err)
		}
	}
}

// sqlActive selects the jobs j that can still make progress: running ones, and queued ones
// that their project's budget, as it is now, does not hold back ($1 and $2 are the
// budget's wait reasons, scheduler.ReasonBudget and ReasonBudgetTooSmall). A stored wait
// reason of the budget changes only when a dequeue reads the job again, so it is out of
// date right after a run's end leaves room for the job. The budget test is therefore the
// candidate query's (store/candidates.go), with the reservation rounded to 4 decimals as
// admission rounds it. A job that has waited the starvation bound for the budget has a
// reason of its own and stays active: it runs once its project's running jobs end.
const sqlActive = `j.status = 'running' OR (j.status = 'queued' AND (j.wait_reason IS NULL
	OR j.wait_reason NOT IN ($1, $2)
	OR EXISTS (SELECT 1 FROM job_queue q JOIN quotas u ON u.project_id = q.project_id
	           WHERE q.job_id = j.id AND u.gpu_hours_used + u.gpu_hours_reserved
	                 + round(q.gpu_milli::numeric * q.max_runtime_seconds / 3600000, 4) <= u.gpu_hours_budget)))`

// activeJobs counts the jobs that keep waitForEnd waiting.
func (r *Replayer) activeJobs(ctx context.Context) (int, error) {
	var active int
	err := r.store.Pool().QueryRow(ctx, `SELECT count(*) FROM jobs j WHERE `+sqlActive,
		scheduler.ReasonBudget, scheduler.ReasonBudgetTooSmall).Scan(&active)
	if err != nil {
		return 0, fmt.Errorf("count active jobs: %w", err)
	}
	return active, nil
}

// describeActive lists up to three of the jobs that kept waitForEnd waiting. For each it
// gives the state, the latest run and that run's pod as the Kubernetes API reports it, so
// that the error of a replay that never ends shows where each job is stuck. It runs after
// the replay's context has ended, so it has a short context of its own.
func (r *Replayer) describeActive() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := r.store.Pool().Query(ctx, `SELECT j.id::text, j.status::text,
			coalesce(j.wait_reason, ''), j.run_count, coalesce(r.status::text, 'none'),
			coalesce(r.pod_name, ''), coalesce(r.end_reason, ''), p.k8s_namespace
		FROM jobs j
		JOIN projects p ON p.id = j.project_id
		LEFT JOIN LATERAL (SELECT status, pod_name, end_reason FROM runs
			WHERE runs.job_id = j.id ORDER BY run_number DESC LIMIT 1) r ON true
		WHERE `+sqlActive+`
		ORDER BY j.created_at LIMIT 3`, scheduler.ReasonBudget, scheduler.ReasonBudgetTooSmall)
	if err != nil {
		return "; list them: " + err.Error()
	}
	type active struct {
		id, status, reason, runStatus, pod, endReason, namespace string
		runs                                                     int
	}
	var jobs []active
	for rows.Next() {
		var a active
		if err := rows.Scan(&a.id, &a.status, &a.reason, &a.runs, &a.runStatus, &a.pod, &a.endReason,
			&a.namespace); err != nil {
			rows.Close()
			return "; list them: " + err.Error()
		}
		jobs = append(jobs, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return "; list them: " + err.Error()
	}

	var b strings.Builder
	for _, a := range jobs {
		fmt.Fprintf(&b, "; job %s %s (wait reason %q, %d runs, last run %s, end reason %q, pod %s/%s: %s)",
			a.id, a.status, a.reason, a.runs, a.runStatus, a.endReason, a.namespace, a.pod,
			r.describePod(ctx, a.namespace, a.pod))
	}
	return b.String()
}

// describePod gives a pod's phase, node and scheduling condition as the Kubernetes API has
// them now.
func (r *Replayer) describePod(ctx context.Context, namespace, name string) string {
	if name == "" {
		return "none"
	}
	pod, err := r.kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	text := fmt.Sprintf("phase %s on node %q", pod.Status.Phase, pod.Spec.NodeName)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status != corev1.ConditionTrue {
			text += fmt.Sprintf(", not scheduled: %s %s", c.Reason, c.Message)
		}
	}
	if pod.DeletionTimestamp != nil {
		text += ", being deleted"
	}
	return text
}

// writeReport gathers the figures from the database and writes the report. stop is nil
// unless the replay stopped early.
func (r *Replayer) writeReport(ctx context.Context, rec *recorder, started time.Time, submitted int,
	stop *report.Stop) (string, error) {
	d := report.Data{
		Title:   "Trace replay of " + r.plan.source(),
		Command: r.cfg.Command, Mode: string(r.cfg.Mode), Speedup: r.cfg.Speedup, Load: r.cfg.Load,
		Started: started, Finished: time.Now(),
		Tasks:    r.plan.counts.reportCounts(submitted),
		Runs:     runLengths(r.plan.schedule.Entries),
		Problems: r.plan.problems,
		FillStop: r.fillStop,
		Stop:     stop, Continued: r.continued,
	}
	if stop != nil && d.FillStop == "" {
		d.FillStop = "not reached, because the replay stopped early"
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
