package scheduler

import (
	"context"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
)

// renewTimeout bounds one renewal. Locked quotas are skipped, so this only cuts short a
// database that does not respond.
const renewTimeout = 5 * time.Second

// renewEndedPeriods calls RenewBudgets when the last call is at least RenewInterval old.
// A failed renewal is logged and counted, and tried again after RenewInterval. The jobs
// of projects whose period ended wait until then, since the dequeue leaves them out.
func (s *Scheduler) renewEndedPeriods(ctx context.Context) {
	if !s.renewedAt.IsZero() && time.Since(s.renewedAt) < s.cfg.RenewInterval {
		return
	}
	s.renewedAt = time.Now()

	renewCtx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	err := s.cfg.RenewBudgets(renewCtx)
	if err != nil && ctx.Err() == nil {
		s.cfg.Metrics.LoopError(metrics.LoopRenewal)
		s.cfg.Logger.Warn("budget renewal failed, jobs of ended periods wait", "err", err,
			"retry_in", s.cfg.RenewInterval)
	}
}

// refusalResult maps a refusal reason of Policy.Decide to the result label of the
// admission metric. Every capacity reason, starvation reservations included, is no_capacity,
// and every budget reason, budget held for starving jobs included, is budget. The candidate
// query already leaves out the jobs of projects that are drained, have no quota, are
// outside their period, full or out of budget, except starving jobs that wait for the
// budget. The quota results therefore count only those and jobs refused beside others
// admitted in the same dequeue, and schedulerd_queued_jobs_held counts the jobs left out.
func refusalResult(reason string) string {
	switch {
	case strings.HasPrefix(reason, ReasonBudget), reason == ReasonBudgetHeld, reason == ReasonBudgetTooSmall:
		return metrics.AdmissionBudget
	case reason == ReasonPeriodEnded, reason == ReasonPeriodNotStarted:
		return metrics.AdmissionPeriod
	case reason == ReasonConcurrency:
		return metrics.AdmissionConcurrency
	case reason == ReasonDrained:
		return metrics.AdmissionDrained
	case reason == ReasonNoQuota:
		return metrics.AdmissionNoQuota
	case reason == ReasonNoModel, reason == ReasonTooLarge, reason == ReasonReserved,
		strings.HasPrefix(reason, ReasonNoCapacity):
		return metrics.AdmissionNoCapacity
	}
	// NOTE: a reason added to Decide without a case above is counted as no_capacity.
	return metrics.AdmissionNoCapacity
}
