package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Options sizes a run. Zero values are not defaults: the command fills them in.
type Options struct {
	Only []string // measurement names to run; empty runs all

	DequeueJobs  int           // queued jobs drained by each dequeue and River run
	Workers      []int         // dequeue loops, pgbench clients and River clients
	PGBenchScale int           // pgbench -i -s
	PGBenchTime  time.Duration // pgbench -T

	GrowthSizes  []int // rows in jobs, queued included
	GrowthQueued int   // queued jobs among them
	RunsPerJob   int   // runs of each finished job for the accounting measurement

	Nodes           int // simulated GPU nodes
	DispatchPods    int
	LatencyIdleJobs int
	LatencyLoaded   time.Duration // how long jobs arrive at half the peak rate
	MemoryPods      int
	Kubeconfig      string

	ProfileDir string // CPU and allocation profiles of the in-process measurements; "" for none
}

// Measurement names, for Options.Only.
const (
	NameDequeue    = "dequeue"
	NameGrowth     = "growth"
	NameDispatch   = "dispatch"
	NameLatency    = "latency"
	NameMemory     = "memory"
	NameAccounting = "accounting"
)

// AllMeasurements lists the measurements in the order they run.
var AllMeasurements = []string{NameDequeue, NameGrowth, NameAccounting, NameDispatch,
	NameLatency, NameMemory}

func (o Options) wants(name string) bool { return len(o.Only) == 0 || slices.Contains(o.Only, name) }

// Runner runs the measurements and collects their rows.
type Runner struct {
	Env  *Env
	Opts Options
	Res  *Results

	growth   *Growth
	peakPods float64 // dispatcher pods per second, the daemon's bottleneck, for the latency load
}

// repeat calls measure Env.Runs times and returns the values.
func (r *Runner) repeat(what string, measure func(run int) (float64, error)) ([]float64, error) {
	return r.repeatBelow(what, 0, measure)
}

// repeatBelow is repeat that stops after a run whose value passes limit, when limit is
// positive. It keeps slow report runs, which miss their goal by far, from taking the time of
// the whole bench.
func (r *Runner) repeatBelow(what string, limit float64, measure func(run int) (float64, error)) ([]float64, error) {
	values := make([]float64, 0, r.Env.Runs)
	for i := range r.Env.Runs {
		v, err := measure(i)
		if err != nil {
			return nil, fmt.Errorf("%s, run %d: %w", what, i+1, err)
		}
		r.Env.Log.Info("measured", "what", what, "run", i+1, "value", v)
		values = append(values, v)
		if limit > 0 && v > limit {
			break
		}
	}
	return values, nil
}

// profiled runs fn with a CPU profile and writes an allocation profile afterwards, both
// under Options.ProfileDir named after what.
func (r *Runner) profiled(what string, fn func() error) error {
	if r.Opts.ProfileDir == "" {
		return fn()
	}
	if err := os.MkdirAll(r.Opts.ProfileDir, 0o755); err != nil {
		return err
	}
	cpu, err := os.Create(filepath.Join(r.Opts.ProfileDir, what+".cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	runErr := fn()
	pprof.StopCPUProfile()

	allocs, err := os.Create(filepath.Join(r.Opts.ProfileDir, what+".allocs.pprof"))
	if err != nil {
		return err
	}
	defer allocs.Close()
	runtime.GC()
	if err := pprof.Lookup("allocs").WriteTo(allocs, 0); err != nil {
		return err
	}
	return runErr
}

// Run runs every measurement that Options selects, in AllMeasurements order. A measurement that
// fails is reported in the notes and the others still run.
func (r *Runner) Run(ctx context.Context) {
	steps := map[string]func(context.Context) error{
		NameDequeue: r.dequeue, NameGrowth: r.growthRows, NameAccounting: r.accountingRows,
		NameDispatch: r.dispatchRows, NameLatency: r.latencyRows, NameMemory: r.memoryRows,
	}
	for _, name := range AllMeasurements {
		if !r.Opts.wants(name) {
			continue
		}
		started, loadBefore := time.Now(), LoadAverage()
		r.Env.Log.Info("measurement started", "measurement", name, "load", loadBefore)
		err := r.profiled(name, func() error { return steps[name](ctx) })
		if err != nil {
			r.Env.Log.Error("measurement failed", "measurement", name, "err", err)
			r.Res.Notes = append(r.Res.Notes, fmt.Sprintf("%s failed: %s", name, oneLine(err)))
		}
		loadAfter := LoadAverage()
		r.Env.Log.Info("measurement finished", "measurement", name,
			"seconds", time.Since(started).Seconds(), "load", loadAfter)
		r.Res.Notes = append(r.Res.Notes, fmt.Sprintf("The %s measurement took %.0f s; load average "+
			"%s at its start and %s at its end.", name, time.Since(started).Seconds(), loadBefore, loadAfter))
	}
	if r.growth != nil {
		r.growth.Pool().Close()
	}
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func spreadPtr(s Spread) *Spread { return &s }

// sizeName writes a row count the way the task states sizes: 100k, 1M, 10M.
func sizeName(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
