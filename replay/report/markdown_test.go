package report

import (
	"strings"
	"testing"
	"time"
)

func TestRenderCapacityWithoutSamples(t *testing.T) {
	d := Data{Capacity: map[string]int64{"T4": 404000, "A10": 2000}}

	text := renderMarkdown(d)

	wantLines := []string{
		"Samples: none, so the peaks are not known.",
		"| A10 | n/a | n/a | 2 | n/a |",
		"| T4 | n/a | n/a | 404 | n/a |",
	}
	for _, line := range wantLines {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("report lacks line %q:\n%s", line, text)
		}
	}

	if strings.Contains(text, AllocationChartFile) {
		t.Errorf("report links %s without samples", AllocationChartFile)
	}
}

func TestRenderOneProblem(t *testing.T) {
	text := renderMarkdown(Data{Tasks: TaskCounts{Problems: 1}, Problems: []string{"task a: GPU model A100 not found"}})

	want := "## Problems\n\n1 problem was reported, and 1 task was not submitted. A task that also allows a GPU " +
		"model that a node has, and fits such a node, is submitted.\n\n```text\ntask a: GPU model A100 not found\n```\n"
	if !strings.HasSuffix(text, want) {
		t.Errorf("report ends with\n%s\nwant\n%s", text[strings.Index(text, "## Problems"):], want)
	}
}

func TestRenderProblemWithFence(t *testing.T) {
	text := renderMarkdown(Data{Problems: []string{"task ```b```: odd name"}})

	want := "````text\ntask ```b```: odd name\n````\n"
	if !strings.HasSuffix(text, want) {
		t.Errorf("report does not end with a four-backtick fence:\n%s", text)
	}
}

func TestRenderDurationWithoutFinish(t *testing.T) {
	d := Data{Started: started, Daemon: ProcessUsage{PID: 7, CPUSeconds: 3}}

	text := renderMarkdown(d)

	if !strings.Contains(text, "- Duration: not recorded\n") {
		t.Errorf("report gives a duration without a finish time:\n%s", text)
	}

	if !strings.Contains(text, "- CPU share of wall time: n/a, ") {
		t.Errorf("report gives a CPU share without a finish time:\n%s", text)
	}
}

func TestRenderEscapesTableCells(t *testing.T) {
	d := Data{Jobs: []StateCount{{State: "odd|state", Jobs: 1}}}

	text := renderMarkdown(d)

	if !strings.Contains(text, "| odd\\|state | 1 | 100.0% |\n") {
		t.Errorf("report does not escape the pipe in a state name:\n%s", text)
	}
}

func TestRenderStateOrder(t *testing.T) {
	d := Data{Jobs: []StateCount{
		{"zombie", 1}, {"cancelled", 1}, {"queued", 1}, {"completed", 1}, {"archived", 1},
	}}

	text := renderMarkdown(d)

	want := []string{"| queued |", "| completed |", "| cancelled |", "| archived |", "| zombie |", "| Total |"}
	last := -1
	for _, row := range want {
		at := strings.Index(text, row)
		if at < 0 {
			t.Fatalf("report lacks row %q", row)
		}
		if at < last {
			t.Errorf("row %q is out of order:\n%s", row, text)
		}
		last = at
	}
}

func TestRenderSamplesOutOfOrder(t *testing.T) {
	d := Data{Samples: []Sample{
		{At: 2 * time.Minute, AllocatedMilli: map[string]int64{"T4": 5000}},
		{At: time.Minute, AllocatedMilli: map[string]int64{"T4": 5000}},
	}}

	text := renderMarkdown(d)

	if !strings.Contains(text, "2 samples from 1m00s to 2m00s after the start.") {
		t.Errorf("report gives the wrong sample span:\n%s", text)
	}

	if !strings.Contains(text, "| T4 | 5 | 1m00s | unknown | n/a |") {
		t.Errorf("peak is not at the first sample that reached it:\n%s", text)
	}
}

func TestRenderTasksUnderLimit(t *testing.T) {
	d := Data{Tasks: TaskCounts{Total: 8152, Limit: 300, Read: 341, GPU: 300, CPUOnlySkipped: 41, Submitted: 300}}

	text := renderMarkdown(d)

	wantLines := []string{
		"| Total in the trace | 8,152 |",
		"| Read up to the limit | 341 |",
		"| GPU | 300 |",
		"| CPU-only, skipped | 41 |",
		"The run took the first 300 GPU tasks in file order (-limit 300), so the GPU and CPU-only rows " +
			"count only the 341 tasks up to the last of them, not the whole trace.",
	}
	for _, line := range wantLines {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("report lacks line %q:\n%s", line, text)
		}
	}
}

func TestRenderTasksWithoutLimit(t *testing.T) {
	d := Data{Tasks: TaskCounts{Total: 8152, Read: 8152, GPU: 7064, CPUOnlySkipped: 1088, Submitted: 7064}}

	text := renderMarkdown(d)

	if strings.Contains(text, "Read up to the limit") {
		t.Errorf("report of a run without -limit has a row for the limit:\n%s", text)
	}
	if strings.Contains(text, "-limit") {
		t.Errorf("report of a run without -limit mentions -limit:\n%s", text)
	}
	if !strings.Contains(text, "\n| CPU-only, skipped | 1,088 |\n") {
		t.Errorf("report lacks the CPU-only count 1,088:\n%s", text)
	}
}

func TestRenderFillSectionOnPacedRun(t *testing.T) {
	text := renderMarkdown(Data{Mode: "paced"})

	section := text[strings.Index(text, "## Fill mode"):strings.Index(text, "## Problems")]
	want := "Not measured: only a fill-mode run measures this, and this run's mode was paced.\n"
	if !strings.Contains(section, want) {
		t.Errorf("fill section of a paced run is\n%s\nwant it to contain %q", section, want)
	}
	if strings.Contains(section, none) {
		t.Errorf("fill section of a paced run says none, as if fill mode found nothing:\n%s", section)
	}
}

func TestRenderFillSectionWithoutShares(t *testing.T) {
	text := renderMarkdown(Data{Mode: "fill"})

	want := "## Fill mode: allocation where the fill stopped\n\nWhere the fill stopped: not recorded\n\nnone\n"
	if !strings.Contains(text, want) {
		t.Errorf("fill section of a fill-mode run without GPU models does not say none:\n%s", text)
	}
}

// The fill's stop is not a problem of one task: it is in the fill section, and Problems
// lists only the tasks set aside before submission.
func TestRenderFillStopOutsideProblems(t *testing.T) {
	stop := "task 5 of 10 (t-04) found no room: no free capacity of the allowed GPU models"
	text := renderMarkdown(Data{Mode: "fill", FillStop: stop, Fill: []ModelShare{{"T4", 4000, 4000}}})

	fill := text[strings.Index(text, "## Fill mode"):strings.Index(text, "## Problems")]
	if !strings.Contains(fill, "\nWhere the fill stopped: "+stop+"\n") {
		t.Errorf("fill section does not say where the fill stopped:\n%s", fill)
	}
	if !strings.HasSuffix(text, "## Problems\n\nnone\n") {
		t.Errorf("problems section is not none:\n%s", text[strings.Index(text, "## Problems"):])
	}
}

func TestRenderWaitsNeverStarted(t *testing.T) {
	d := Data{Waits: []TierWait{
		{Tier: "low", Jobs: 2948, Started: 2946, P50: time.Minute, P99: 2 * time.Minute, Max: 3 * time.Minute},
		{Tier: "high", Jobs: 6},
	}}

	text := renderMarkdown(d)

	wantLines := []string{
		"| Tier | Jobs | Never started | p50 | p99 | Max |",
		"| high | 6 | 6 | n/a | n/a | n/a |",
		"| low | 2,948 | 2 | 1m00s | 2m00s | 3m00s |",
	}
	for _, line := range wantLines {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("report lacks line %q:\n%s", line, text)
		}
	}
}

func TestRenderRunLengths(t *testing.T) {
	d := Data{Mode: "paced", Speedup: 20000,
		Runs: RunLengths{Runs: 7064, ZeroInTrace: 1, ShortenedToZero: 6569, ShortenedToOne: 299}}

	text := renderMarkdown(d)

	section := text[strings.Index(text, "## Run lengths"):strings.Index(text, "## Jobs by end state")]
	wantLines := []string{
		"At a speedup of 20,000 a trace run shorter than 10,000 s (2h47m) becomes a pod of 0 s, " +
			"and one shorter than 30,000 s (8h20m) a pod of at most 1 s",
		"| With a run length | 7,064 | 100.0% |",
		"| 0 s in the trace | 1 | <0.1% |",
		"| Shortened to 0 s | 6,569 | 93.0% |",
		"| Shortened to 1 s | 299 | 4.2% |",
	}
	for _, line := range wantLines {
		if !strings.Contains(section, line) {
			t.Errorf("run lengths section lacks %q:\n%s", line, section)
		}
	}
}

func TestRenderRunLengthsInFillMode(t *testing.T) {
	text := renderMarkdown(Data{Mode: "fill", Speedup: 20000})

	want := "## Run lengths at this speedup\n\nNot measured: fill-mode pods run until the replay ends"
	if !strings.Contains(text, want) {
		t.Errorf("run lengths section of a fill-mode run does not say it was not measured:\n%s", text)
	}
}

// TestRenderProblemsCountTasksApart: problems and tasks not submitted are counted apart,
// because a task may have two problems, and a task that also allows a GPU model some node
// has is reported and still submitted.
func TestRenderProblemsCountTasksApart(t *testing.T) {
	text := renderMarkdown(Data{Tasks: TaskCounts{Problems: 1}, Problems: []string{
		"tasks.csv:2: task a: no node has GPU model A100",
		"tasks.csv:2: task a: no single node of an allowed model has 16 GPUs, 1000 CPU milli and 1024 MiB",
		"tasks.csv:3: task b: no node has GPU model A100",
	}})

	want := "## Problems\n\n3 problems were reported, and 1 task was not submitted. A task that also allows " +
		"a GPU model that a node has, and fits such a node, is submitted.\n\n```text\n"
	if !strings.Contains(text, want) {
		t.Errorf("problems section is\n%s\nwant it to start with\n%s", text[strings.Index(text, "## Problems"):], want)
	}
}

// TestRenderPartialReport: a replay that stopped early is marked partial in its title and
// in a section before the figures, which gives the reason, the step and the tasks left.
func TestRenderPartialReport(t *testing.T) {
	d := Data{Title: "Trace replay of tasks.csv", Tasks: TaskCounts{GPU: 300, Submitted: 120},
		Jobs: []StateCount{{"queued", 20}, {"completed", 100}},
		Stop: &Stop{Reason: "reached its timeout of 2h0m0s", Step: "submitting trace tasks", Left: 180}}

	text := renderMarkdown(d)

	if !strings.HasPrefix(text, "# Trace replay of tasks.csv (partial)\n\n## Partial report\n\n") {
		t.Errorf("report does not start with a partial title and section:\n%s", text)
	}
	wantLines := []string{
		"- Reason: reached its timeout of 2h0m0s",
		"- Step: submitting trace tasks",
		"- Trace tasks submitted: 120 of 300, and 180 not submitted",
		"## Jobs by state at the stop",
		"| queued | 20 | 16.7% |",
	}
	for _, line := range wantLines {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("report lacks line %q:\n%s", line, text)
		}
	}
	if strings.Contains(text, "Jobs by end state") {
		t.Errorf("partial report calls the states at the stop end states:\n%s", text)
	}
}

func TestRenderCompleteReportNotPartial(t *testing.T) {
	text := renderMarkdown(Data{Title: "Trace replay of tasks.csv"})

	if strings.Contains(text, "partial") || strings.Contains(text, "Partial") {
		t.Errorf("report of a replay that ran to its end says partial:\n%s", text)
	}
	if strings.Contains(text, "- Continued:") {
		t.Errorf("report of a replay that started afresh says it continued one:\n%s", text)
	}
}

// TestRenderContinuedRun: a run that continued an interrupted replay states which figures
// cover only itself, because its samples and times start with it.
func TestRenderContinuedRun(t *testing.T) {
	text := renderMarkdown(Data{Continued: 1234})

	want := "\n- Continued: earlier runs had submitted 1,234 trace tasks. The duration, the GPU " +
		"allocation samples and the daemon's CPU time cover this run only."
	if !strings.Contains(text, want) {
		t.Errorf("report lacks %q:\n%s", want, text)
	}
}
