package main

import (
	"testing"

	"github.com/schedulerd/schedulerd/api"
)

func TestRunState(t *testing.T) {
	node, stopping := "node-1", "cancelled: job paused"
	cases := []struct {
		name string
		run  api.LiveRun
		want string
	}{
		{"running on a node", api.LiveRun{Status: "running", Pod: "ns/p", Node: &node}, "running on node node-1"},
		{"pod not created", api.LiveRun{Status: "pending", Pod: "ns/p"}, "admitted; the pod ns/p is not created yet"},
		{"stopping", api.LiveRun{Status: "running", Pod: "ns/p", Node: &node, Stopping: &stopping},
			"stopping its pod ns/p, then cancelled: job paused"},
	}
	for _, c := range cases {
		if got := runState(c.run); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
