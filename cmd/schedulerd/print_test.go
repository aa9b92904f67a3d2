package main

import (
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

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

func TestEndedRun(t *testing.T) {
	exitCode, reason := 137, "OOMKilled (exit code 137)"
	at := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	cases := []struct {
		name string
		run  api.EndedRun
		want string
	}{
		{"failed with an exit code", api.EndedRun{Number: 2, Status: "failed", CompletedAt: &at, ExitCode: &exitCode,
			EndReason: &reason}, "2, failed at 2026-05-01T12:30:00Z; exit code 137; reason OOMKilled (exit code 137)"},
		{"nothing recorded", api.EndedRun{Number: 1, Status: "cancelled"}, "1, cancelled; exit code -; reason -"},
	}
	for _, c := range cases {
		if got := endedRun(c.run); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestPrintExplanationLastRun(t *testing.T) {
	exitCode, reason := 1, "Error (exit code 1)"
	e := api.Explanation{Status: "failed", Blockers: []string{},
		LastRun: &api.EndedRun{Number: 3, Status: "failed", ExitCode: &exitCode, EndReason: &reason}}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printExplanation(tw, &e)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "last run     3, failed; exit code 1; reason Error (exit code 1)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("job explain printed:\n%s\nwant the line %q", b.String(), want)
	}
}

// TestPrintExplanationReservation: the budget line names the reservation the job's run
// holds, or the one its admission would take, and none for an ended job, which holds none.
func TestPrintExplanationReservation(t *testing.T) {
	budget := &api.BudgetState{GPUHoursBudget: 10, GPUHoursLeft: 6, JobReservation: 4}
	cases := []struct {
		name string
		e    api.Explanation
		want string
	}{
		{"queued", api.Explanation{Status: "queued", Budget: budget},
			"budget       6.00 of 10.00 GPU-hours left; admission would reserve 4.00\n"},
		{"running", api.Explanation{Status: "running", Budget: budget, Run: &api.LiveRun{Status: "running", Pod: "ns/p"}},
			"budget       6.00 of 10.00 GPU-hours left; its run reserves 4.00\n"},
		{"completed", api.Explanation{Status: "completed", Budget: budget},
			"budget       6.00 of 10.00 GPU-hours left\n"},
		{"paused hpo parent", api.Explanation{Status: "paused", Budget: budget,
			Blockers: []string{api.BlockerPausedSearch}},
			"budget       6.00 of 10.00 GPU-hours left\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
			if c.e.Blockers == nil {
				c.e.Blockers = []string{}
			}
			printExplanation(tw, &c.e)
			if err := tw.Flush(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), c.want) {
				t.Errorf("job explain printed:\n%s\nwant the line %q", b.String(), c.want)
			}
		})
	}
}

// job get shows the preemptions beside the attempts, so that a job failed at its
// max_preemptions shows why.
func TestPrintJobPreemptions(t *testing.T) {
	j := api.Job{Status: "failed", RunCount: 20, Attempts: 0, MaxAttempts: 3, Preemptions: 20, MaxPreemptions: 20,
		GPUModels: []string{}}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printJob(tw, &j)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "runs         20; 0 of 3 attempts used by failures; 20 of 20 preemptions\n"; !strings.Contains(b.String(), want) {
		t.Errorf("job get printed:\n%s\nwant the line %q", b.String(), want)
	}
}

// job get names the hpo parent whose pause paused a trial, since only the parent's resume
// queues the trial again.
func TestPrintJobPausedByParent(t *testing.T) {
	parent := uuid.MustParse("01930000-0000-7000-8000-000000000001")
	j := api.Job{Status: "paused", PausedByParent: true, ParentJobID: &parent, GPUModels: []string{}}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	printJob(tw, &j)
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	if want := "status       paused by its hpo parent " + parent.String() + "\n"; !strings.Contains(b.String(), want) {
		t.Errorf("job get printed:\n%s\nwant the line %q", b.String(), want)
	}
}

// job get names the token whose pause paused a job, and notes when only an operator or
// admin can resume it.
func TestPrintJobPausedByToken(t *testing.T) {
	cases := []struct {
		pausedBy, token, want string
	}{
		{api.PausedByOperator, "oncall", `paused by operator token "oncall" (only an operator or admin can resume it)`},
		{api.PausedByAdmin, "root", `paused by admin token "root" (only an operator or admin can resume it)`},
		{api.PausedBySubmitter, "vision-ci", `paused by submitter token "vision-ci"`},
	}
	for _, c := range cases {
		j := api.Job{Status: "paused", PausedBy: c.pausedBy, PausedByToken: &c.token, GPUModels: []string{}}
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		printJob(tw, &j)
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := "status       " + c.want + "\n"; !strings.Contains(b.String(), want) {
			t.Errorf("job get printed:\n%s\nwant the line %q", b.String(), want)
		}
	}
}
