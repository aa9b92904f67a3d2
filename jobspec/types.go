package jobspec

import (
	"fmt"
	"slices"
	"strings"
)

// JobTypes are the values of the job_type column.
var JobTypes = []string{"fine_tune", "hpo", "retrain", "rlhf", "eval_only"}

// ValidateFor checks the rules that depend on the job type, after Validate:
//
//   - fine_tune, hpo, retrain and rlhf train a model, so they need a GPU (gpus or
//     gpu_share_milli).
//   - rlhf holds a policy and a reward model in memory at once, so it needs whole GPUs,
//     not a share of one.
//   - eval_only may run on CPUs alone.
func (s Spec) ValidateFor(jobType string) error {
	if !slices.Contains(JobTypes, jobType) {
		return &FieldError{"job_type", fmt.Sprintf("%q is not a job type; want one of %s",
			jobType, strings.Join(JobTypes, ", "))}
	}
	if err := s.validateWorkflow(jobType); err != nil {
		return err
	}
	if jobType == "eval_only" {
		return nil
	}
	if s.GPUMilli() == 0 {
		return &FieldError{"config.resources", fmt.Sprintf(
			"a %s job trains a model and needs a GPU: set gpus or gpu_share_milli", jobType)}
	}
	if jobType == "rlhf" && s.Resources.GPUs == 0 {
		return &FieldError{"config.resources.gpus", "an rlhf job needs whole GPUs, not gpu_share_milli"}
	}
	return nil
}
