package report

import (
	"cmp"
	"maps"
	"slices"
	"time"
)

// stateOrder is the job life cycle of the store package, from submission to
// the terminal states.
var stateOrder = []string{
	"submitted", "queued", "running", "paused",
	"completed", "failed", "cancelled", "eval_failed",
}

// tierOrder lists the priority tiers from highest to lowest priority.
var tierOrder = []string{"critical", "high", "normal", "low"}

// compareRanked orders a and b by their position in ranked. Names outside
// ranked come after it in alphabetical order.
func compareRanked(ranked []string, a, b string) int {
	rankA, rankB := rankOf(ranked, a), rankOf(ranked, b)
	if rankA != rankB {
		return cmp.Compare(rankA, rankB)
	}

	return cmp.Compare(a, b)
}

// rankOf returns the index of name in ranked, or len(ranked) when ranked does
// not contain it.
func rankOf(ranked []string, name string) int {
	if i := slices.Index(ranked, name); i >= 0 {
		return i
	}

	return len(ranked)
}

func sortedStates(jobs []StateCount) []StateCount {
	sorted := slices.Clone(jobs)
	slices.SortStableFunc(sorted, func(a, b StateCount) int {
		return compareRanked(stateOrder, a.State, b.State)
	})

	return sorted
}

func sortedWaits(waits []TierWait) []TierWait {
	sorted := slices.Clone(waits)
	slices.SortStableFunc(sorted, func(a, b TierWait) int {
		return compareRanked(tierOrder, a.Tier, b.Tier)
	})

	return sorted
}

func sortedProjects(projects []ProjectUsage) []ProjectUsage {
	sorted := slices.Clone(projects)
	slices.SortStableFunc(sorted, func(a, b ProjectUsage) int {
		return cmp.Compare(a.Project, b.Project)
	})

	return sorted
}

func sortedShares(shares []ModelShare) []ModelShare {
	sorted := slices.Clone(shares)
	slices.SortStableFunc(sorted, func(a, b ModelShare) int {
		return cmp.Compare(a.Model, b.Model)
	})

	return sorted
}

// sortedSamples returns the samples in time order, because a line chart
// joins its points in slice order.
func sortedSamples(samples []Sample) []Sample {
	sorted := slices.Clone(samples)
	slices.SortStableFunc(sorted, func(a, b Sample) int {
		return cmp.Compare(a.At, b.At)
	})

	return sorted
}

// modelNames returns every GPU model that has a capacity or appears in a
// sample, in alphabetical order.
func modelNames(d Data) []string {
	names := map[string]bool{}
	for model := range d.Capacity {
		names[model] = true
	}

	for _, sample := range d.Samples {
		for model := range sample.AllocatedMilli {
			names[model] = true
		}
	}

	return slices.Sorted(maps.Keys(names))
}

// modelPeak is the highest allocation of one GPU model over the samples.
type modelPeak struct {
	Model         string
	PeakMilli     int64
	At            time.Duration // time of the first sample that reached PeakMilli
	CapacityMilli int64
	HasCapacity   bool
}

// peaksByModel returns the peak allocation of every model of modelNames.
// A model that no sample mentions has a peak of 0 at the first sample.
func peaksByModel(d Data) []modelPeak {
	samples := sortedSamples(d.Samples)
	peaks := make([]modelPeak, 0, len(d.Capacity))

	for _, model := range modelNames(d) {
		peak := modelPeak{Model: model}
		peak.CapacityMilli, peak.HasCapacity = d.Capacity[model]

		for i, sample := range samples {
			allocated := sample.AllocatedMilli[model]
			if i == 0 || allocated > peak.PeakMilli {
				peak.PeakMilli = allocated
				peak.At = sample.At
			}
		}

		peaks = append(peaks, peak)
	}

	return peaks
}

// hasAllocationChart reports whether there is anything to draw in the chart
// of GPUs allocated by model.
func hasAllocationChart(d Data) bool {
	return len(d.Samples) > 0 && len(modelNames(d)) > 0
}

// hasProjectChart reports whether there is anything to draw in the chart of
// GPU-hours by project.
func hasProjectChart(d Data) bool {
	return len(d.Projects) > 0
}
