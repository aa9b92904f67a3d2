package report

import (
	"fmt"
	"strings"
	"time"
)

// none is the whole body of a section that has no data, so that a reader
// sees that the figure was empty and not forgotten.
const none = "none\n"

// renderMarkdown returns the text of report.md.
func renderMarkdown(d Data) string {
	var b strings.Builder

	title := oneLine(d.Title)
	if title == "" {
		title = "Trace replay report"
	}
	if d.Stop != nil {
		title += " (partial)"
	}
	fmt.Fprintf(&b, "# %s\n", title)

	writeStop(&b, d)
	writeRun(&b, d)
	writeTasks(&b, d.Tasks)
	writeRunLengths(&b, d)
	writeJobs(&b, d.Jobs, d.Stop != nil)
	writeWaits(&b, d.Waits)
	writeAllocation(&b, d)
	writeProjects(&b, d)
	writeDispatch(&b, d.Dispatch)
	writeDaemon(&b, d)
	writeFill(&b, d.Mode, d.FillStop, d.Fill)
	writeProblems(&b, d.Problems, d.Tasks.Problems)

	return b.String()
}

// section starts a level-two section.
func section(b *strings.Builder, heading string) {
	fmt.Fprintf(b, "\n## %s\n\n", heading)
}

// table is a Markdown table. Columns marked in rightAligned contain numbers
// and are aligned right.
type table struct {
	header       []string
	rightAligned []bool
	rows         [][]string
}

// newTable returns a table with the given header. A header that starts with
// "> " names a right-aligned column, and the marker is not printed.
func newTable(header ...string) *table {
	t := &table{}
	for _, name := range header {
		text, right := strings.CutPrefix(name, "> ")
		t.header = append(t.header, text)
		t.rightAligned = append(t.rightAligned, right)
	}

	return t
}

// add appends a row. Cells are escaped, so callers pass plain text.
func (t *table) add(cells ...string) {
	t.rows = append(t.rows, cells)
}

func (t *table) write(b *strings.Builder) {
	writeRow(b, t.header)

	separators := make([]string, len(t.header))
	for i, right := range t.rightAligned {
		separators[i] = "---"
		if right {
			separators[i] = "---:"
		}
	}
	b.WriteString("| " + strings.Join(separators, " | ") + " |\n")

	for _, row := range t.rows {
		writeRow(b, row)
	}
}

func writeRow(b *strings.Builder, cells []string) {
	escaped := make([]string, len(cells))
	for i, cell := range cells {
		escaped[i] = escapeCell(cell)
	}

	b.WriteString("| " + strings.Join(escaped, " | ") + " |\n")
}

// writeStop writes, for a replay that stopped early, why and where it stopped, so that a
// reader takes the figures below for a part of the replay only.
func writeStop(b *strings.Builder, d Data) {
	if d.Stop == nil {
		return
	}
	section(b, "Partial report")

	submitted := d.Tasks.Submitted
	b.WriteString("The replay stopped before every job had ended, so this report covers only " +
		"what happened up to the stop.\n\n")
	fmt.Fprintf(b, "- Reason: %s\n", orNotRecorded(oneLine(d.Stop.Reason)))
	fmt.Fprintf(b, "- Step: %s\n", orNotRecorded(oneLine(d.Stop.Step)))
	fmt.Fprintf(b, "- Trace tasks submitted: %s of %s, and %s not submitted\n",
		formatInt(int64(submitted)), formatInt(int64(submitted+d.Stop.Left)), formatInt(int64(d.Stop.Left)))
	b.WriteString("\nThe job figures show each job's state at the stop. schedulerd goes on running " +
		"the jobs that were queued or running then. Running the same command again continues the " +
		"replay and submits no task twice.\n")
}

func writeRun(b *strings.Builder, d Data) {
	section(b, "How it was run")

	command := "not recorded"
	if d.Command != "" {
		command = codeSpan(d.Command)
	}

	duration := "not recorded"
	if !d.Started.IsZero() && !d.Finished.IsZero() {
		duration = formatDuration(d.Finished.Sub(d.Started))
	}

	fmt.Fprintf(b, "- Command: %s\n", command)
	fmt.Fprintf(b, "- Mode: %s\n", orNotRecorded(oneLine(d.Mode)))
	fmt.Fprintf(b, "- Speedup: %s\n", formatFactor(d.Speedup))
	fmt.Fprintf(b, "- Load: %s\n", formatFactor(d.Load))
	fmt.Fprintf(b, "- Started: %s\n", formatTime(d.Started))
	fmt.Fprintf(b, "- Finished: %s\n", formatTime(d.Finished))
	fmt.Fprintf(b, "- Duration: %s\n", duration)
	if d.Continued > 0 {
		fmt.Fprintf(b, "- Continued: earlier runs had submitted %s trace tasks. The duration, the GPU "+
			"allocation samples and the daemon's CPU time cover this run only. The job, queue wait, "+
			"project and dispatch figures count every job in the database, so the mean dispatch "+
			"rate also spans the time between the runs.\n", formatInt(int64(d.Continued)))
	}
}

// formatFactor formats a speedup or load factor. A factor of 0 has no
// meaning for a replay, so the report prints 0 as "not recorded".
func formatFactor(v float64) string {
	if v == 0 {
		return "not recorded"
	}

	return formatTrimmed(v, 2)
}

// writeTasks writes the task counts. Under -limit it adds the count of tasks read and
// states that the GPU and CPU-only rows count only those, not the whole trace.
func writeTasks(b *strings.Builder, tasks TaskCounts) {
	section(b, "Tasks")

	t := newTable("Tasks", "> Count")
	t.add("Total in the trace", formatInt(int64(tasks.Total)))
	if tasks.Limit > 0 {
		t.add("Read up to the limit", formatInt(int64(tasks.Read)))
	}
	t.add("GPU", formatInt(int64(tasks.GPU)))
	t.add("CPU-only, skipped", formatInt(int64(tasks.CPUOnlySkipped)))
	t.add("Submitted", formatInt(int64(tasks.Submitted)))
	t.add("Problems, not submitted", formatInt(int64(tasks.Problems)))
	t.write(b)

	if tasks.Limit > 0 {
		fmt.Fprintf(b, "\nThe run took the first %s GPU tasks in file order (-limit %d), so the GPU "+
			"and CPU-only rows count only the %s tasks up to the last of them, not the whole trace.\n",
			formatInt(int64(tasks.Limit)), tasks.Limit, formatInt(int64(tasks.Read)))
	}
}

// writeRunLengths writes how many runs the speedup shortened to pods of 0 s and 1 s, with
// the trace run lengths below which that happens at this speedup.
func writeRunLengths(b *strings.Builder, d Data) {
	section(b, "Run lengths at this speedup")
	if d.Mode == fillMode {
		b.WriteString("Not measured: fill-mode pods run until the replay ends, so no run length is replayed.\n")
		return
	}
	if d.Runs.Runs == 0 || d.Speedup <= 0 {
		b.WriteString(none)
		return
	}

	zeroBelow, oneBelow := d.Speedup/2, 1.5*d.Speedup
	fmt.Fprintf(b, "Each pod runs for its trace run length divided by the speedup, rounded to whole seconds. "+
		"At a speedup of %s a trace run shorter than %s s (%s) becomes a pod of 0 s, and one shorter than %s s (%s) "+
		"a pod of at most 1 s, so the replay does not reproduce the run lengths of the shortened runs below.\n\n",
		formatTrimmed(d.Speedup, 2), formatTrimmed(zeroBelow, 2), formatDuration(seconds(zeroBelow)),
		formatTrimmed(oneBelow, 2), formatDuration(seconds(oneBelow)))

	runs := float64(d.Runs.Runs)
	t := newTable("Runs", "> Count", "> Share")
	t.add("With a run length", formatInt(int64(d.Runs.Runs)), formatPercent(runs, runs))
	t.add("0 s in the trace", formatInt(int64(d.Runs.ZeroInTrace)), formatPercent(float64(d.Runs.ZeroInTrace), runs))
	t.add("Shortened to 0 s", formatInt(int64(d.Runs.ShortenedToZero)),
		formatPercent(float64(d.Runs.ShortenedToZero), runs))
	t.add("Shortened to 1 s", formatInt(int64(d.Runs.ShortenedToOne)),
		formatPercent(float64(d.Runs.ShortenedToOne), runs))
	t.write(b)
}

// seconds converts seconds to a time.Duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// writeJobs writes the jobs by state. After an early stop, the states are those at the
// stop, and some of them are not end states.
func writeJobs(b *strings.Builder, jobs []StateCount, stoppedEarly bool) {
	if stoppedEarly {
		section(b, "Jobs by state at the stop")
	} else {
		section(b, "Jobs by end state")
	}
	if len(jobs) == 0 {
		b.WriteString(none)
		return
	}

	total := 0
	for _, state := range jobs {
		total += state.Jobs
	}

	t := newTable("State", "> Jobs", "> Share")
	for _, state := range sortedStates(jobs) {
		t.add(state.State, formatInt(int64(state.Jobs)), formatPercent(float64(state.Jobs), float64(total)))
	}
	t.add("Total", formatInt(int64(total)), formatPercent(float64(total), float64(total)))
	t.write(b)
}

// writeWaits writes the queue wait by tier. Jobs that never started have no wait, so the
// table counts them in a column of their own, and Jobs counts every job of the tier.
func writeWaits(b *strings.Builder, waits []TierWait) {
	section(b, "Queue wait by priority tier")
	if len(waits) == 0 {
		b.WriteString(none)
		return
	}

	b.WriteString("The wait runs from submission to the first container start of any of the job's runs. " +
		"A job whose first pod was preempted or unschedulable before its container started waits until a later run starts. " +
		"Never started counts the jobs without a container start, which have no wait.\n\n")

	t := newTable("Tier", "> Jobs", "> Never started", "> p50", "> p99", "> Max")
	for _, wait := range sortedWaits(waits) {
		t.add(waitRow(wait)...)
	}
	t.write(b)
}

func waitRow(w TierWait) []string {
	row := []string{w.Tier, formatInt(int64(w.Jobs)), formatInt(int64(w.Jobs - w.Started))}
	if w.Started == 0 {
		return append(row, "n/a", "n/a", "n/a")
	}
	return append(row, formatDuration(w.P50), formatDuration(w.P99), formatDuration(w.Max))
}

func writeDispatch(b *strings.Builder, rate DispatchRate) {
	section(b, "Dispatch rate")
	if rate == (DispatchRate{}) {
		b.WriteString(none)
		return
	}

	fmt.Fprintf(b, "- Pods: %s\n", formatInt(int64(rate.Pods)))
	fmt.Fprintf(b, "- Mean: %s pods/s\n", formatFixed(rate.MeanPerSecond, 2))
	fmt.Fprintf(b, "- Peak: %s pods/s, the maximum over 1-second buckets\n", formatTrimmed(rate.PeakPerSecond, 2))
}

func writeDaemon(b *strings.Builder, d Data) {
	section(b, "Daemon process")
	if d.Daemon == (ProcessUsage{}) {
		b.WriteString(none)
		return
	}

	wall := 0.0
	if !d.Started.IsZero() && !d.Finished.IsZero() {
		wall = d.Finished.Sub(d.Started).Seconds()
	}

	fmt.Fprintf(b, "- PID: %d\n", d.Daemon.PID)
	fmt.Fprintf(b, "- Peak RSS: %s\n", formatMiB(d.Daemon.PeakRSSBytes))
	fmt.Fprintf(b, "- CPU time during this run: %s s\n", formatFixed(d.Daemon.CPUSeconds, 1))
	fmt.Fprintf(b, "- CPU share of wall time: %s, where 100%% is one core busy for the whole run\n",
		formatPercent(d.Daemon.CPUSeconds, wall))
}
