// Package report writes the report of a trace replay: a Markdown file,
// report.md, and the PNG charts that it links.
//
// The output depends only on Data, so the same Data always gives the same
// report.md. Rows are sorted before they are written:
//   - Job states follow the job life cycle of the store package (submitted,
//     queued, running, paused, completed, failed, cancelled, eval_failed).
//   - Priority tiers go from highest to lowest (critical, high, normal, low).
//   - GPU models and projects are in alphabetical order.
//
// States and tiers outside those lists follow them in alphabetical order.
// Problems keep the order of Data.Problems. A section without data still
// appears with the single word "none", and a chart without data is not drawn.
// The fill-mode section of a run in another mode states that the run did not
// measure it.
package report

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// File names inside the report directory. report.md links the charts by
// these relative names, so the directory can be moved as a whole.
const (
	ReportFile          = "report.md"
	AllocationChartFile = "gpus-by-model.png"
	ProjectChartFile    = "gpu-hours-by-project.png"
)

// Data is everything the replay measured.
type Data struct {
	Title    string // e.g. "Trace replay of openb_pod_list_default.csv"
	Command  string // the command line that produced it
	Mode     string // "paced" or "fill"
	Speedup  float64
	Load     float64
	Started  time.Time
	Finished time.Time
	Tasks    TaskCounts
	Runs     RunLengths
	Jobs     []StateCount     // jobs by end state, e.g. {"completed", 6000}
	Waits    []TierWait       // queue wait by priority tier
	Samples  []Sample         // GPU allocation over time, every few seconds
	Capacity map[string]int64 // GPU capacity by model, thousandths of a GPU
	Projects []ProjectUsage
	Dispatch DispatchRate
	Daemon   ProcessUsage
	Fill     []ModelShare // fill mode only: allocated share per model where the fill stopped (first task without room, or the end)
	FillStop string       // fill mode only: the task where the fill stopped and why, or that every task ran
	Problems []string     // task problems (unknown GPU model, larger than any node), one per entry
	// Stop is set when the replay stopped early. The report then covers only the part
	// before the stop.
	Stop *Stop
	// Continued is the number of trace tasks that earlier runs of the same replay had
	// submitted before this run continued it, or 0 for a run that started afresh.
	Continued int
}

// Stop is the reason and the step of a replay that stopped before its last step.
type Stop struct {
	Reason string // e.g. "interrupted (interrupt signal received)"
	Step   string // e.g. "submitting trace tasks"
	// Left is the number of planned trace tasks that no run has submitted.
	Left int
}

// TaskCounts is the number of trace tasks at each step of the replay.
type TaskCounts struct {
	Total int // tasks in the trace file
	// Limit is the -limit value when it left GPU tasks out, or 0 when the run took every
	// GPU task. Read counts the tasks of the file up to the last GPU task taken, which is
	// Total when Limit is 0.
	Limit, Read int
	// GPU and CPUOnlySkipped split the Read tasks, not the whole file.
	GPU, CPUOnlySkipped, Submitted, Problems int
}

// RunLengths counts the runs that the speedup shortened. A pod runs for its trace run
// length divided by the speedup, in whole seconds, so short trace runs become pods of 0 s
// or 1 s.
type RunLengths struct {
	// Runs is every run of the schedule that has a length: each GPU task in paced mode,
	// none in fill mode, where pods run until the replay ends.
	Runs int
	// ZeroInTrace counts the runs that last 0 s in the trace itself.
	ZeroInTrace int
	// ShortenedToZero and ShortenedToOne count the runs longer in the trace than their
	// pods of 0 s and 1 s.
	ShortenedToZero, ShortenedToOne int
}

// StateCount is the number of jobs that ended the replay in one state.
type StateCount struct {
	State string
	Jobs  int
}

// TierWait is the time that the jobs of one priority tier waited from
// submission to the first container start of any of their runs. A job whose
// first run ended before its container started (a preempted or unschedulable
// pod) waits until a later run starts.
type TierWait struct {
	Tier string
	// Jobs is every job of the tier, and Started is those whose container
	// started. The wait percentiles cover the Started jobs only.
	Jobs, Started int
	P50, P99, Max time.Duration
}

// Sample is the GPU allocation by model at one moment, in thousandths of a
// GPU. At is the time since Data.Started. A model missing from
// AllocatedMilli counts as 0.
type Sample struct {
	At             time.Duration
	AllocatedMilli map[string]int64
}

// ProjectUsage is the GPU-hours that one project used, was expected to use
// from the trace, and was budgeted, in wall-clock GPU-hours.
type ProjectUsage struct {
	Project                  string
	Jobs                     int
	GPUHours, BudgetGPUHours float64
	// SimulatedGPUHours is the GPU-hours of the pods of the project's jobs that
	// ran and ended, each trace run divided by the speedup and rounded to whole
	// seconds. TraceGPUHours is the same jobs' trace GPU-hours divided by the
	// speedup, before the rounding.
	SimulatedGPUHours, TraceGPUHours float64
	// PreemptedRuns counts the project's runs that ended preempted, and
	// PreemptedGPUHours is what they were charged. GPUHours contains those
	// hours, and neither expected figure does.
	PreemptedRuns     int
	PreemptedGPUHours float64
}

// DispatchRate is the number of pods created and their rate. PeakPerSecond
// is the maximum over 1-second buckets.
type DispatchRate struct {
	Pods                         int
	MeanPerSecond, PeakPerSecond float64
}

// ProcessUsage is the resource use of the schedulerd daemon process. PeakRSSBytes is the
// process's peak since it started, and CPUSeconds is the CPU time it used during this run
// of the replay.
type ProcessUsage struct {
	PID          int
	PeakRSSBytes int64
	CPUSeconds   float64
}

// ModelShare is the allocation of one GPU model against its capacity, in
// thousandths of a GPU.
type ModelShare struct {
	Model                         string
	AllocatedMilli, CapacityMilli int64
}

// Write writes dir/report.md and its PNG plots into dir (created if missing) and returns the report's path.
//
// Each file is written to a temporary file in dir and renamed, so a reader
// never sees a partial file. A chart that has no data is not drawn, and a
// file of that name left by an earlier report is removed so that dir does not
// show a chart from another run.
func Write(dir string, d Data) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create report directory %q: %w", dir, err)
	}

	if err := writeCharts(dir, d); err != nil {
		return "", err
	}

	path := filepath.Join(dir, ReportFile)
	markdown := renderMarkdown(d)
	err := writeFileAtomic(path, func(w io.Writer) error {
		_, err := io.WriteString(w, markdown)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("write report %q: %w", path, err)
	}

	return path, nil
}

// writeFileAtomic writes path through a temporary file in the same
// directory and renames it into place.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}

	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()

	if err := write(tmp); err != nil {
		_ = tmp.Close()
		return err
	}

	// CreateTemp makes the file readable by its owner only, but a report is
	// meant to be shared like any other output file.
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}

	if err := tmp.Close(); err != nil {
		return err
	}

	return os.Rename(tmp.Name(), path)
}

// removeStale deletes path if it exists.
func removeStale(path string) error {
	err := os.Remove(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale chart %q: %w", path, err)
	}

	return nil
}
