package jobspec_test

import (
	"errors"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
)

func TestValidateFor(t *testing.T) {
	whole := jobspec.Spec{Resources: jobspec.Resources{GPUs: 2}}
	share := jobspec.Spec{Resources: jobspec.Resources{GPUShareMilli: 500}}
	search := share
	search.HPO = &jobspec.HPO{Search: "grid", Metric: "accuracy", Goal: "max",
		Parameters: map[string]jobspec.Param{"lr": {Values: []float64{0.1}}}}
	cpuOnly := jobspec.Spec{}
	cases := []struct {
		name    string
		jobType string
		spec    jobspec.Spec
		field   string // empty when valid
	}{
		{"fine_tune on whole GPUs", "fine_tune", whole, ""},
		{"hpo on a share", "hpo", search, ""},
		{"hpo without a search", "hpo", share, "config.hpo"},
		{"search on fine_tune", "fine_tune", search, "config.hpo"},
		{"retrain without GPU", "retrain", cpuOnly, "config.resources"},
		{"rlhf on whole GPUs", "rlhf", whole, ""},
		{"rlhf on a share", "rlhf", share, "config.resources.gpus"},
		{"eval_only without GPU", "eval_only", cpuOnly, ""},
		{"unknown type", "pretrain", whole, "job_type"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.ValidateFor(c.jobType)
			var fieldErr *jobspec.FieldError
			switch {
			case c.field == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case c.field != "" && !errors.As(err, &fieldErr):
				t.Errorf("error %v, want a FieldError on %s", err, c.field)
			case c.field != "" && fieldErr.Field != c.field:
				t.Errorf("field %q, want %q", fieldErr.Field, c.field)
			}
		})
	}
}

// TestReservedGPUHoursRounding: reservations are rounded half away from zero to the 4
// decimals that the quota and run columns store.
func TestReservedGPUHoursRounding(t *testing.T) {
	cases := []struct {
		gpuMilli, seconds int
		want              float64
	}{
		{500, 3600, 0.5},
		{2000, 5400, 3},
		{7, 514286, 1},      // 1.00000056 exactly
		{7, 514312, 1.0001}, // 1.00005111 exactly
		{1, 179, 0},
		{1, 180, 0.0001}, // 0.00005, halfway
		{64000, jobspec.MaxRuntimeLimit, 46080},
	}
	for _, c := range cases {
		if got := jobspec.ReservedGPUHours(c.gpuMilli, c.seconds); got != c.want {
			t.Errorf("%d GPU-thousandths for %d s: %v GPU-hours, want %v", c.gpuMilli, c.seconds, got, c.want)
		}
	}
}

// TestFitsBudgetExact: amounts that add up to the budget in the quota columns' 4 decimals
// fit, also where their float64 sum is above it, and one ten-thousandth more does not.
func TestFitsBudgetExact(t *testing.T) {
	cases := []struct {
		name    string
		budget  float64
		amounts []float64
		want    bool
	}{
		{"exactly full, float sum above", 65956876.7952, []float64{42039669.8329, 23917162.7001, 44.2622}, true},
		{"one unit over", 65956876.7952, []float64{42039669.8329, 23917162.7001, 44.2623}, false},
		{"small values", 1, []float64{0.3, 0.7}, true},
		{"nothing used", 0, nil, true},
	}
	for _, c := range cases {
		if got := jobspec.FitsBudget(c.budget, c.amounts...); got != c.want {
			t.Errorf("%s: FitsBudget(%v, %v) = %v, want %v", c.name, c.budget, c.amounts, got, c.want)
		}
	}
	// Variables, not constants: Go adds untyped constants exactly.
	used, reserved, hours, budget := 42039669.8329, 23917162.7001, 44.2622, 65956876.7952
	if sum := used + reserved + hours; sum <= budget+1e-9 {
		t.Errorf("the float64 sum %v fits the budget; the first case no longer tests the rounding", sum)
	}
}
