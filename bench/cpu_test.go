package bench

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/proc"
)

// busyLoop is a shell command that keeps one core busy until it is killed.
const busyLoop = "while :; do :; done"

func TestFamilyCPUCountsLiveChild(t *testing.T) {
	cmd := exec.Command("sh", "-c", busyLoop)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	child := cmd.Process.Pid
	waitForCPU(t, child, 200*time.Millisecond)

	// CPU time only grows, so the family read last is at least the sum of the two
	// processes read before it.
	self, err := proc.CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy, err := proc.CPUTime(child)
	if err != nil {
		t.Fatal(err)
	}
	family, err := familyCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if family < self+busy {
		t.Errorf("familyCPU = %v, want at least self %v + child %v", family, self, busy)
	}
}

func TestFamilyCPUKeepsReapedChild(t *testing.T) {
	before, err := familyCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", busyLoop)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForCPU(t, cmd.Process.Pid, 200*time.Millisecond)
	_ = cmd.Process.Kill()
	_ = cmd.Wait() // reaps the child, so its time moves to this process's cutime and cstime
	used := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()

	after, err := familyCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// The child's time in ticks may round down by one tick each for user and system time.
	if got, want := after-before, used-2*time.Second/proc.ClockTicks; got < want {
		t.Errorf("familyCPU grew by %v after the child used %v and was reaped, want at least %v",
			got, used, want)
	}
}

// waitForCPU waits until process pid has used at least d of CPU time.
func waitForCPU(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		used, err := proc.CPUTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		if used >= d {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d used %v of CPU time in 30s, want %v", pid, used, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCPUTablePerPod(t *testing.T) {
	names := []string{"daemon", "PostgreSQL"}
	ours := CPUUse{Sources: CPUSample{"daemon": 3 * time.Second, "PostgreSQL": time.Second},
		Wall: 2 * time.Second}
	raw := CPUUse{Sources: CPUSample{"daemon": time.Second}, Wall: 4 * time.Second}

	lines := strings.Split(strings.TrimSpace(cpuTable(names, ours, raw, 1000, 2)), "\n")
	if len(lines) != 5 {
		t.Fatalf("cpuTable has %d lines, want header, 2 processes, total and cores busy:\n%s",
			len(lines), strings.Join(lines, "\n"))
	}
	want := [][]string{
		{"daemon", "3.00", "1.00", "+2.00"},
		{"PostgreSQL", "1.00", "0.00", "+1.00"},
		{"all", "of", "them", "4.00", "1.00", "+3.00"},
		{"cores", "busy,", "of", "2", "2.00", "0.25"},
	}
	for i, w := range want {
		if got := strings.Fields(lines[i+1]); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want fields %q", i+1, lines[i+1], w)
		}
	}
}

func TestCPUMeterStartAddsWindows(t *testing.T) {
	meter := &CPUMeter{sources: []cpuSource{{name: "self", read: selfCPU}}}
	var use CPUUse
	var inner, outer time.Duration

	for range 2 {
		before := time.Now()
		stop := meter.Start(&use)
		started := time.Now()
		spinCPU(t, 50*time.Millisecond)
		inner += time.Since(started)
		stop()
		outer += time.Since(before)
	}

	if use.Wall < inner || use.Wall > outer {
		t.Errorf("Wall = %v, want between %v and %v", use.Wall, inner, outer)
	}
	if got := use.Sources["self"]; got < 100*time.Millisecond {
		t.Errorf("self CPU = %v after two windows of 50ms spinning, want at least 100ms", got)
	}
}

// spinCPU keeps this goroutine busy until this process has used d more of CPU time.
func spinCPU(t *testing.T, d time.Duration) {
	t.Helper()
	start, err := selfCPU()
	if err != nil {
		t.Fatal(err)
	}
	for {
		now, err := selfCPU()
		if err != nil {
			t.Fatal(err)
		}
		if now-start >= d {
			return
		}
	}
}
