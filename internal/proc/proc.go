// Package proc reads figures of local processes from Linux /proc, and the PID files that the
// project's scripts write, so that the benchmarks, the replay and the test helpers parse
// these files in one place. It works only on Linux.
package proc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the number of clock ticks per second in which /proc/PID/stat
// counts CPU time (getconf CLK_TCK).
// NOTE: it is assumed to be 100, the value on the machines this project ran on, and is not
// read at run time.
const ClockTicks = 100

// ReadPIDFile returns the PID on the first line of a PID file, such as the ones that
// scripts/kube-up.sh writes or PostgreSQL's postmaster.pid. Later lines are ignored.
func ReadPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read PID file: %w", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	line = strings.TrimSpace(line)
	pid, err := strconv.Atoi(line)
	if err != nil {
		return 0, fmt.Errorf("invalid PID in %s: %w", path, err)
	}
	if pid <= 0 {
		return 0, fmt.Errorf("invalid PID %d in %s: want a positive integer", pid, path)
	}
	return pid, nil
}

// Indexes of the fields that Stat returns. Index 0 is field 3 in proc_pid_stat(5), so add 3
// to an index to find its field there.
const (
	FieldState  = 0  // R running, S sleeping, Z zombie, and so on
	FieldPPID   = 1  // parent PID
	FieldUtime  = 11 // user time, in clock ticks
	FieldStime  = 12 // system time, in clock ticks
	FieldCutime = 13 // user time of the reaped children, in clock ticks
	FieldCstime = 14 // system time of the reaped children, in clock ticks
)

// Stat returns the fields of /proc/PID/stat after the command name, so that FieldState is
// the first. The name is skipped up to its last ')' because it may contain spaces and
// parentheses. Stat returns at least FieldCstime+1 fields, or an error.
func Stat(pid int) ([]string, error) {
	path := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read stat of process %d: %w", pid, err)
	}
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return nil, fmt.Errorf("%s has no command name", path)
	}
	fields := strings.Fields(string(data[end+1:]))
	if len(fields) <= FieldCstime {
		return nil, fmt.Errorf("%s has %d fields after the command name, want more than %d",
			path, len(fields), FieldCstime)
	}
	return fields, nil
}

// Ticks sums the fields of Stat at the given indexes, which count clock ticks, as a duration.
func Ticks(fields []string, indexes ...int) (time.Duration, error) {
	var sum int64
	for _, i := range indexes {
		if i >= len(fields) {
			return 0, fmt.Errorf("stat has %d fields, want more than %d", len(fields), i)
		}
		n, err := strconv.ParseInt(fields[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat field %d: %w", i, err)
		}
		sum += n
	}
	return time.Duration(sum) * time.Second / ClockTicks, nil
}

// CPUTime returns the user plus system time of all threads of process pid. It leaves out
// the time of its children.
func CPUTime(pid int) (time.Duration, error) {
	fields, err := Stat(pid)
	if err != nil {
		return 0, err
	}
	return Ticks(fields, FieldUtime, FieldStime)
}

// Memory is a process's resident memory from /proc/PID/status, in bytes. A field that the
// file lacks is zero: a zombie or a kernel thread has none of them, and Linux before 4.5
// has no RssAnon or RssFile (proc_pid_status(5)).
type Memory struct {
	VmRSS   int64 // resident set size
	VmHWM   int64 // peak resident set size, the "high water mark"
	RssAnon int64 // resident anonymous memory, such as heap and stacks
	RssFile int64 // resident pages mapped from files, such as the program's code
}

// ReadMemory reads the resident memory of process pid.
func ReadMemory(pid int) (Memory, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	m, err := parseMemory(string(data))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	return m, nil
}

// parseMemory reads the fields of Memory from the text of a /proc/PID/status file.
func parseMemory(status string) (Memory, error) {
	var m Memory
	targets := map[string]*int64{
		"VmRSS": &m.VmRSS, "VmHWM": &m.VmHWM, "RssAnon": &m.RssAnon, "RssFile": &m.RssFile,
	}
	for _, line := range strings.Split(status, "\n") {
		name, value, _ := strings.Cut(line, ":")
		target, ok := targets[name]
		if !ok {
			continue
		}
		bytes, err := parseKB(value)
		if err != nil {
			return Memory{}, fmt.Errorf("%s: %w", name, err)
		}
		*target = bytes
	}
	return m, nil
}

// parseKB converts a size such as "   1234 kB" to bytes. In /proc, kB means 1024 bytes.
func parseKB(value string) (int64, error) {
	number, ok := strings.CutSuffix(strings.TrimSpace(value), " kB")
	if !ok {
		return 0, fmt.Errorf("invalid size %q: want a number of kB", value)
	}
	kib, err := strconv.ParseInt(strings.TrimSpace(number), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", value, err)
	}
	return kib * 1024, nil
}
