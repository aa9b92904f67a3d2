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
