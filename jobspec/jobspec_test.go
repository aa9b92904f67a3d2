package jobspec_test

import (
	"errors"
	"testing"

	"github.com/schedulerd/schedulerd/jobspec"
)

// max_preemptions left out means 20, a value from 1 to 1000 is kept, and 0 is rejected
// rather than taken as the default.
func TestMaxPreemptions(t *testing.T) {
	const base = `{"image":"x","max_runtime_seconds":60,"resources":{"gpus":1}`
	valid := []struct {
		name, config string
		want         int
	}{
		{"left out", base + `}`, 20},
		{"one", base + `,"max_preemptions":1}`, 1},
		{"the maximum", base + `,"max_preemptions":1000}`, 1000},
	}
	for _, c := range valid {
		spec, err := jobspec.Decode([]byte(c.config))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := spec.Preemptions(); got != c.want {
			t.Errorf("%s: Preemptions() = %d, want %d", c.name, got, c.want)
		}
	}

	for _, value := range []string{"0", "-1", "1001"} {
		_, err := jobspec.Decode([]byte(base + `,"max_preemptions":` + value + `}`))
		var fieldErr *jobspec.FieldError
		if !errors.As(err, &fieldErr) || fieldErr.Field != "config.max_preemptions" {
			t.Errorf("max_preemptions %s: error %v, want one naming config.max_preemptions", value, err)
		}
	}
}
