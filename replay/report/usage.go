package report

import (
	"fmt"
	"strings"
)

// maxListedProblems is the number of problems printed in full. A node file
// that lacks a GPU model makes a problem of every task that requests only
// that model, which can be thousands, and the first few show the kind.
const maxListedProblems = 50

func writeAllocation(b *strings.Builder, d Data) {
	section(b, "GPUs allocated over time")

	peaks := peaksByModel(d)
	if len(peaks) == 0 {
		b.WriteString(none)
		return
	}

	if hasAllocationChart(d) {
		samples := sortedSamples(d.Samples)
		first, last := samples[0].At, samples[len(samples)-1].At
		fmt.Fprintf(b, "![GPUs allocated by model over time](%s)\n\n", AllocationChartFile)
		fmt.Fprintf(b, "%s samples from %s to %s after the start.\n\n",
			formatInt(int64(len(samples))), formatDuration(first), formatDuration(last))
	} else {
		b.WriteString("Samples: none, so the peaks are not known.\n\n")
	}

	t := newTable("Model", "> Peak GPUs", "> Peak at", "> Capacity GPUs", "> Peak share of capacity")
	for _, peak := range peaks {
		t.add(peakRow(peak, len(d.Samples) > 0)...)
	}
	t.write(b)
}

// peakRow returns the table cells of one model. Without samples only the
// capacity is known.
func peakRow(peak modelPeak, sampled bool) []string {
	capacity, share := "unknown", notAvailable
	if peak.HasCapacity {
		capacity = formatGPUs(peak.CapacityMilli)
		share = formatPercent(float64(peak.PeakMilli), float64(peak.CapacityMilli))
	}

	if !sampled {
		return []string{peak.Model, notAvailable, notAvailable, capacity, notAvailable}
	}

	return []string{peak.Model, formatGPUs(peak.PeakMilli), formatDuration(peak.At), capacity, share}
}

func writeProjects(b *strings.Builder, d Data) {
	section(b, "GPU-hours by project")
	if !hasProjectChart(d) {
		b.WriteString(none)
		return
	}

	fmt.Fprintf(b, "![GPU-hours used and budget by project](%s)\n\n", ProjectChartFile)
	b.WriteString("GPU-hours are wall-clock GPU-hours. Used is what accounting charged. " +
		"Simulated and Trace / speedup cover the jobs that ran and ended. " +
		"Simulated is what their pods run, each trace run divided by the speedup and rounded to whole seconds. " +
		"Trace / speedup is their trace GPU-hours divided by the speedup, without that rounding. " +
		"Used also contains the GPU-hours charged to preempted runs, which neither figure counts.\n\n")

	var total ProjectUsage
	t := newTable("Project", "> Jobs", "> Used", "> Simulated", "> Trace / speedup", "> Budget",
		"> Used share of budget", "> Preempted runs", "> GPU-hours of preempted runs")
	for _, project := range sortedProjects(d.Projects) {
		t.add(projectRow(project)...)

		total.Jobs += project.Jobs
		total.GPUHours += project.GPUHours
		total.SimulatedGPUHours += project.SimulatedGPUHours
		total.TraceGPUHours += project.TraceGPUHours
		total.BudgetGPUHours += project.BudgetGPUHours
		total.PreemptedRuns += project.PreemptedRuns
		total.PreemptedGPUHours += project.PreemptedGPUHours
	}

	total.Project = "Total"
	t.add(projectRow(total)...)
	t.write(b)
}

func projectRow(p ProjectUsage) []string {
	return []string{
		p.Project,
		formatInt(int64(p.Jobs)),
		formatFixed(p.GPUHours, 2),
		formatFixed(p.SimulatedGPUHours, 2),
		formatFixed(p.TraceGPUHours, 2),
		formatFixed(p.BudgetGPUHours, 2),
		formatPercent(p.GPUHours, p.BudgetGPUHours),
		formatInt(int64(p.PreemptedRuns)),
		formatFixed(p.PreemptedGPUHours, 2),
	}
}

// fillMode is the Data.Mode of a fill-mode run, the only mode that measures the fill
// section's figures.
const fillMode = "fill"

// writeFill writes where the fill stopped and the fill-mode allocation. Another mode has no
// such figures, so the section states that instead of "none", which would read as fill mode
// finding nothing. The stop is not a task problem, so it is here and not under Problems.
func writeFill(b *strings.Builder, mode, stop string, shares []ModelShare) {
	section(b, "Fill mode: allocation where the fill stopped")
	if mode != fillMode {
		fmt.Fprintf(b, "Not measured: only a fill-mode run measures this, and this run's mode was %s.\n",
			orNotRecorded(oneLine(mode)))
		return
	}
	fmt.Fprintf(b, "Where the fill stopped: %s\n\n", orNotRecorded(oneLine(stop)))
	if len(shares) == 0 {
		b.WriteString(none)
		return
	}

	var total ModelShare
	t := newTable("Model", "> Allocated GPUs", "> Capacity GPUs", "> Allocated share")
	for _, share := range sortedShares(shares) {
		t.add(shareRow(share)...)

		total.AllocatedMilli += share.AllocatedMilli
		total.CapacityMilli += share.CapacityMilli
	}

	total.Model = "Total"
	t.add(shareRow(total)...)
	t.write(b)
}

func shareRow(s ModelShare) []string {
	return []string{
		s.Model,
		formatGPUs(s.AllocatedMilli),
		formatGPUs(s.CapacityMilli),
		formatPercent(float64(s.AllocatedMilli), float64(s.CapacityMilli)),
	}
}

// writeProblems lists the first maxListedProblems problems in a fenced code
// block, which prints task names and model names verbatim. notSubmitted is
// the number of tasks set aside for them, which differs from the number of
// problems: a task may have two, and one that also allows a GPU model that a
// node has is submitted.
func writeProblems(b *strings.Builder, problems []string, notSubmitted int) {
	section(b, "Problems")
	if len(problems) == 0 {
		b.WriteString(none)
		return
	}

	listed := problems[:min(len(problems), maxListedProblems)]
	fmt.Fprintf(b, "%s reported, and %s not submitted. A task that also allows a GPU model that a node has, "+
		"and fits such a node, is submitted.\n\n",
		countOf(len(problems), "problem was", "problems were"), countOf(notSubmitted, "task was", "tasks were"))

	longest := 0
	for _, problem := range listed {
		longest = max(longest, longestBacktickRun(problem))
	}
	fence := strings.Repeat("`", max(3, longest+1))

	b.WriteString(fence + "text\n")
	for _, problem := range listed {
		b.WriteString(oneLine(problem) + "\n")
	}
	b.WriteString(fence + "\n")

	if hidden := len(problems) - len(listed); hidden > 0 {
		fmt.Fprintf(b, "\nand %s more\n", formatInt(int64(hidden)))
	}
}

// countOf writes n followed by the singular or plural words, such as "1 task was".
func countOf(n int, singular, plural string) string {
	if n == 1 {
		return "1 " + singular
	}
	return formatInt(int64(n)) + " " + plural
}
