package pgtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestPgUpStopsServerThatMissedTimeout runs pg-up.sh with a pg_ctl whose start leaves the
// server running and fails, as pg_ctl -w does when its timeout passes first. pg-up.sh must
// fail without leaving that server running.
func TestPgUpStopsServerThatMissedTimeout(t *testing.T) {
	const realBindir = "/usr/lib/postgresql/15/bin"
	if _, err := os.Stat(filepath.Join(realBindir, "initdb")); err != nil {
		t.Skipf("no PostgreSQL 15 in %s: %v", realBindir, err)
	}
	// The postgres user runs pg_ctl and must reach both directories.
	base := reachableTempDir(t)
	bindir := filepath.Join(base, "bin")
	dir := filepath.Join(base, "pg")
	if err := os.Mkdir(bindir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(realBindir, "initdb"), filepath.Join(bindir, "initdb")); err != nil {
		t.Fatal(err)
	}
	wrapper := "#!/bin/bash\n" + realBindir + "/pg_ctl \"$@\"\n" +
		"[ \"$1\" = start ] && { echo 'pg_ctl: server did not start in time' >&2; exit 1; }\n" +
		"exit 0\n"
	if err := os.WriteFile(filepath.Join(bindir, "pg_ctl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killProcessesOf(t, dir) })

	t.Setenv("SCHEDULERD_PG_BINDIR", bindir)
	if err := RunScript("pg-up.sh", dir); err == nil {
		t.Fatal("pg-up.sh succeeded, want an error because pg_ctl start failed")
	}
	if pids := processesOf(dir); len(pids) > 0 {
		t.Errorf("pg-up.sh failed and left processes %v of %s running", pids, dir)
	}
}

// TestPgUpWatchPIDStopsServer checks that the server pg-up.sh --watch-pid started stops,
// and its directory goes, once the watched process exits without running pg-down.sh.
func TestPgUpWatchPIDStopsServer(t *testing.T) {
	if _, err := os.Stat("/usr/lib/postgresql/15/bin/initdb"); err != nil {
		t.Skipf("no PostgreSQL 15: %v", err)
	}
	dir := filepath.Join(reachableTempDir(t), "pg")
	t.Cleanup(func() { killProcessesOf(t, dir) })
	watched := startSleeper(t, "watched")

	err := RunScript("pg-up.sh", "--watch-pid", strconv.Itoa(watched.Process.Pid), dir)
	if err != nil {
		t.Fatal(err)
	}
	server, err := proc.ReadPIDFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	watchdog, err := proc.ReadPIDFile(filepath.Join(dir, "watchdog.pid"))
	if err != nil {
		t.Fatal(err)
	}
	// A Ctrl-C reaches every process of the terminal's foreground group, this test's
	// included, so the watchdog must be in a session of its own.
	if got, own := sessionOf(t, watchdog), sessionOf(t, os.Getpid()); got == own {
		t.Errorf("watchdog %d runs in this test's session %s", watchdog, own)
	}

	_ = watched.Process.Kill()
	_ = watched.Wait()
	deadline := time.Now().Add(time.Minute)
	for processState(server) != "" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if state := processState(server); state != "" {
		t.Fatalf("PostgreSQL (pid %d) state %q a minute after the watched process exited", server, state)
	}
	for dirExists(dir) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if dirExists(dir) {
		t.Errorf("%s still exists after the watchdog stopped the server", dir)
	}
}

func sessionOf(t *testing.T, pid int) string {
	t.Helper()
	fields, err := proc.Stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return fields[3] // session id, field 6 of proc_pid_stat(5)
}

func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil
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

// reachableTempDir returns a temporary directory that other users may enter, as
// pg-up.sh needs for the postgres user.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// processesOf returns the PIDs of live processes whose command line contains dir.
func processesOf(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), dir+"/") {
			continue
		}
		if state := processState(pid); state != "" && state != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcessesOf kills what a failed assertion left running, so that the test leaks
// nothing on the old code either.
func killProcessesOf(t *testing.T, dir string) {
	for _, pid := range processesOf(dir) {
		if p, err := os.FindProcess(pid); err == nil {
			t.Logf("killing pid %d of %s", pid, dir)
			_ = p.Kill()
		}
	}
}
