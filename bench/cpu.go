package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The CPU meter. On a small machine the daemon, PostgreSQL and the Kubernetes control plane
// share the same cores, so a side that spends more CPU anywhere leaves less for the API
// server. The dispatch measurement reads the CPU time of each process around each side's
// timed window, to show where the time per pod goes instead of guessing.

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat (getconf CLK_TCK).
// NOTE: it is 100 on the machines this bench ran on, and assumed rather than read at run time.
const clockTicks = 100

// cpuSource is one process (or PostgreSQL's family of processes) that the meter reads.
type cpuSource struct {
	name string
	read func() (time.Duration, error)
}

// CPUMeter reads the CPU time used so far by this process, the PostgreSQL server and the
// local Kubernetes components.
type CPUMeter struct {
	sources []cpuSource
}

// CPUSample is the CPU time of each source at one moment.
type CPUSample map[string]time.Duration

// NewCPUMeter finds the processes to read: this one, PostgreSQL's postmaster from its data
// directory, and the components whose PID files scripts/kube-up.sh writes next to the
// kubeconfig. A process it cannot find is left out, and the reason is returned in skipped,
// so that a run against servers on another machine still measures the rest.
func NewCPUMeter(ctx context.Context, env *Env, kubeconfig string) (m *CPUMeter, skipped []string) {
	m = &CPUMeter{sources: []cpuSource{{name: "this process (dispatcher or raw loop)", read: selfCPU}}}

	if pid, err := postmasterPID(ctx, env); err != nil {
		skipped = append(skipped, "PostgreSQL: "+err.Error())
	} else {
		m.sources = append(m.sources, cpuSource{name: "PostgreSQL", read: func() (time.Duration, error) {
			return familyCPU(pid)
		}})
	}

	for _, name := range []string{"kube-apiserver", "etcd", "kube-scheduler", "kwok"} {
		pid, err := readPIDFile(filepath.Join(filepath.Dir(kubeconfig), name+".pid"))
		if err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		m.sources = append(m.sources, cpuSource{name: name, read: func() (time.Duration, error) {
			return processCPU(pid)
		}})
	}
	return m, skipped
}

// Sample reads every source. A source that fails to read (its process ended) is left out of
// the sample, and Start then leaves it out of the window's use.
func (m *CPUMeter) Sample() CPUSample {
	s := make(CPUSample, len(m.sources))
	for _, src := range m.sources {
		if d, err := src.read(); err == nil {
			s[src.name] = d
		}
	}
	return s
}

// Names returns the sources in the order the meter reads them.
func (m *CPUMeter) Names() []string {
	names := make([]string, len(m.sources))
	for i, src := range m.sources {
		names[i] = src.name
	}
	return names
}

// CPUUse is the CPU time each source used over a set of timed windows, and the wall time of
// those windows.
type CPUUse struct {
	Sources CPUSample
	Wall    time.Duration
}

// Start samples every source at the start of a timed window, and returns the function that
// adds the window to use at its end.
func (m *CPUMeter) Start(use *CPUUse) (stop func()) {
	start, started := m.Sample(), time.Now()
	return func() {
		now := m.Sample()
		if use.Sources == nil {
			use.Sources = CPUSample{}
		}
		for name, before := range start {
			if after, ok := now[name]; ok {
				use.Sources[name] += after - before
			}
		}
		use.Wall += time.Since(started)
	}
}

func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// processCPU returns the user and system time of one process.
func processCPU(pid int) (time.Duration, error) {
	fields, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return ticks(fields, 11, 12)
}

// familyCPU returns the CPU time of PostgreSQL's postmaster and its children: the live
// children's own time, plus the time of the children that have exited, which the kernel
// adds to the postmaster once it reaps them. Backends come and go with connections, so
// without that second part a closed pool would take its CPU time with it.
func familyCPU(postmaster int) (time.Duration, error) {
	fields, err := statFields(postmaster)
	if err != nil {
		return 0, err
	}
	total, err := ticks(fields, 11, 12, 13, 14)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("list /proc: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		child, err := statFields(pid)
		if err != nil || len(child) < 2 || child[1] != strconv.Itoa(postmaster) {
			continue // gone since the listing, or not a child
		}
		if d, err := ticks(child, 11, 12); err == nil {
			total += d
		}
	}
	return total, nil
}

// statFields returns the fields of /proc/PID/stat after the command name, so that field 0
// is the state (field 3 in proc(5)), 1 the parent PID, 11 utime and 12 stime. The name is
// skipped up to its last ')' because it may contain spaces and parentheses.
func statFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	end := strings.LastIndexByte(string(data), ')')
	if end < 0 {
		return nil, fmt.Errorf("/proc/%d/stat has no command name", pid)
	}
	return strings.Fields(string(data[end+1:])), nil
}

// ticks sums the fields at the given indexes, in clock ticks, as a duration.
func ticks(fields []string, indexes ...int) (time.Duration, error) {
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
	return time.Duration(sum) * time.Second / clockTicks, nil
}

func readPIDFile(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0, fmt.Errorf("%s: not a PID: %w", path, err)
	}
	return pid, nil
}

// postmasterPID reads the server's data directory from the server and the postmaster's PID
// from the first line of its postmaster.pid. That works only when the server runs on this
// machine and its directory is readable, as with scripts/pg-up.sh.
func postmasterPID(ctx context.Context, env *Env) (int, error) {
	var dataDir string
	if err := env.QueryRow(ctx, "SHOW data_directory", &dataDir); err != nil {
		return 0, err
	}
	return readPIDFile(filepath.Join(dataDir, "postmaster.pid"))
}

// cpuTable formats the CPU time per pod that each process used during the timed windows of
// the two sides, with the difference. Its last line divides all that CPU time by the wall
// time of the windows: a value near the machine's core count means the side was bound by CPU.
func cpuTable(names []string, ours, raw CPUUse, pods, cores int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %14s %14s %12s\n", "process", "dispatcher ms", "raw loop ms", "difference")
	perPod := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(pods) }
	var sumOurs, sumRaw time.Duration
	for _, name := range names {
		o, r := ours.Sources[name], raw.Sources[name]
		sumOurs, sumRaw = sumOurs+o, sumRaw+r
		fmt.Fprintf(&b, "%-40s %14.2f %14.2f %+12.2f\n", name, perPod(o), perPod(r), perPod(o)-perPod(r))
	}
	fmt.Fprintf(&b, "%-40s %14.2f %14.2f %+12.2f\n", "all of them", perPod(sumOurs), perPod(sumRaw),
		perPod(sumOurs)-perPod(sumRaw))

	busy := func(cpu, wall time.Duration) float64 {
		if wall <= 0 {
			return 0
		}
		return cpu.Seconds() / wall.Seconds()
	}
	fmt.Fprintf(&b, "%-40s %14.2f %14.2f\n", fmt.Sprintf("cores busy, of %d", cores),
		busy(sumOurs, ours.Wall), busy(sumRaw, raw.Wall))
	return b.String()
}
