package bench

import "testing"

func TestPairRatiosNote(t *testing.T) {
	got := pairRatios([]float64{210, 200, 180}, []float64{200, 250, 200})
	want := "ratio of each pair of runs, in order: 1.05x, 0.80x, 0.90x (median 0.90x)"
	if got != want {
		t.Errorf("pairRatios = %q, want %q", got, want)
	}
}
