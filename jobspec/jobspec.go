// Package jobspec defines a job's configuration (the config_json stored at submission), how
// it is decoded strictly and validated, and what the scheduler derives from it. It decides
// nothing about when or where a job runs.
package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MilliPerGPU is the number of GPU thousandths in one whole GPU.
const MilliPerGPU = 1000

// MaxRuntimeLimit bounds max_runtime_seconds: 30 days. A training job longer than that
// should checkpoint and be resubmitted, so a typo cannot reserve a year of budget.
const MaxRuntimeLimit = 30 * 24 * 3600

// DefaultMaxPreemptions is max_preemptions when a config leaves it out, and the column
// default of jobs.max_preemptions (migration 021).
const DefaultMaxPreemptions = 20

// MaxPreemptionsLimit bounds max_preemptions, as the CHECK on jobs.max_preemptions does.
const MaxPreemptionsLimit = 1000

// Spec is a job's configuration. It is immutable after submission.
type Spec struct {
	// Image is the container image of the training or evaluation program.
	Image string `json:"image"`
	// Command overrides the image's entrypoint.
	Command []string `json:"command,omitempty"`
	// Resources is what one run's pod requests.
	Resources Resources `json:"resources"`
	// MaxRuntimeSeconds bounds each run; it also sizes the GPU-hour reservation taken at
	// admission (GPUs times this), so a run can never take its project past the budget.
	MaxRuntimeSeconds int `json:"max_runtime_seconds"`
	// MaxAttempts is how many runs may fail before the job fails. Preemptions do not count.
	MaxAttempts int `json:"max_attempts,omitempty"`
	// MaxPreemptions bounds the job's counted preemptions since its last checkpoint that
	// showed progress: the preemption that reaches it fails the job instead of requeuing
	// it. A queue drain and a lost node do not count. nil means DefaultMaxPreemptions.
	// It is a pointer so that an explicit 0 is rejected instead of taken as the default.
	MaxPreemptions *int `json:"max_preemptions,omitempty"`
	// Env is extra environment variables of the container, by name. The API shows them with
	// the job's config, so credentials belong in SecretEnv.
	Env map[string]string `json:"env,omitempty"`
	// SecretEnv sets variables from keys of Kubernetes Secrets in the project's namespace,
	// such as object store credentials.
	SecretEnv map[string]SecretKey `json:"secret_env,omitempty"`
	// Simulation makes a simulated pod (KWOK) finish after a while. Demo and tests only:
	// production pods carry no such setting.
	Simulation *Simulation `json:"simulation,omitempty"`

	// Evaluation, Model and HPO are read by the job's workflow (workflow.go): the gate
	// after training, the registry entry and an hpo job's search.
	Evaluation *Evaluation   `json:"evaluation,omitempty"`
	Model      *Registration `json:"model,omitempty"`
	HPO        *HPO          `json:"hpo,omitempty"`
	// Hyperparameters is one point of a search space, set by an hpo parent on each trial and
	// passed to the container as JSON in SCHEDULERD_HYPERPARAMETERS.
	Hyperparameters map[string]float64 `json:"hyperparameters,omitempty"`
}

// Resources is the request of one pod. A job asks for whole GPUs or for a share of one.
type Resources struct {
	// GPUs is the number of whole GPUs.
	GPUs int `json:"gpus,omitempty"`
	// GPUShareMilli is a share of one GPU in thousandths (1 to 999), when GPUs is 0.
	GPUShareMilli int `json:"gpu_share_milli,omitempty"`
	// GPUModels lists the GPU models the job may run on; empty means any.
	GPUModels []string `json:"gpu_models,omitempty"`
	// CPUMilli and MemoryMiB are the CPU (thousandths of a core) and memory requests.
	CPUMilli  int64 `json:"cpu_milli"`
	MemoryMiB int64 `json:"memory_mib"`
}

// Simulation tells a KWOK-simulated pod how long to run and how to end.
type Simulation struct {
	RunSeconds float64 `json:"run_seconds"`
	ExitCode   int     `json:"exit_code,omitempty"`
	// Reason is the container's termination reason when ExitCode is not 0, such as
	// OOMKilled; empty means Error.
	Reason string `json:"reason,omitempty"`
}

// FieldError names the invalid field by its JSON path.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

// MaxBytes bounds an encoded configuration.
const MaxBytes = 64 << 10

var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// Decode parses raw strictly: unknown fields, keys that match a field only without regard
// to case, repeated keys (checkKeys), trailing data, invalid UTF-8 and wrong types are
// errors naming the field, and the result is validated.
func Decode(raw []byte) (Spec, error) {
	if len(raw) > MaxBytes {
		return Spec{}, &FieldError{"config", fmt.Sprintf("larger than %d bytes", MaxBytes)}
	}
	if !utf8.Valid(raw) {
		return Spec{}, &FieldError{"config", "not valid UTF-8"}
	}
	if reason := UnstorableEscape(raw); reason != "" {
		return Spec{}, &FieldError{"config", reason}
	}

	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var spec Spec
	if err := dec.Decode(&spec); err != nil {
		return Spec{}, decodeError(err, raw)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Spec{}, &FieldError{"config", "trailing data after the JSON object"}
	}
	if err := checkKeys(raw); err != nil {
		return Spec{}, err
	}
	return spec, spec.Validate()
}

// UnstorableEscape finds a JSON escape that PostgreSQL's jsonb rejects although Go accepts
// it: \u0000, or half of a UTF-16 surrogate pair. It returns the reason, or "" when raw has
// none. Valid JSON has backslashes only inside strings, so no string tracking is needed.
func UnstorableEscape(raw []byte) string {
	for i := 0; i+1 < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			i++ // an escaped character, such as \\ or \"
			continue
		}
		code, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return ""
		}
		switch {
		case code == 0:
			return "contains \\u0000, a NUL character, which cannot be stored"
		case code >= 0xDC00 && code <= 0xDFFF:
			return "contains a lone UTF-16 low surrogate escape, which is not a character"
		case code >= 0xD800 && code <= 0xDBFF:
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return "contains a lone UTF-16 high surrogate escape, which is not a character"
			}
			low, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 16)
			if err != nil || low < 0xDC00 || low > 0xDFFF {
				return "contains a lone UTF-16 high surrogate escape, which is not a character"
			}
			i += 6
		}
		i += 5
	}
	return ""
}

func decodeError(err error, raw []byte) error {
	if fieldErr, ok := FieldOfDecodeError(err, raw, reflect.TypeFor[Spec](), "config"); ok {
		return fieldErr
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return &FieldError{"config", fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, err)}
	}
	return &FieldError{"config", strings.TrimPrefix(err.Error(), "json: ")}
}

// Validate checks every field and returns the first problem.
func (s Spec) Validate() error {
	r := s.Resources
	checks := []struct {
		bad           bool
		field, reason string
	}{
		{s.Image == "", "config.image", "required"},
		{len(s.Image) > 512, "config.image", "longer than 512 characters"},
		// The Kubernetes API rejects the pod of such an image, and no image reference has
		// whitespace in it.
		{strings.ContainsFunc(s.Image, unicode.IsSpace), "config.image", "must not contain whitespace"},
		{s.MaxRuntimeSeconds < 1 || s.MaxRuntimeSeconds > MaxRuntimeLimit, "config.max_runtime_seconds",
			fmt.Sprintf("must be between 1 and %d", MaxRuntimeLimit)},
		{s.MaxAttempts < 0 || s.MaxAttempts > 100, "config.max_attempts", "must be between 1 and 100 (0 means 3)"},
		{r.GPUs < 0 || r.GPUs > 64, "config.resources.gpus", "must be between 0 and 64"},
		{r.GPUShareMilli < 0 || r.GPUShareMilli >= MilliPerGPU, "config.resources.gpu_share_milli", "must be between 1 and 999"},
		{r.GPUs > 0 && r.GPUShareMilli > 0, "config.resources.gpu_share_milli", "set either gpus or gpu_share_milli, not both"},
		{r.CPUMilli < 0 || r.CPUMilli > 1024_000, "config.resources.cpu_milli", "must be between 0 and 1024000"},
		{r.MemoryMiB < 0 || r.MemoryMiB > 16<<20, "config.resources.memory_mib", "must be between 0 and 16777216"},
		{len(r.GPUModels) > 16, "config.resources.gpu_models", "at most 16 models"},
	}
	for _, c := range checks {
		if c.bad {
			return &FieldError{c.field, c.reason}
		}
	}
	if err := s.validateMaxPreemptions(); err != nil {
		return err
	}
	if err := s.validateEnv(); err != nil {
		return err
	}
	for i, m := range r.GPUModels {
		field := fmt.Sprintf("config.resources.gpu_models[%d]", i)
		if !modelName.MatchString(m) {
			return &FieldError{field, fmt.Sprintf("invalid model name %q", m)}
		}
		if slices.Contains(r.GPUModels[:i], m) {
			return &FieldError{field, fmt.Sprintf("model %q is listed twice", m)}
		}
	}
	return s.validateSimulation()
}

func (s Spec) validateMaxPreemptions() error {
	n := s.MaxPreemptions
	if n == nil || (*n >= 1 && *n <= MaxPreemptionsLimit) {
		return nil
	}
	return &FieldError{"config.max_preemptions", fmt.Sprintf("must be between 1 and %d, got %d "+
		"(1 fails the job at its first preemption, and leaving it out means %d)",
		MaxPreemptionsLimit, *n, DefaultMaxPreemptions)}
}

func (s Spec) validateSimulation() error {
	sim := s.Simulation
	if sim == nil {
		return nil
	}
	if sim.RunSeconds < 0 || sim.RunSeconds > float64(MaxRuntimeLimit) {
		return &FieldError{"config.simulation.run_seconds", fmt.Sprintf("must be between 0 and %d", MaxRuntimeLimit)}
	}
	if sim.ExitCode < 0 || sim.ExitCode > 255 {
		return &FieldError{"config.simulation.exit_code", "must be between 0 and 255"}
	}
	if len(sim.Reason) > 100 {
		return &FieldError{"config.simulation.reason", "longer than 100 characters"}
	}
	return nil
}

// GPUMilli is the job's GPU request in thousandths: 1000 per whole GPU, or the share.
func (s Spec) GPUMilli() int {
	if s.Resources.GPUs > 0 {
		return s.Resources.GPUs * MilliPerGPU
	}
	return s.Resources.GPUShareMilli
}

// Attempts returns MaxAttempts with its default of 3 applied.
func (s Spec) Attempts() int {
	if s.MaxAttempts == 0 {
		return 3
	}
	return s.MaxAttempts
}

// Preemptions returns MaxPreemptions with its default applied.
func (s Spec) Preemptions() int {
	if s.MaxPreemptions == nil {
		return DefaultMaxPreemptions
	}
	return *s.MaxPreemptions
}

// FitsBudget reports whether the GPU-hour amounts add up to at most budget. It adds them in
// whole ten-thousandths, the unit of the numeric(14, 4) quota columns, as PostgreSQL adds
// the columns. A float64 sum of amounts near ten million hours is off by more than the
// last decimal, and would refuse a job that exactly fills the budget.
func FitsBudget(budget float64, amounts ...float64) bool {
	var total int64
	for _, amount := range amounts {
		total += hourUnits(amount)
	}
	return total <= hourUnits(budget)
}

// hourUnits returns a GPU-hour amount of at most 4 decimals in ten-thousandths.
func hourUnits(hours float64) int64 { return int64(math.Round(hours * 10_000)) }

// ReservedGPUHours is what admission reserves from the project's budget: the GPU request
// times the maximum run time, rounded half away from zero to 4 decimals. The quota and run
// columns that store reservations are numeric(14, 4), so the quota guard adds this value.
// The API, the policy, explain and the candidate and wait-reason queries
// (store.sqlReservation) all compare this value with the budget. Integer arithmetic keeps
// the rounding exact, as PostgreSQL's round does on numeric.
func ReservedGPUHours(gpuMilli, maxRuntimeSeconds int) float64 {
	// One ten-thousandth of a GPU-hour is 360 GPU-thousandth-seconds.
	const milliSecondsPerUnit = MilliPerGPU * 3600 / 10_000
	units := (int64(gpuMilli)*int64(maxRuntimeSeconds) + milliSecondsPerUnit/2) / milliSecondsPerUnit
	return float64(units) / 10_000
}
