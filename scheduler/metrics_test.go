package scheduler

import (
	"testing"

	"github.com/schedulerd/schedulerd/metrics"
)

func TestRefusalResult(t *testing.T) {
	for reason, want := range map[string]string{
		ReasonBudget:         metrics.AdmissionBudget,
		ReasonBudgetHeld:     metrics.AdmissionBudget,
		ReasonBudgetTooSmall: metrics.AdmissionBudget,
		ReasonBudget + "; waiting since 2026-01-01T00:00:00Z, later jobs of its project no longer spend its GPU-hours": metrics.AdmissionBudget,
		ReasonPeriodEnded:      metrics.AdmissionPeriod,
		ReasonPeriodNotStarted: metrics.AdmissionPeriod,
		ReasonConcurrency:      metrics.AdmissionConcurrency,
		ReasonDrained:          metrics.AdmissionDrained,
		ReasonNoQuota:          metrics.AdmissionNoQuota,
		ReasonNoModel:          metrics.AdmissionNoCapacity,
		ReasonTooLarge:         metrics.AdmissionNoCapacity,
		ReasonNoCapacity:       metrics.AdmissionNoCapacity,
		ReasonReserved:         metrics.AdmissionNoCapacity,
		ReasonNoCapacity + "; waiting since 2026-01-01T00:00:00Z, later jobs no longer backfill its models": metrics.AdmissionNoCapacity,
	} {
		if got := refusalResult(reason); got != want {
			t.Errorf("refusalResult(%q) = %s, want %s", reason, got, want)
		}
	}
}
