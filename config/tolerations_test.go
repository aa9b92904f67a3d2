package config

import (
	"fmt"
	"io"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestLoadPodTolerations(t *testing.T) {
	seconds := int64(600)
	cases := []struct {
		name  string
		value string
		want  []corev1.Toleration
	}{
		{"unset", "", nil},
		{"empty array", "[]", []corev1.Toleration{}},
		{"dedicated pool", `[{"key":"dedicated","operator":"Equal","value":"ml","effect":"NoSchedule"}]`,
			[]corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml",
				Effect: corev1.TaintEffectNoSchedule}}},
		{"default operator and every effect", `[{"key":"example.com/pool","value":"gpu"}]`,
			[]corev1.Toleration{{Key: "example.com/pool", Value: "gpu"}}},
		{"every taint", `[{"operator":"Exists"}]`,
			[]corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		{"NoExecute with seconds, over lines", `[
			{"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 600},
			{"key": "example.com/spot", "operator": "Exists"}
		]`, []corev1.Toleration{
			{Key: "maintenance", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute,
				TolerationSeconds: &seconds},
			{Key: "example.com/spot", Operator: corev1.TolerationOpExists}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := Load("run", nil, env(map[string]string{"SCHEDULERD_POD_TOLERATIONS": c.value}), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if describe(got.PodTolerations) != describe(c.want) {
				t.Errorf("tolerations %s, want %s", describe(got.PodTolerations), describe(c.want))
			}
		})
	}
}

// describe formats tolerations with the value of tolerationSeconds, not its address, and
// distinguishes a nil list from an empty one.
func describe(tolerations []corev1.Toleration) string {
	if tolerations == nil {
		return "nil"
	}
	parts := make([]string, len(tolerations))
	for i, t := range tolerations {
		seconds := "nil"
		if t.TolerationSeconds != nil {
			seconds = fmt.Sprint(*t.TolerationSeconds)
		}
		parts[i] = fmt.Sprintf("{key=%q operator=%q value=%q effect=%q seconds=%s}",
			t.Key, t.Operator, t.Value, t.Effect, seconds)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestLoadPodTolerationsFromFlag(t *testing.T) {
	c, _, err := Load("run", []string{"-pod-tolerations", `[{"key":"dedicated","operator":"Exists"}]`},
		env(map[string]string{"SCHEDULERD_POD_TOLERATIONS": `[{"key":"other","operator":"Exists"}]`}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	if describe(c.PodTolerations) != describe(want) {
		t.Errorf("tolerations %s, want %s from the flag", describe(c.PodTolerations), describe(want))
	}
}

func TestLoadRejectsBadPodTolerations(t *testing.T) {
	const prefix = "invalid -pod-tolerations (env SCHEDULERD_POD_TOLERATIONS): "
	const example = `[{"key":"dedicated","operator":"Equal","value":"ml","effect":"NoSchedule"}]`
	const fields = "the fields are key, operator, value, effect and tolerationSeconds"
	cases := []struct {
		name, value, want string
	}{
		{"object, not array", `{"key":"dedicated","operator":"Exists"}`,
			"expected a JSON array of tolerations such as " + example},
		{"null", `null`, "expected a JSON array of tolerations such as " + example},
		{"bad JSON", `[{"key":"dedicated",}]`,
			"expected a JSON array of tolerations such as " + example +
				": invalid character '}' looking for beginning of object key string"},
		{"text after the array", `[] x`,
			"expected a JSON array of tolerations such as " + example + ": invalid character 'x' after top-level value"},
		{"entry not an object", `[{"key":"a","operator":"Exists"}, "dedicated"]`,
			`toleration [1] "dedicated": expected a JSON object`},
		{"unknown field", `[{"key":"dedicated","value":"ml","efect":"NoSchedule"}]`,
			`toleration [0] {"key":"dedicated","value":"ml","efect":"NoSchedule"}: unknown field "efect": ` + fields},
		{"field in wrong case", `[{"Key":"dedicated","operator":"Exists"}]`,
			`toleration [0] {"Key":"dedicated","operator":"Exists"}: unknown field "Key": ` + fields},
		{"repeated field", `[{"key":"dedicated","key":"ml","operator":"Exists"}]`,
			`toleration [0] {"key":"dedicated","key":"ml","operator":"Exists"}: duplicate field "key": ` + fields},
		{"unknown operator", `[{"key":"dedicated","operator":"In","value":"ml"}]`,
			`toleration [0] {"key":"dedicated","operator":"In","value":"ml"}: ` +
				`unsupported operator "In": want Equal (the default) or Exists`},
		{"numeric operator", `[{"key":"sla","operator":"Gt","value":"950"}]`,
			`toleration [0] {"key":"sla","operator":"Gt","value":"950"}: ` +
				`unsupported operator "Gt": want Equal (the default) or Exists`},
		{"Exists with a value", `[{"key":"dedicated","operator":"Exists","value":"ml"}]`,
			`toleration [0] {"key":"dedicated","operator":"Exists","value":"ml"}: ` +
				`operator Exists matches every value and takes none, got value "ml"`},
		{"unknown effect", `[{"key":"dedicated","value":"ml","effect":"NoScheduled"}]`,
			`toleration [0] {"key":"dedicated","value":"ml","effect":"NoScheduled"}: ` +
				`unsupported effect "NoScheduled": want NoSchedule, PreferNoSchedule, NoExecute or none for every effect`},
		{"empty key with Equal", `[{"value":"ml","effect":"NoSchedule"}]`,
			`toleration [0] {"value":"ml","effect":"NoSchedule"}: ` +
				`an empty key needs operator Exists, to match every taint; got operator ""`},
		{"seconds without NoExecute", `[{"key":"dedicated","operator":"Exists","tolerationSeconds":60}]`,
			`toleration [0] {"key":"dedicated","operator":"Exists","tolerationSeconds":60}: ` +
				`tolerationSeconds needs effect NoExecute, got effect ""`},
		{"seconds not an integer", `[{"key":"m","operator":"Exists","effect":"NoExecute","tolerationSeconds":"60"}]`,
			`toleration [0] {"key":"m","operator":"Exists","effect":"NoExecute","tolerationSeconds":"60"}: ` +
				`json: cannot unmarshal string into Go struct field Toleration.tolerationSeconds of type int64`},
		{"invalid key", `[{"key":"dedicated pool","operator":"Exists"}]`,
			`toleration [0] {"key":"dedicated pool","operator":"Exists"}: invalid key "dedicated pool": ` +
				`name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end ` +
				`with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for ` +
				`validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`},
		{"invalid value", `[{"key":"dedicated","value":"m l"}]`,
			`toleration [0] {"key":"dedicated","value":"m l"}: invalid value "m l": ` +
				`a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', ` +
				`and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or ` +
				`'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
		{"two problems", `[{"key":"dedicated","operator":"Exists","value":"ml","effect":"Never"}]`,
			`toleration [0] {"key":"dedicated","operator":"Exists","value":"ml","effect":"Never"}: ` +
				`operator Exists matches every value and takes none, got value "ml"; ` +
				`unsupported effect "Never": want NoSchedule, PreferNoSchedule, NoExecute or none for every effect`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Load("run", nil, env(map[string]string{"SCHEDULERD_POD_TOLERATIONS": c.value}), io.Discard)
			if err == nil {
				t.Fatalf("no error, want %q", prefix+c.want)
			}
			if err.Error() != prefix+c.want {
				t.Errorf("error\n%s\nwant\n%s", err, prefix+c.want)
			}
		})
	}
}
