package bench

import "testing"

func TestPairRatiosNote(t *testing.T) {
	got := pairRatios([]float64{200, 180, 210}, []float64{250, 200, 200})
	want := "ratio of each pair of runs, in order: 0.80x, 0.90x, 1.05x (median 0.90x)"
	if got != want {
		t.Errorf("pairRatios = %q, want %q", got, want)
	}
}
