package bench

import (
	"math"
	"slices"
	"time"
)

// Spread summarises the values of one measurement's repeated runs.
type Spread struct {
	Median, Min, Max float64
	N                int
}

// Summarize returns the median, minimum and maximum of values. The median of an even
// count is the mean of the two middle values.
func Summarize(values []float64) Spread {
	if len(values) == 0 {
		return Spread{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	median := sorted[n/2]
	if n%2 == 0 {
		median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return Spread{Median: median, Min: sorted[0], Max: sorted[n-1], N: n}
}

// Percentile returns the p-th percentile (0 to 100) of durations by the nearest-rank
// method, or 0 for no durations.
func Percentile(durations []time.Duration, p float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	sorted := slices.Clone(durations)
	slices.Sort(sorted)
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Rate returns count per second over elapsed.
func Rate(count int, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return math.NaN()
	}
	return float64(count) / elapsed.Seconds()
}
