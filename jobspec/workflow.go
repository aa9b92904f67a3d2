package jobspec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// Evaluation is the gate between training and the model registry. The training program
// writes an eval_report artifact (a JSON object {"metrics": {"name": value}}); after the job
// completes, its workflow reads the report and compares each metric with its threshold. A
// job whose metrics miss a threshold ends eval_failed and registers nothing.
type Evaluation struct {
	// Thresholds maps a metric name to its bounds. A metric named here must be in the
	// report.
	Thresholds map[string]Threshold `json:"thresholds"`
	// ModelVersionID is the version an eval_only job evaluates; other types leave it empty.
	ModelVersionID string `json:"model_version_id,omitempty"`
}

// Threshold bounds one metric; either bound may be absent.
type Threshold struct {
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
}

// Registration names the model a training job's output is registered under, and the
// lineage that the training program cannot report itself.
type Registration struct {
	Name           string `json:"name"`
	BaseModelRef   string `json:"base_model_ref,omitempty"`
	DatasetVersion string `json:"dataset_version,omitempty"`
	CodeCommit     string `json:"code_commit,omitempty"`
	// TrackingRunID is the run id in an experiment tracker (the mlflow_run_id column).
	TrackingRunID string `json:"tracking_run_id,omitempty"`
	// PromoteTo, staging or prod, makes the workflow request an approval for that stage
	// once the version is registered, and promote it when the request is approved.
	PromoteTo string `json:"promote_to,omitempty"`
}

// HPO is the search an hpo job runs. The hpo job itself holds no pod: its workflow creates
// one trial job per point of the search space, each a copy of the hpo job's config with the
// point in hyperparameters, and picks the best completed trial by Metric.
type HPO struct {
	// Search is grid (every combination of the values) or random (Trials draws).
	Search string `json:"search"`
	// Trials is the number of random draws, or a cap on the grid; at most MaxTrials.
	Trials int `json:"trials,omitempty"`
	// Seed makes a random search repeatable.
	Seed       int64            `json:"seed,omitempty"`
	Parameters map[string]Param `json:"parameters"`
	// Metric names the eval report metric that ranks the trials; Goal is max or min.
	Metric string `json:"metric"`
	Goal   string `json:"goal"`
	// TrialType is the job type of each trial: fine_tune (the default), retrain or rlhf.
	TrialType string `json:"trial_type,omitempty"`
}

// Param is one dimension of the search space: a list of values (grid or random choice),
// or for a random search a range, sampled on a log scale when Log is set.
type Param struct {
	Values []float64 `json:"values,omitempty"`
	Min    *float64  `json:"min,omitempty"`
	Max    *float64  `json:"max,omitempty"`
	Log    bool      `json:"log,omitempty"`
}

// MaxTrials bounds an hpo job, so that one submission cannot flood the queue.
const MaxTrials = 100

var metricName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_./-]{0,99}$`)

var promoteStages = []string{"staging", "prod"}

var trialTypes = []string{"fine_tune", "retrain", "rlhf"}

// validateWorkflow checks the sections the workflows read, for a job of jobType.
func (s Spec) validateWorkflow(jobType string) error {
	if err := s.validateEvaluation(jobType); err != nil {
		return err
	}
	if err := s.validateRegistration(jobType); err != nil {
		return err
	}
	if jobType == "hpo" && s.HPO == nil {
		return &FieldError{"config.hpo", "required for an hpo job: the search space, metric and goal"}
	}
	if jobType != "hpo" && s.HPO != nil {
		return &FieldError{"config.hpo", "only an hpo job has a search space"}
	}
	if s.HPO != nil {
		return s.HPO.Validate()
	}
	return validateHyperparameters(s.Hyperparameters)
}

func validateHyperparameters(point map[string]float64) error {
	if len(point) > 16 {
		return &FieldError{"config.hyperparameters", "at most 16 parameters"}
	}
	for name := range point {
		if !metricName.MatchString(name) {
			return &FieldError{"config.hyperparameters." + name, "invalid parameter name"}
		}
	}
	return nil
}

func (s Spec) validateEvaluation(jobType string) error {
	e := s.Evaluation
	if e == nil {
		if jobType == "eval_only" && s.Model != nil {
			return &FieldError{"config.evaluation", "an eval_only job registers nothing; set evaluation.model_version_id instead of model"}
		}
		return nil
	}
	if len(e.Thresholds) == 0 || len(e.Thresholds) > 32 {
		return &FieldError{"config.evaluation.thresholds", "between 1 and 32 metrics: a gate without thresholds passes every job"}
	}
	for name, th := range e.Thresholds {
		field := "config.evaluation.thresholds." + name
		if !metricName.MatchString(name) {
			return &FieldError{field, "invalid metric name"}
		}
		if th.Min == nil && th.Max == nil {
			return &FieldError{field, "set min, max or both"}
		}
		if th.Min != nil && th.Max != nil && *th.Min > *th.Max {
			return &FieldError{field, "min is above max"}
		}
	}
	if jobType == "eval_only" {
		if _, err := uuid.Parse(e.ModelVersionID); err != nil {
			return &FieldError{"config.evaluation.model_version_id", "an eval_only job names the model version it evaluates (a UUID)"}
		}
	} else if e.ModelVersionID != "" {
		return &FieldError{"config.evaluation.model_version_id", "only an eval_only job evaluates an existing version"}
	}
	return nil
}

func (s Spec) validateRegistration(jobType string) error {
	m := s.Model
	if m == nil {
		return nil
	}
	if jobType == "eval_only" {
		return &FieldError{"config.model", "an eval_only job registers nothing"}
	}
	checks := []struct {
		bad           bool
		field, reason string
	}{
		{!modelName.MatchString(m.Name), "config.model.name", "required: letters, digits, '.', '_' or '-', at most 100"},
		{len(m.BaseModelRef) > 200, "config.model.base_model_ref", "longer than 200 characters"},
		{len(m.DatasetVersion) > 200, "config.model.dataset_version", "longer than 200 characters"},
		{len(m.CodeCommit) > 64, "config.model.code_commit", "longer than 64 characters"},
		{len(m.TrackingRunID) > 200, "config.model.tracking_run_id", "longer than 200 characters"},
		{m.PromoteTo != "" && !slices.Contains(promoteStages, m.PromoteTo), "config.model.promote_to", "staging or prod"},
	}
	for _, c := range checks {
		if c.bad {
			return &FieldError{c.field, c.reason}
		}
	}
	return nil
}

// Validate checks the search on its own; Spec.ValidateFor calls it for an hpo job.
func (h HPO) Validate() error {
	if h.Search != "grid" && h.Search != "random" {
		return &FieldError{"config.hpo.search", "grid or random"}
	}
	if h.Trials < 0 || h.Trials > MaxTrials || (h.Search == "random" && h.Trials == 0) {
		return &FieldError{"config.hpo.trials", fmt.Sprintf("must be between 1 and %d (0 on a grid means every point)", MaxTrials)}
	}
	if !metricName.MatchString(h.Metric) {
		return &FieldError{"config.hpo.metric", "required: the eval report metric that ranks trials"}
	}
	if h.Goal != "max" && h.Goal != "min" {
		return &FieldError{"config.hpo.goal", "max or min"}
	}
	if h.TrialType != "" && !slices.Contains(trialTypes, h.TrialType) {
		return &FieldError{"config.hpo.trial_type", "fine_tune, retrain or rlhf"}
	}
	if len(h.Parameters) == 0 || len(h.Parameters) > 16 {
		return &FieldError{"config.hpo.parameters", "between 1 and 16 parameters"}
	}
	for name, p := range h.Parameters {
		if err := p.validate(h.Search, "config.hpo.parameters."+name); err != nil {
			return err
		}
	}
	if h.Search == "grid" && h.GridSize() > MaxTrials && h.Trials == 0 {
		return &FieldError{"config.hpo.parameters", fmt.Sprintf("the grid has more than %d points; set trials to take the first ones", MaxTrials)}
	}
	return nil
}

func (p Param) validate(search, field string) error {
	if !metricName.MatchString(strings.TrimPrefix(field, "config.hpo.parameters.")) {
		return &FieldError{field, "invalid parameter name"}
	}
	if len(p.Values) > 0 {
		if p.Min != nil || p.Max != nil {
			return &FieldError{field, "set values or a range, not both"}
		}
		if len(p.Values) > MaxTrials {
			return &FieldError{field + ".values", fmt.Sprintf("at most %d values", MaxTrials)}
		}
		seen := make(map[float64]bool, len(p.Values))
		for _, v := range p.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return &FieldError{field, "values must be finite numbers"}
			}
			if seen[v] {
				return &FieldError{field + ".values", fmt.Sprintf("%g is listed twice, which would run the same trial twice", v)}
			}
			seen[v] = true
		}
		return nil
	}
	if search == "grid" {
		return &FieldError{field + ".values", "a grid search needs a list of values"}
	}
	if p.Min == nil || p.Max == nil || !(*p.Min < *p.Max) || math.IsInf(*p.Max-*p.Min, 0) {
		return &FieldError{field, "a random range needs finite min below max"}
	}
	if p.Log && *p.Min <= 0 {
		return &FieldError{field + ".min", "a log-scale range must be above 0"}
	}
	return nil
}

// names returns the parameter names sorted, so that trials come out in a stable order.
func (h HPO) names() []string {
	names := make([]string, 0, len(h.Parameters))
	for name := range h.Parameters {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// GridSize returns the number of grid points, or MaxTrials+1 when there are more: a grid of
// 16 parameters of 100 values would overflow an int.
func (h HPO) GridSize() int {
	size := 1
	for _, p := range h.Parameters {
		size *= max(len(p.Values), 1)
		if size > MaxTrials {
			return MaxTrials + 1
		}
	}
	return size
}

// PromotionStage is the stage a registered version is promoted to after approval, or "".
func (s Spec) PromotionStage() string {
	if s.Model == nil {
		return ""
	}
	return s.Model.PromoteTo
}

// Judge compares a report's metrics with the thresholds. It returns "" when every threshold
// is met, otherwise the misses in name order, such as "accuracy 0.61 below min 0.8". A nil
// Evaluation has no thresholds and passes.
func (e *Evaluation) Judge(metrics map[string]float64) string {
	if e == nil {
		return ""
	}
	names := make([]string, 0, len(e.Thresholds))
	for name := range e.Thresholds {
		names = append(names, name)
	}
	sort.Strings(names)

	var misses []string
	for _, name := range names {
		th := e.Thresholds[name]
		value, ok := metrics[name]
		switch {
		case !ok:
			misses = append(misses, name+" missing from the eval report")
		case th.Min != nil && value < *th.Min:
			misses = append(misses, fmt.Sprintf("%s %g below min %g", name, value, *th.Min))
		case th.Max != nil && value > *th.Max:
			misses = append(misses, fmt.Sprintf("%s %g above max %g", name, value, *th.Max))
		}
	}
	return strings.Join(misses, "; ")
}
