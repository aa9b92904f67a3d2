package replay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/schedulerd/schedulerd/internal/errlist"
	"github.com/schedulerd/schedulerd/internal/proc"
	"github.com/schedulerd/schedulerd/replay/report"
	"github.com/schedulerd/schedulerd/store"
)

// sampleInterval is how often the replay records GPU allocation and the daemon's usage.
const sampleInterval = 2 * time.Second

// recorder samples the cluster's GPU allocation by model and the daemon's memory and CPU
// while the replay runs, and prints progress.
type recorder struct {
	store     *store.Store
	pid       int
	log       *slog.Logger
	submitted atomic.Int64

	// cpuAtStart is the daemon's CPU time when the recorder was made. The report subtracts
	// it, because the daemon may have run before the replay, for example for an earlier run
	// of the same replay.
	cpuAtStart float64

	mu      sync.Mutex
	samples []report.Sample
	usage   report.ProcessUsage
	last    counts
}

type counts struct {
	queued, running, completed, failed, other int
	allocatedMilli                            int64
}

func newRecorder(s *store.Store, pid int, log *slog.Logger) *recorder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rec := &recorder{store: s, pid: pid, log: log, usage: report.ProcessUsage{PID: pid}}
	if pid > 0 {
		_, rec.cpuAtStart = processUsage(pid)
	}
	return rec
}

func (rec *recorder) run(ctx context.Context, started time.Time) {
	ticker := time.NewTicker(sampleInterval)
	defer ticker.Stop()
	for {
		rec.sample(ctx, started)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

const sqlAllocation = `
SELECT COALESCE(gpu_model, ''), sum(gpu_milli)::bigint FROM runs WHERE status = 'running' GROUP BY 1`

// sample records one point of GPU allocation, the progress counts and the daemon's usage.
// A read that fails (a slow database, or the replay's end cancelling a read in flight)
// leaves out its figures: a chart point or progress line of zeros would read as a cluster
// with nothing allocated.
func (rec *recorder) sample(ctx context.Context, started time.Time) {
	allocated, allocErr := runningAllocation(ctx, rec.store)
	c, countErr := rec.count(ctx)
	if err := errlist.Join(allocErr, countErr); err != nil && ctx.Err() == nil {
		rec.log.Warn("replay sample failed, so its figures are left out", "err", err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if allocErr == nil {
		rec.samples = append(rec.samples, report.Sample{At: time.Since(started), AllocatedMilli: allocated})
	}
	if countErr == nil {
		rec.last = c
	}
	if rec.pid > 0 {
		rss, cpu := processUsage(rec.pid)
		rec.usage.PeakRSSBytes = max(rec.usage.PeakRSSBytes, rss)
		if cpu > 0 {
			rec.usage.CPUSeconds = max(cpu-rec.cpuAtStart, 0)
		}
	}
}

// runningAllocation reads the GPU thousandths of running runs (their containers started)
// by GPU model.
func runningAllocation(ctx context.Context, s *store.Store) (map[string]int64, error) {
	rows, err := s.Pool().Query(ctx, sqlAllocation)
	if err != nil {
		return nil, fmt.Errorf("read GPU allocation: %w", err)
	}
	allocated := map[string]int64{}
	var model string
	var milli int64
	_, err = pgx.ForEachRow(rows, []any{&model, &milli}, func() error {
		allocated[model] = milli
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read GPU allocation: %w", err)
	}
	return allocated, nil
}

const sqlCounts = `
SELECT count(*) FILTER (WHERE status = 'queued'), count(*) FILTER (WHERE status = 'running'),
       count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status NOT IN ('queued', 'running', 'completed', 'failed')),
       (SELECT COALESCE(sum(gpu_milli), 0)::bigint FROM runs WHERE status = 'running')
FROM jobs`

func (rec *recorder) count(ctx context.Context) (counts, error) {
	var c counts
	err := rec.store.Pool().QueryRow(ctx, sqlCounts).Scan(&c.queued, &c.running, &c.completed, &c.failed,
		&c.other, &c.allocatedMilli)
	if err != nil {
		return c, fmt.Errorf("count jobs by status: %w", err)
	}
	return c, nil
}

func (rec *recorder) progressLine(total int) string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	c := rec.last
	return fmt.Sprintf("submitted %d/%d  queued %d  running %d  completed %d  failed %d  GPUs allocated %.1f",
		rec.submitted.Load(), total, c.queued, c.running, c.completed, c.failed, float64(c.allocatedMilli)/1000)
}

// processUsage reads a process's peak resident memory (VmHWM, bytes) and its user plus
// system CPU time (seconds) from /proc. It returns zeros when the process is gone.
func processUsage(pid int) (int64, float64) {
	var peak int64
	if mem, err := proc.ReadMemory(pid); err == nil {
		peak = mem.VmHWM
	}
	var cpu float64
	if d, err := proc.CPUTime(pid); err == nil {
		cpu = d.Seconds()
	}
	return peak, cpu
}
