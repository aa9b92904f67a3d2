package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
)

// tolerationsExample is a valid pod-tolerations value, shown in help and errors.
const tolerationsExample = `[{"key":"dedicated","operator":"Equal","value":"ml","effect":"NoSchedule"}]`

// parseTolerations decodes the pod-tolerations setting, a JSON array of Kubernetes
// tolerations in their core/v1 form, and validates each entry. Decoding is as strict as
// kube-apiserver's strict field validation: field names are case-sensitive, and unknown or
// repeated fields are errors, so that a misspelt "efect" cannot silently widen a toleration
// to every effect. An empty value means no tolerations.
func parseTolerations(v string) ([]corev1.Toleration, error) {
	trimmed := strings.TrimSpace(v)
	if trimmed == "" {
		return nil, nil
	}
	if !strings.HasPrefix(trimmed, "[") {
		return nil, fmt.Errorf("expected a JSON array of tolerations such as %s", tolerationsExample)
	}
	var entries []json.RawMessage
	if _, err := kjson.UnmarshalStrict([]byte(trimmed), &entries); err != nil {
		return nil, fmt.Errorf("expected a JSON array of tolerations such as %s: %w", tolerationsExample, err)
	}
	tolerations := make([]corev1.Toleration, 0, len(entries))
	for i, entry := range entries {
		t, err := decodeToleration(entry)
		if err != nil {
			return nil, fmt.Errorf("toleration [%d] %s: %w", i, compactJSON(entry), err)
		}
		tolerations = append(tolerations, t)
	}
	return tolerations, nil
}

// decodeToleration decodes and validates one entry of the array.
func decodeToleration(entry json.RawMessage) (corev1.Toleration, error) {
	var t corev1.Toleration
	if !bytes.HasPrefix(bytes.TrimSpace(entry), []byte("{")) {
		return t, errors.New("expected a JSON object")
	}
	strictErrs, err := kjson.UnmarshalStrict(entry, &t)
	if err != nil {
		return t, err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return t, fmt.Errorf("%s: the fields are key, operator, value, effect and tolerationSeconds",
			strings.Join(msgs, "; "))
	}
	return t, validateToleration(t)
}

// validateToleration checks a toleration by the rules kube-apiserver applies to a pod's
// tolerations (ValidateTolerations in k8s.io/kubernetes pkg/apis/core/validation), so that
// a bad one stops the daemon at start instead of failing each pod creation. The Lt and Gt
// operators are rejected too: kube-apiserver takes them only with the
// TaintTolerationComparisonOperators feature gate (k8s.io/api v0.37), and the GPU capacity
// count does not evaluate them. The error lists every problem of the toleration.
func validateToleration(t corev1.Toleration) error {
	var problems []string
	if t.Key != "" {
		if msgs := validation.IsQualifiedName(t.Key); len(msgs) > 0 {
			problems = append(problems, fmt.Sprintf("invalid key %q: %s", t.Key, strings.Join(msgs, "; ")))
		}
	} else if t.Operator != corev1.TolerationOpExists {
		problems = append(problems, fmt.Sprintf("an empty key needs operator Exists, to match every taint; got operator %q",
			t.Operator))
	}

	switch t.Operator {
	case "", corev1.TolerationOpEqual:
		if msgs := validation.IsValidLabelValue(t.Value); len(msgs) > 0 {
			problems = append(problems, fmt.Sprintf("invalid value %q: %s", t.Value, strings.Join(msgs, "; ")))
		}
	case corev1.TolerationOpExists:
		if t.Value != "" {
			problems = append(problems, fmt.Sprintf("operator Exists matches every value and takes none, got value %q",
				t.Value))
		}
	default:
		problems = append(problems, fmt.Sprintf("unsupported operator %q: want Equal (the default) or Exists", t.Operator))
	}

	switch t.Effect {
	case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
	default:
		problems = append(problems, fmt.Sprintf(
			"unsupported effect %q: want NoSchedule, PreferNoSchedule, NoExecute or none for every effect", t.Effect))
	}
	if t.TolerationSeconds != nil && t.Effect != corev1.TaintEffectNoExecute {
		problems = append(problems, fmt.Sprintf("tolerationSeconds needs effect NoExecute, got effect %q", t.Effect))
	}

	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// compactJSON returns data without insignificant spaces, so that an entry written over
// several lines fits the one-line error.
func compactJSON(data []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return string(data)
	}
	return b.String()
}
