package replay

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/logtest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/proc"
	"github.com/schedulerd/schedulerd/store"
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

// TestRecorderLogsBothFailedReads: a sample whose two reads fail, here on a closed pool,
// logs one warning on one line whose error counts and names both reads.
func TestRecorderLogsBothFailedReads(t *testing.T) {
	pool := pgtest.NewPool(t)
	var logs logtest.Buffer
	rec := newRecorder(store.New(pool), 0, slog.New(slog.NewJSONHandler(&logs, nil)))
	pool.Close()

	rec.sample(context.Background(), time.Now())

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs.String())
	}
	var line struct {
		Msg string `json:"msg"`
		Err string `json:"err"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &line); err != nil {
		t.Fatalf("log line %q: %v", lines[0], err)
	}
	if want := "replay sample failed, so its figures are left out"; line.Msg != want {
		t.Errorf("message %q, want %q", line.Msg, want)
	}
	want := "2 errors: read GPU allocation: closed pool; count jobs by status: closed pool"
	if line.Err != want {
		t.Errorf("error %q, want %q", line.Err, want)
	}
	if len(rec.samples) != 0 {
		t.Errorf("%d samples after failed reads, want 0", len(rec.samples))
	}
}

// TestRecorderCPUSinceStart: the daemon's CPU time in the report is what it used after the
// recorder was made, not since the process started, because a daemon may have served an
// earlier run of the replay. The test measures its own process as the daemon.
func TestRecorderCPUSinceStart(t *testing.T) {
	s := newT4Store(t)
	pid := os.Getpid()
	spinUntilCPU(t, pid, 300*time.Millisecond)
	before := cpuTime(t, pid)

	rec := newRecorder(s, pid, nil)
	spinUntilCPU(t, pid, cpuTime(t, pid)+100*time.Millisecond)
	rec.sample(context.Background(), time.Now())
	after := cpuTime(t, pid)

	if got := rec.usage.CPUSeconds; got < 0.1 {
		t.Errorf("CPU time %.2f s after the test used 0.10 s, want at least 0.10", got)
	}
	// The report's figure is a difference of float seconds, so it may exceed the exact one
	// by a rounding error, far below the 10 ms of a clock tick.
	if got, maxCPU := rec.usage.CPUSeconds, (after - before).Seconds(); got > maxCPU+1e-6 {
		t.Errorf("CPU time %.2f s, want at most the %.2f s used after the recorder was made", got, maxCPU)
	}
}

// spinUntilCPU keeps one core busy until process pid has used at least target CPU time.
func spinUntilCPU(t *testing.T, pid int, target time.Duration) {
	t.Helper()
	for x := 0; cpuTime(t, pid) < target; x++ {
		for i := range 1_000_000 {
			x ^= i
		}
	}
}

func cpuTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	d, err := proc.CPUTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
