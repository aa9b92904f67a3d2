package scheduler

import (
	"context"
	"fmt"
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
	return admissions, s.renewEndedPeriods(ctx, refusals, now)
}

// renewEndedPeriods calls RenewBudgets when a job was rejected for an ended budget period
// and the last call is at least RenewInterval old. now is the dequeue's database time, so that
// the renewal and the refusal agree on which periods ended.
func (s *Scheduler) renewEndedPeriods(ctx context.Context, refusals []store.Refusal, now time.Time) error {
	if !slices.ContainsFunc(refusals, func(r store.Refusal) bool { return r.Reason == ReasonPeriodEnded }) {
		return nil
	}
	if !s.renewedAt.IsZero() && time.Since(s.renewedAt) < s.cfg.RenewInterval {
		return nil
	}
	s.renewedAt = time.Now()
	if err := s.cfg.RenewBudgets(ctx, now); err != nil {
		return fmt.Errorf("renew ended budget periods: %w", err)
	}
	return nil
}

// refusalResult maps a refusal reason of Policy.Decide to the result label of the
// admission metric. Every capacity reason, starvation reservations included, is no_capacity,
// and an ended budget period counts as budget.
func refusalResult(reason string) string {
	switch {
	case reason == ReasonBudget, reason == ReasonPeriodEnded:
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
