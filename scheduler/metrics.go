package scheduler

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// dequeue runs one dequeue transaction that admits at most maxAdmit jobs, and records its
// duration and, once it committed, its decisions. Refusals of a transaction that rolled
// back are not counted. It reads candidateLimit candidates and widens the next read when
// this one refused some. When it rejected a job because its budget period ended, it renews
// the ended periods before it returns.
func (s *Scheduler) dequeue(ctx context.Context, maxAdmit int) ([]store.Admission, error) {
	var refusals []store.Refusal
	var now time.Time
	decide := func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		decisions, refused := s.decide(snap, maxAdmit)
		refusals, now = refused, snap.Now
		return decisions, refused
	}

	start := time.Now()
	admissions, err := s.store.Dequeue(ctx, s.candidateLimit(), decide)
	s.cfg.Metrics.ObserveDequeue(time.Since(start))
	if err != nil {
		return nil, err
	}
	s.wide = len(refusals) > 0

	results := make([]string, len(refusals))
	for i, r := range refusals {
		results[i] = refusalResult(r.Reason)
	}
	s.cfg.Metrics.Admissions(len(admissions), results)
	s.renewEndedPeriods(ctx, refusals, now)
	return admissions, nil
}

// renewTimeout bounds one renewal, which waits for the locks of the ended quotas: a quota
// row held by another transaction must not stop the dequeues of every project.
const renewTimeout = 5 * time.Second

// renewEndedPeriods calls RenewBudgets when a job was rejected for an ended budget period
// and the last call is at least RenewInterval old. now is the dequeue's database time, so
// that the renewal and the rejection agree on which periods ended. A failed renewal is
// logged and tried again after RenewInterval, and the dequeue's admissions stand.
func (s *Scheduler) renewEndedPeriods(ctx context.Context, refusals []store.Refusal, now time.Time) {
	if !slices.ContainsFunc(refusals, func(r store.Refusal) bool { return r.Reason == ReasonPeriodEnded }) {
		return
	}
	if !s.renewedAt.IsZero() && time.Since(s.renewedAt) < s.cfg.RenewInterval {
		return
	}
	s.renewedAt = time.Now()

	ctx, cancel := context.WithTimeout(ctx, renewTimeout)
	defer cancel()
	if err := s.cfg.RenewBudgets(ctx, now); err != nil && ctx.Err() != context.Canceled {
		s.cfg.Logger.Warn("budget renewal failed, jobs of ended periods wait", "err", err,
			"retry_in", s.cfg.RenewInterval)
	}
}

// refusalResult maps a refusal reason of Policy.Decide to the result label of the
// admission metric. Every capacity reason, starvation reservations included, is no_capacity,
// and a budget period that has ended or not started counts as budget.
func refusalResult(reason string) string {
	switch {
	case reason == ReasonBudget, reason == ReasonPeriodEnded, reason == ReasonPeriodNotStarted:
		return metrics.AdmissionBudget
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
