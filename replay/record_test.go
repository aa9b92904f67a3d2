package replay

import (
	"context"
	"testing"
	"time"
)

// TestRecorderSkipsFailedRead: a sample whose database read fails adds no point to the
// allocation chart and keeps the progress counts of the last read. Here the read is
// cancelled, as the replay's end cancels one in flight.
func TestRecorderSkipsFailedRead(t *testing.T) {
	s := newT4Store(t)
	a := admitJob(t, s, submitLowTask(t, s, "openb-pod-0001"))
	if err := s.StartRun(context.Background(), a.RunID, time.Now(), "t4-node-0"); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(s, 0, nil)
	started := time.Now()
	rec.sample(context.Background(), started)

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	rec.sample(cancelled, started)

	if len(rec.samples) != 1 {
		t.Fatalf("%d samples after one read that worked and one that failed, want 1", len(rec.samples))
	}
	if got := rec.samples[0].AllocatedMilli["T4"]; got != 1000 {
		t.Errorf("T4 allocation %d thousandths in the sample, want 1000", got)
	}
	if rec.last.running != 1 {
		t.Errorf("progress shows %d running jobs after a failed read, want the 1 read before", rec.last.running)
	}
	if rec.last.allocatedMilli != 1000 {
		t.Errorf("progress shows %d GPU thousandths allocated after a failed read, want 1000", rec.last.allocatedMilli)
	}
}
