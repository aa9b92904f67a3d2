package jobspec_test

import (
	"errors"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
)

// TestDecodeRejectsAmbiguousKeys: a key that matches a field only without regard to case,
// or a repeated key, is an error naming the key's path, at every level of the spec.
func TestDecodeRejectsAmbiguousKeys(t *testing.T) {
	const search = `"search":"random","seed":7,"metric":"accuracy","goal":"max",` +
		`"parameters":{"lr":{"min":0.001,"max":0.1}}`
	cases := []struct {
		name   string
		config string
		field  string
	}{
		{"runtime in two cases",
			`{"image":"x","max_runtime_seconds":2592000,"MAX_RUNTIME_SECONDS":60,"resources":{"gpus":1}}`,
			"config.MAX_RUNTIME_SECONDS"},
		{"runtime in two cases, jsonb order",
			`{"image":"x","MAX_RUNTIME_SECONDS":60,"max_runtime_seconds":2592000,"resources":{"gpus":1}}`,
			"config.MAX_RUNTIME_SECONDS"},
		{"field in another case alone",
			`{"Image":"x","max_runtime_seconds":60,"resources":{"gpus":1}}`, "config.Image"},
		{"nested field in another case",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1,"GPUS":64}}`, "config.resources.GPUS"},
		{"hpo trials in two cases",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},"hpo":{` + search +
				`,"trials":1000000000,"TRIALS":5}}`, "config.hpo.TRIALS"},
		{"range bound in another case",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},"hpo":{"search":"random","trials":5,` +
				`"metric":"accuracy","goal":"max","parameters":{"lr":{"min":0.001,"Max":0.1}}}}`,
			"config.hpo.parameters.lr.Max"},
		{"repeated field",
			`{"image":"x","image":"y","max_runtime_seconds":60,"resources":{"gpus":1}}`, "config.image"},
		{"repeated object",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},"resources":{"cpu_milli":1000}}`,
			"config.resources"},
		{"repeated map key",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},"hyperparameters":{"lr":0.1,"lr":0.2}}`,
			"config.hyperparameters.lr"},
		{"repeated threshold bound",
			`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},` +
				`"evaluation":{"thresholds":{"accuracy":{"min":0.9,"min":0.1}}}}`,
			"config.evaluation.thresholds.accuracy.min"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := jobspec.Decode([]byte(c.config))
			var fieldErr *jobspec.FieldError
			if !errors.As(err, &fieldErr) {
				t.Fatalf("error %v, want a FieldError on %s", err, c.field)
			}
			if fieldErr.Field != c.field {
				t.Errorf("field %q, want %q (reason %q)", fieldErr.Field, c.field, fieldErr.Reason)
			}
		})
	}
}

// An unknown field or a value of the wrong type is an error naming the field's path, at
// every level of the spec, with one wording of the reason.
func TestDecodeNamesFieldErrors(t *testing.T) {
	cases := []struct {
		config, field, reason string
	}{
		{`{"image":"x","max_runtime_seconds":60,"colour":"red"}`, "config.colour", "unknown field"},
		{`{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1,"foo":1}}`, "config.resources.foo",
			"unknown field"},
		{`{"image":"x","max_runtime_seconds":60,"simulation":{"run_seconds":1,"exit":1}}`,
			"config.simulation.exit", "unknown field"},
		{`{"image":"x","max_runtime_seconds":"600"}`, "config.max_runtime_seconds",
			"expected an integer, got JSON string"},
		{`{"image":"x","max_runtime_seconds":60,"resources":{"gpu_models":"A10"}}`, "config.resources.gpu_models",
			"expected an array, got JSON string"},
		{`{"image":"x","max_runtime_seconds":60.5}`, "config.max_runtime_seconds",
			"expected an integer, got JSON number 60.5"},
		// encoding/json leaves map keys and array indexes out of its error's field, so the
		// path comes from where in the config the value ends.
		{`{"image":"x","max_runtime_seconds":60,"env":{"A":"1","B":2}}`, "config.env.B",
			"expected a string, got JSON number"},
		{`{"image":"x","max_runtime_seconds":60,"resources":{"gpu_models":["A10", 5]}}`,
			"config.resources.gpu_models[1]", "expected a string, got JSON number"},
		{`{"image":"x","max_runtime_seconds":60,"secret_env":{"TOKEN":{"name":1,"key":"k"}}}`,
			"config.secret_env.TOKEN.name", "expected a string, got JSON number"},
		{`{"image":"x","max_runtime_seconds":60,"evaluation":{"thresholds":{"acc":{"min":"high"}}}}`,
			"config.evaluation.thresholds.acc.min", "expected a number, got JSON string"},
		{`{"image":"x","max_runtime_seconds":60,"hpo":{"parameters":{"lr":{"values":[0.1, {"x":1}]}}}}`,
			"config.hpo.parameters.lr.values[1]", "expected a number, got JSON object"},
		{`{"image":"x", "max_runtime_seconds" : 60, "env" : { "A" : [ "1" ] } }`, "config.env.A",
			"expected a string, got JSON array"},
		// An integer too large for the field is an integer all the same.
		{`{"image":"x","max_runtime_seconds":99999999999999999999}`, "config.max_runtime_seconds",
			"the integer 99999999999999999999 is out of range"},
		{`{"image":"x","max_runtime_seconds":-99999999999999999999}`, "config.max_runtime_seconds",
			"the integer -99999999999999999999 is out of range"},
		{`{"image":"x","max_runtime_seconds":6e1}`, "config.max_runtime_seconds",
			"expected an integer, got JSON number 6e1"},
	}
	for _, c := range cases {
		_, err := jobspec.Decode([]byte(c.config))
		var fieldErr *jobspec.FieldError
		if !errors.As(err, &fieldErr) {
			t.Errorf("%s: error %v, want a FieldError on %s", c.config, err, c.field)
			continue
		}
		if fieldErr.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.config, fieldErr.Field, c.field)
		}
		if fieldErr.Reason != c.reason {
			t.Errorf("%s: reason %q, want %q", c.config, fieldErr.Reason, c.reason)
		}
	}
}

// TestDecodeKeepsUserNamesByCase: names the user chooses are map keys, which both
// encoding/json and jsonb match exactly, so names that differ only in case are distinct.
func TestDecodeKeepsUserNamesByCase(t *testing.T) {
	raw := `{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1},"hyperparameters":{"lr":0.1,"LR":0.2},` +
		`"evaluation":{"thresholds":{"accuracy":{"min":0.8},"Accuracy":{"max":1}}}}`
	spec, err := jobspec.Decode([]byte(raw))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(spec.Hyperparameters) != 2 {
		t.Errorf("hyperparameters %v, want lr and LR", spec.Hyperparameters)
	}
	if len(spec.Evaluation.Thresholds) != 2 {
		t.Errorf("thresholds %v, want accuracy and Accuracy", spec.Evaluation.Thresholds)
	}
}
