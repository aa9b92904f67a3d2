package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadPIDFileFirstLine(t *testing.T) {
	for _, content := range []string{"123\nmore\n", "123", "  123 \n", "123\n"} {
		path := writeFile(t, content)
		pid, err := ReadPIDFile(path)
		if err != nil {
			t.Errorf("ReadPIDFile of %q: %v", content, err)
			continue
		}
		if pid != 123 {
			t.Errorf("ReadPIDFile of %q = %d, want 123", content, pid)
		}
	}
}

func TestReadPIDFileInvalid(t *testing.T) {
	for _, content := range []string{"abc", "", "\n123\n", "-5", "0", "12 34"} {
		path := writeFile(t, content)
		_, err := ReadPIDFile(path)
		if err == nil {
			t.Errorf("ReadPIDFile of %q returned no error", content)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("ReadPIDFile of %q: error %q does not name the path %s", content, err, path)
		}
	}
}

func TestReadPIDFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.pid")
	_, err := ReadPIDFile(path)
	if err == nil {
		t.Fatal("ReadPIDFile of a missing file returned no error")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path %s", err, path)
	}
}

func TestStatSelf(t *testing.T) {
	fields, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fields[FieldPPID], strconv.Itoa(os.Getppid()); got != want {
		t.Errorf("parent PID field = %q, want %q", got, want)
	}
	// The state is the main thread's, which may sleep while a test goroutine runs.
	if state := fields[FieldState]; state != "R" && state != "S" {
		t.Errorf("state field = %q, want R or S", state)
	}
}

func TestStatNameWithParentheses(t *testing.T) {
	// The kernel takes the command name from the file name, so a copy of sleep under an
	// awkward name gives a process whose name contains ") (" and spaces.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("sleep not found:", err)
	}
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	odd := filepath.Join(t.TempDir(), "a) 1 (b")
	if err := os.WriteFile(odd, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	fields, err := Stat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fields[FieldPPID], strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("parent PID field = %q, want %q (fields %q)", got, want, fields[:3])
	}
	if !strings.Contains("RSDI", fields[FieldState]) {
		t.Errorf("state field = %q, want one of R, S, D, I", fields[FieldState])
	}
}

func TestStatMissingProcess(t *testing.T) {
	if _, err := Stat(unusedPID(t)); err == nil {
		t.Error("Stat of a PID that no process has returned no error")
	}
}

func TestTicksSum(t *testing.T) {
	fields := []string{"S", "150", "250"}
	got, err := Ticks(fields, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if want := 400 * time.Second / ClockTicks; got != want {
		t.Errorf("Ticks = %v, want %v", got, want)
	}
}

func TestTicksInvalid(t *testing.T) {
	fields := []string{"S", "150"}
	if _, err := Ticks(fields, 0); err == nil {
		t.Error("Ticks of a field that is not a number returned no error")
	}
	if _, err := Ticks(fields, 2); err == nil {
		t.Error("Ticks of an index past the last field returned no error")
	}
}

func TestCPUTimeGrows(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	burnCPU(t, 200*time.Millisecond)
	after, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// getrusage and /proc/PID/stat count the same time, but stat rounds down to ticks.
	if grown := after - before; grown < 100*time.Millisecond {
		t.Errorf("CPUTime grew by %v after this process used 200ms of CPU, want at least 100ms", grown)
	}
}

func TestCPUTimeMissingProcess(t *testing.T) {
	if _, err := CPUTime(unusedPID(t)); err == nil {
		t.Error("CPUTime of a PID that no process has returned no error")
	}
}

func TestReadMemorySelf(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.VmRSS <= 0 {
		t.Errorf("VmRSS = %d, want more than 0", m.VmRSS)
	}
	if m.VmHWM < m.VmRSS {
		t.Errorf("VmHWM = %d, want at least VmRSS %d", m.VmHWM, m.VmRSS)
	}
	if m.RssAnon <= 0 {
		t.Errorf("RssAnon = %d, want more than 0", m.RssAnon)
	}
	if m.RssFile <= 0 {
		t.Errorf("RssFile = %d, want more than 0 for the test binary's code", m.RssFile)
	}
}

func TestReadMemoryCountsBytes(t *testing.T) {
	before, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Writing one byte in each page makes all 64 MiB resident.
	block := make([]byte, 64<<20)
	for i := 0; i < len(block); i += 4096 {
		block[i] = 1
	}
	after, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(block)
	if grown := after.VmRSS - before.VmRSS; grown < 32<<20 {
		t.Errorf("VmRSS grew by %d bytes after touching 64 MiB, want at least 32 MiB", grown)
	}
}

func TestReadMemoryMissingProcess(t *testing.T) {
	if _, err := ReadMemory(unusedPID(t)); err == nil {
		t.Error("ReadMemory of a PID that no process has returned no error")
	}
}

func TestParseMemory(t *testing.T) {
	status := "Name:\tschedulerd\nVmPeak:\t  9000 kB\nVmHWM:\t    3000 kB\nVmRSS:\t    2048 kB\n" +
		"RssAnon:\t    1024 kB\nRssFile:\t     768 kB\nRssShmem:\t       0 kB\nThreads:\t8\n"
	m, err := parseMemory(status)
	if err != nil {
		t.Fatal(err)
	}
	want := Memory{VmRSS: 2048 << 10, VmHWM: 3000 << 10, RssAnon: 1024 << 10, RssFile: 768 << 10}
	if m != want {
		t.Errorf("parseMemory = %+v, want %+v", m, want)
	}
}

func TestParseMemoryMissingFields(t *testing.T) {
	// A zombie's status has no memory lines.
	m, err := parseMemory("Name:\tsh\nState:\tZ (zombie)\n")
	if err != nil {
		t.Fatal(err)
	}
	if m != (Memory{}) {
		t.Errorf("parseMemory = %+v, want zeros", m)
	}
}

func TestParseMemoryInvalid(t *testing.T) {
	for _, status := range []string{"VmRSS:\t2048 MB\n", "VmRSS:\tmany kB\n", "VmHWM:\t\n"} {
		if _, err := parseMemory(status); err == nil {
			t.Errorf("parseMemory of %q returned no error", status)
		}
	}
}

// writeFile writes content to a new file in a temporary directory and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.pid")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// unusedPID returns kernel.pid_max, which no process has because PIDs stay below it.
func unusedPID(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pidMax
}

// burnCPU keeps this goroutine busy until this process has used d more of CPU time, as
// getrusage reports it.
func burnCPU(t *testing.T, d time.Duration) {
	t.Helper()
	start := selfCPU(t)
	for selfCPU(t)-start < d {
		// Each call to selfCPU is the work.
	}
}

func selfCPU(t *testing.T) time.Duration {
	t.Helper()
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		t.Fatal(err)
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}
