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

	"github.com/schedulerd/schedulerd/internal/proc"
)

// The CPU meter. On a small machine the daemon, PostgreSQL and the Kubernetes control plane
// share the same cores, so a side that spends more CPU anywhere leaves less for the API
// server. The dispatch measurement reads the CPU time of each process around each side's
// timed window, to show where the time per pod goes instead of guessing.

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
		pid, err := proc.ReadPIDFile(filepath.Join(filepath.Dir(kubeconfig), name+".pid"))
		if err != nil {
			skipped = append(skipped, name+": "+err.Error())
			continue
		}
		m.sources = append(m.sources, cpuSource{name: name, read: func() (time.Duration, error) {
			return proc.CPUTime(pid)
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

// familyCPU returns the CPU time of PostgreSQL's postmaster and its children: the live
// children's own time, plus the time of the children that have exited, which the kernel
// adds to the postmaster once it reaps them. Backends come and go with connections, so
// without that second part a closed pool would take its CPU time with it.
func familyCPU(postmaster int) (time.Duration, error) {
	fields, err := proc.Stat(postmaster)
	if err != nil {
		return 0, err
	}
	total, err := proc.Ticks(fields, proc.FieldUtime, proc.FieldStime, proc.FieldCutime, proc.FieldCstime)
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
		child, err := proc.Stat(pid)
		if err != nil || child[proc.FieldPPID] != strconv.Itoa(postmaster) {
			continue // gone since the listing, or not a child
		}
		if d, err := proc.Ticks(child, proc.FieldUtime, proc.FieldStime); err == nil {
			total += d
		}
	}
	return total, nil
}

// postmasterPID reads the server's data directory from the server and the postmaster's PID
// from the first line of its postmaster.pid. That works only when the server runs on this
// machine and its directory is readable, as with scripts/pg-up.sh.
func postmasterPID(ctx context.Context, env *Env) (int, error) {
	var dataDir string
	if err := env.QueryRow(ctx, "SHOW data_directory", &dataDir); err != nil {
		return 0, err
	}
	return proc.ReadPIDFile(filepath.Join(dataDir, "postmaster.pid"))
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
