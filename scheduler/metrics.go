package scheduler

import (
	"context"
	"strings"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// dequeue runs one dequeue transaction that admits at most maxAdmit jobs, and records its
// duration and, once it committed, its decisions. Refusals of a transaction that rolled
// back are not counted. It reads candidateLimit candidates and widens the next read when
// this one refused some.
func (s *Scheduler) dequeue(ctx context.Context, maxAdmit int) ([]store.Admission, error) {
	var refusals []store.Refusal
	decide := func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		decisions, refused := s.decide(snap, maxAdmit)
		refusals = refused
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
	return admissions, nil
}

// refusalResult maps a refusal reason of Policy.Decide to the result label of the
// admission metric. Every capacity reason, starvation reservations included, is no_capacity.
func refusalResult(reason string) string {
	switch {
	case reason == ReasonBudget:
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
