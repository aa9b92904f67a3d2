package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/schedulerd/schedulerd/internal/proc"
)

// downScripts are the stop scripts that stop one server by the PID in DIR/pid, with the
// program name each one expects.
var downScripts = []struct{ script, program string }{
	{"pg-down.sh", "postgres"},
	{"s3-down.sh", "versitygw"},
	{"temporal-down.sh", "temporal"},
	{"prom-down.sh", "prometheus"},
}

// TestDownScriptsSkipReusedPID checks that a stop script leaves alone a process that runs
// the same program for another directory, as a reused PID in a stale pid file may.
func TestDownScriptsSkipReusedPID(t *testing.T) {
	for _, tc := range downScripts {
		t.Run(tc.script, func(t *testing.T) {
			dir := t.TempDir()
			other := startSleeper(t, "/srv/other/"+tc.program+": checkpointer")
			writePID(t, dir, other.Process.Pid)

			if err := RunScript(tc.script, dir); err != nil {
				t.Fatal(err)
			}
			if state := processState(other.Process.Pid); state == "Z" || state == "" {
				t.Errorf("%s signalled pid %d, which runs %s of another directory",
					tc.script, other.Process.Pid, tc.program)
			}
		})
	}
}

// TestDownScriptsStopOwnProcess checks that a stop script stops the process whose command
// line names DIR, waits for it and removes the pid file.
func TestDownScriptsStopOwnProcess(t *testing.T) {
	for _, tc := range downScripts {
		t.Run(tc.script, func(t *testing.T) {
			dir := t.TempDir()
			own := startSleeper(t, filepath.Join(dir, tc.program))
			writePID(t, dir, own.Process.Pid)

			if err := RunScript(tc.script, dir); err != nil {
				t.Fatal(err)
			}
			// The sleeper is this test's child, so it stays a zombie until Cleanup reaps it.
			if state := processState(own.Process.Pid); state != "Z" {
				t.Errorf("pid %d state = %q after %s, want Z (exited)", own.Process.Pid, state, tc.script)
			}
			if _, err := os.Stat(filepath.Join(dir, "pid")); !os.IsNotExist(err) {
				t.Errorf("%s kept %s/pid: %v", tc.script, dir, err)
			}
		})
	}
}

// startSleeper starts sleep with argv[0] set to name, so that its command line reads like
// a server's, and kills and reaps it when the test ends.
func startSleeper(t *testing.T, name string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	cmd.Args[0] = name
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleep: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func writePID(t *testing.T, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// processState returns the state letter of pid, or "" when no such process exists.
func processState(pid int) string {
	fields, err := proc.Stat(pid)
	if err != nil {
		return ""
	}
	return fields[proc.FieldState]
}
