package jobspec

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// SecretKey names one key of a Kubernetes Secret in the job's project namespace. The
// kubelet reads the Secret when it starts the container; schedulerd never reads it.
type SecretKey struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// MaxEnvVars bounds the variables of env and secret_env together. Each run's pod carries
// them, and the API shows env with the job's config.
const MaxEnvVars = 64

// ReservedEnvPrefix starts the names of the variables that schedulerd sets itself, such as
// SCHEDULERD_JOB_ID. A config may not set them, so that a pod always reports to its own run.
const ReservedEnvPrefix = "SCHEDULERD_"

// validateEnv checks the names of env and secret_env and the Secret references. Names
// follow the rule that kube-apiserver applies to every pod, so a run's pod is never
// rejected for them.
func (s Spec) validateEnv() error {
	if n := len(s.Env) + len(s.SecretEnv); n > MaxEnvVars {
		return &FieldError{"config.env", fmt.Sprintf("%d variables in env and secret_env, at most %d", n, MaxEnvVars)}
	}
	for _, name := range sortedKeys(s.Env) {
		if err := checkEnvName("config.env", name); err != nil {
			return err
		}
	}
	for _, name := range sortedKeys(s.SecretEnv) {
		if err := checkEnvName("config.secret_env", name); err != nil {
			return err
		}
		field := fmt.Sprintf("config.secret_env[%q]", name)
		if _, ok := s.Env[name]; ok {
			return &FieldError{field, "also set in config.env, so keep it in only one of the two"}
		}
		ref := s.SecretEnv[name]
		if errs := validation.IsDNS1123Subdomain(ref.Name); len(errs) > 0 {
			return &FieldError{field + ".name", fmt.Sprintf("invalid Secret name %q: %s", ref.Name, errs[0])}
		}
		if errs := validation.IsConfigMapKey(ref.Key); len(errs) > 0 {
			return &FieldError{field + ".key", fmt.Sprintf("invalid Secret key %q: %s", ref.Key, errs[0])}
		}
	}
	return nil
}

// checkEnvName returns why name cannot be a variable of the map field, or nil.
func checkEnvName(field, name string) error {
	if errs := validation.IsEnvVarName(name); len(errs) > 0 {
		return &FieldError{field, fmt.Sprintf("invalid variable name %q: %s", name, errs[0])}
	}
	if strings.HasPrefix(name, ReservedEnvPrefix) {
		return &FieldError{field, fmt.Sprintf("variable %q: names starting with %s are set by schedulerd", name, ReservedEnvPrefix)}
	}
	return nil
}

// sortedKeys returns the keys of m in order, so that checks and pods list variables the
// same way every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SortedEnv returns the names of env in order.
func (s Spec) SortedEnv() []string { return sortedKeys(s.Env) }

// SortedSecretEnv returns the names of secret_env in order.
func (s Spec) SortedSecretEnv() []string { return sortedKeys(s.SecretEnv) }
