package replay

import (
	"math"
	"testing"

	"github.com/schedulerd/schedulerd/replay/trace"
)

func TestValidateRejectsBadFactors(t *testing.T) {
	good := Config{NodesFile: "n", TasksFile: "t", Mode: trace.ModePaced, Speedup: 1, Load: 1}
	cases := map[string]func(*Config){
		"negative budget scale":   func(c *Config) { c.BudgetScale = -1 },
		"negative max concurrent": func(c *Config) { c.MaxConcurrent = -5 },
		"zero speedup":            func(c *Config) { c.Speedup = 0 },
		"infinite load":           func(c *Config) { c.Load = math.Inf(1) },
		"negative limit":          func(c *Config) { c.Limit = -1 },
		"unknown mode":            func(c *Config) { c.Mode = "bogus" },
	}
	for name, change := range cases {
		cfg := good
		change(&cfg)
		if err := validate(&cfg); err == nil {
			t.Errorf("%s: accepted, want an error", name)
		}
	}
	if err := validate(&good); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}
