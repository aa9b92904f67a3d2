package jobspec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
)

const envBase = `{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1}`

// A config with env and secret_env decodes with every variable and Secret reference kept.
func TestEnvDecodes(t *testing.T) {
	spec, err := jobspec.Decode([]byte(envBase + `,"env":{"WANDB_PROJECT":"vision","my.setting":"a=b"},` +
		`"secret_env":{"AWS_SECRET_ACCESS_KEY":{"name":"s3-creds","key":"secret-key"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := spec.SortedEnv(); fmt.Sprint(got) != "[WANDB_PROJECT my.setting]" {
		t.Errorf("env names %v, want [WANDB_PROJECT my.setting]", got)
	}
	if spec.Env["my.setting"] != "a=b" {
		t.Errorf("my.setting = %q, want a=b", spec.Env["my.setting"])
	}
	ref := spec.SecretEnv["AWS_SECRET_ACCESS_KEY"]
	if ref.Name != "s3-creds" || ref.Key != "secret-key" {
		t.Errorf("secret reference %+v, want s3-creds/secret-key", ref)
	}
}

// Each bad variable name or Secret reference is rejected with the field and the cause.
func TestEnvRejected(t *testing.T) {
	many := make([]string, jobspec.MaxEnvVars+1)
	for i := range many {
		many[i] = fmt.Sprintf(`"V%d":"x"`, i)
	}
	cases := []struct {
		name, fields, field, reason string
	}{
		{"empty name", `"env":{"":"x"}`, "config.env", `invalid variable name ""`},
		{"name with a space", `"env":{"MY VAR":"x"}`, "config.env", `invalid variable name "MY VAR"`},
		{"name starting with a digit", `"env":{"1X":"x"}`, "config.env", `invalid variable name "1X"`},
		{"reserved name", `"env":{"SCHEDULERD_RUN_ID":"x"}`, "config.env", "names starting with SCHEDULERD_ are set by schedulerd"},
		{"reserved secret name", `"secret_env":{"SCHEDULERD_JOB_ID":{"name":"s","key":"k"}}`, "config.secret_env",
			"names starting with SCHEDULERD_ are set by schedulerd"},
		{"set twice", `"env":{"TOKEN":"x"},"secret_env":{"TOKEN":{"name":"s","key":"k"}}`, `config.secret_env["TOKEN"]`,
			"also set in config.env"},
		{"Secret name with capitals", `"secret_env":{"TOKEN":{"name":"S3Creds","key":"k"}}`, `config.secret_env["TOKEN"].name`,
			`invalid Secret name "S3Creds"`},
		{"missing Secret name", `"secret_env":{"TOKEN":{"key":"k"}}`, `config.secret_env["TOKEN"].name`, `invalid Secret name ""`},
		{"Secret key with a slash", `"secret_env":{"TOKEN":{"name":"s","key":"a/b"}}`, `config.secret_env["TOKEN"].key`,
			`invalid Secret key "a/b"`},
		{"too many", `"env":{` + strings.Join(many, ",") + `}`, "config.env", "65 variables in env and secret_env, at most 64"},
	}
	for _, c := range cases {
		_, err := jobspec.Decode([]byte(envBase + "," + c.fields + "}"))
		var fieldErr *jobspec.FieldError
		if !errors.As(err, &fieldErr) {
			t.Errorf("%s: error %v, want a field error", c.name, err)
			continue
		}
		if fieldErr.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.name, fieldErr.Field, c.field)
		}
		if !strings.Contains(fieldErr.Reason, c.reason) {
			t.Errorf("%s: reason %q, want it to contain %q", c.name, fieldErr.Reason, c.reason)
		}
	}
}
