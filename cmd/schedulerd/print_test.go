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

// A server fault's message carries the request id under which the server logged the
// cause; other problems do not need it.
func TestProblemErrorRequestID(t *testing.T) {
	fault := newProblemError(503, []byte(`{"type":"urn:schedulerd:problem:unavailable","title":"temporarily unavailable",`+
		`"status":503,"detail":"the database cannot be reached","request_id":"9f2c"}`))
	if got, want := fault.Error(), "HTTP 503 temporarily unavailable: the database cannot be reached (request id 9f2c)"; got != want {
		t.Errorf("server fault reads %q, want %q", got, want)
	}
	invalid := newProblemError(400, []byte(`{"title":"invalid request","status":400,"field":"limit","detail":"too big","request_id":"9f2d"}`))
	if got, want := invalid.Error(), "HTTP 400 invalid request (limit): too big"; got != want {
		t.Errorf("client error reads %q, want %q", got, want)
	}
}
