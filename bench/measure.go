package bench

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// dequeue compares the dequeue's throughput with pgbench -N and River, run after run
// interleaved so that all three see the same machine.
func (r *Runner) dequeue(ctx context.Context) error {
	o := r.Opts
	setup, err := NewDequeueSetup(ctx, r.Env, "bench_dequeue", o.DequeueJobs)
	if err != nil {
		return err
	}
	defer func() { setup.Pool.Close() }()
	if o.ProfileDir != "" {
		if err := setup.Trace(ctx, r.Env, "bench_dequeue"); err != nil {
			return err
		}
	}
	pg, err := NewPGBench(ctx, r.Env, "bench_pgbench", o.PGBenchScale, o.PGBenchTime)
	if err != nil {
		return err
	}
	river, err := NewRiverReference(ctx, r.Env, "bench_river", o.DequeueJobs)
	if err != nil {
		return err
	}
	defer river.Close()

	for _, workers := range o.Workers {
		var ours, tps, rv []float64
		for run := range r.Env.Runs {
			v, err := setup.Measure(ctx, workers)
			if err != nil {
				return fmt.Errorf("dequeue with %d workers, run %d: %w", workers, run+1, err)
			}
			ours = append(ours, v)
			if v, err = pg.Measure(ctx, workers); err != nil {
				return err
			}
			tps = append(tps, v)
			if v, err = river.Measure(ctx, workers); err != nil {
				return fmt.Errorf("reference run of River with %d clients, run %d: %w", workers, run+1, err)
			}
			rv = append(rv, v)
			r.Env.Log.Info("measured dequeue", "workers", workers, "run", run+1, "jobs_per_s", ours[run],
				"pgbench_tps", tps[run], "river_jobs_per_s", rv[run])
		}
		name := fmt.Sprintf("dequeue, %d worker(s)", workers)
		r.Res.Rows = append(r.Res.Rows,
			Row{Name: name, Unit: "jobs/s", Ours: Summarize(ours), Reference: "pgbench -N tps",
				Ref: spreadPtr(Summarize(tps)), Goal: Goal{MinRatio: 0.8}},
			Row{Name: name, Unit: "jobs/s", Ours: Summarize(ours), Reference: "River jobs/s",
				Ref: spreadPtr(Summarize(rv)), Goal: Goal{MinRatio: 1.2}})
	}
	if o.ProfileDir != "" {
		r.Res.Sections = append(r.Res.Sections, Section{Title: "Statements of the dequeue runs",
			Body: setup.Calls.String()})
	}
	r.Res.Notes = append(r.Res.Notes, fmt.Sprintf("Dequeue: %d queued jobs drained per run by the "+
		"scheduler's Drain (batch %d, admission by scheduler.Policy, up to two transactions at a time, "+
		"no Kubernetes) in N concurrent schedulers; pgbench -N with N clients for %s at scale %d; River: N clients of %d workers each, "+
		"FetchCooldown %s, working %d no-op jobs inserted in one transaction before the clock starts.",
		o.DequeueJobs, DequeueBatch, o.PGBenchTime, o.PGBenchScale, DequeueBatch,
		"1ms", o.DequeueJobs))
	return nil
}

// growthRows measures the one-worker dequeue as the jobs table grows, each size against
// the smallest, and records the plans at the largest size.
func (r *Runner) growthRows(ctx context.Context) error {
	o := r.Opts
	g, err := NewGrowth(ctx, r.Env, "bench_growth", o.GrowthQueued)
	if err != nil {
		return err
	}
	r.growth = g
	var base *Spread
	for i, size := range o.GrowthSizes {
		started := time.Now()
		if err := g.GrowTo(ctx, size); err != nil {
			return err
		}
		loadTime := time.Since(started)
		values, err := r.repeat("dequeue at "+sizeName(size), func(int) (float64, error) {
			return g.Measure(ctx, 1)
		})
		if err != nil {
			return err
		}
		row := Row{Name: fmt.Sprintf("dequeue, 1 worker, %s rows in jobs", sizeName(size)),
			Unit: "jobs/s", Ours: Summarize(values),
			Note: fmt.Sprintf("loading and vacuuming up to %s rows took %.0f s", sizeName(size), loadTime.Seconds())}
		if base == nil {
			base = spreadPtr(row.Ours)
		} else {
			row.Reference, row.Ref = "at "+sizeName(o.GrowthSizes[0]), base
			if i == len(o.GrowthSizes)-1 {
				row.Goal = Goal{MinRatio: 0.9}
			}
		}
		r.Res.Rows = append(r.Res.Rows, row)
	}

	candidates, admit, err := g.DequeuePlans(ctx)
	if err != nil {
		return err
	}
	largest := sizeName(o.GrowthSizes[len(o.GrowthSizes)-1])
	r.Res.Sections = append(r.Res.Sections,
		Section{Title: "Plan of the dequeue's candidate query at " + largest + " rows", Body: candidates},
		Section{Title: "Plan of the dequeue's update of jobs at " + largest + " rows", Body: admit})
	r.Res.Notes = append(r.Res.Notes, fmt.Sprintf("Growth: %d queued jobs; the other rows are "+
		"finished jobs (80%% completed, 15%% failed, 5%% cancelled) over %d monthly partitions, "+
		"inserted with INSERT ... SELECT generate_series, then VACUUM (ANALYZE).",
		o.GrowthQueued, historyMonths))
	return nil
}

// accountingRows times accounting.Report over the growth database once its finished jobs
// have runs.
func (r *Runner) accountingRows(ctx context.Context) error {
	o := r.Opts
	g := r.growth
	if g == nil {
		var err error
		if g, err = NewGrowth(ctx, r.Env, "bench_growth", o.GrowthQueued); err != nil {
			return err
		}
		r.growth = g
		if err := g.GrowTo(ctx, o.GrowthSizes[len(o.GrowthSizes)-1]); err != nil {
			return err
		}
	}
	started := time.Now()
	if err := g.AddRuns(ctx, o.RunsPerJob); err != nil {
		return err
	}
	loadTime := time.Since(started)
	jobs, runs, err := g.Counts(ctx)
	if err != nil {
		return err
	}
	for _, period := range ReportPeriods(time.Now().UTC()) {
		var lines int
		values, err := r.repeatBelow("report over "+period.Name, slowReport, func(int) (float64, error) {
			seconds, n, err := g.MeasureReport(ctx, period)
			lines = n
			return seconds, err
		})
		if err != nil {
			return err
		}
		r.Res.Rows = append(r.Res.Rows, Row{
			Name: fmt.Sprintf("accounting.Report, %s, %s jobs, %s runs", period.Name,
				sizeName(roundCount(jobs)), sizeName(roundCount(runs))),
			Unit: "s", Ours: Summarize(values), Goal: Goal{MaxValue: 1},
			Note: fmt.Sprintf("%d report lines (orgs, projects, total); %d run(s), repeated only "+
				"while a run takes less than %.0f s; seeding the runs took %.0f s",
				lines, len(values), slowReport, loadTime.Seconds())})
		plan, err := g.ReportPlan(ctx, period)
		if err != nil {
			return err
		}
		r.Res.Sections = append(r.Res.Sections, Section{Title: "Plan of accounting.Report over the " +
			period.Name, Body: plan})
	}
	return r.backfillRow(ctx, g, jobs, runs)
}

// backfillRow times, once, the upgrade that creates the GPU-hour rollup and fills it from
// the runs already stored. Runs cannot be written while it runs.
func (r *Runner) backfillRow(ctx context.Context, g *Growth, jobs, runs int64) error {
	seconds, err := g.MeasureBackfill(ctx)
	if err != nil {
		return fmt.Errorf("rollup backfill: %w", err)
	}
	r.Env.Log.Info("measured", "what", "rollup backfill", "value", seconds)
	r.Res.Rows = append(r.Res.Rows, Row{
		Name: fmt.Sprintf("migration %d (GPU-hour rollup) with its backfill, %s jobs, %s runs",
			rollupMigration, sizeName(roundCount(jobs)), sizeName(roundCount(runs))),
		Unit: "s", Ours: Summarize([]float64{seconds}),
		Note: "one run: migrated down past it and up again; the rebuilt rollup equals the one " +
			"the seeding of the runs wrote"})
	return nil
}

// slowReport is the report time, in seconds, past which a report is not run again: ten
// times its goal.
const slowReport = 10.0

// roundCount rounds n to two significant digits, for row names.
func roundCount(n int64) int {
	step := int64(1)
	for n/step >= 100 {
		step *= 10
	}
	return int((n + step/2) / step * step)
}

// measureDispatchPair measures the dispatcher and the raw loop once each, the raw loop
// first when rawFirst is set, and returns their pods per second.
func measureDispatchPair(ctx context.Context, d *Dispatch, rawFirst bool) (ours, raw float64, err error) {
	if rawFirst {
		if raw, err = d.MeasureRawLoop(ctx); err != nil {
			return 0, 0, fmt.Errorf("raw loop: %w", err)
		}
	}
	if ours, err = d.MeasureDispatcher(ctx); err != nil {
		return 0, 0, fmt.Errorf("dispatcher: %w", err)
	}
	if !rawFirst {
		if raw, err = d.MeasureRawLoop(ctx); err != nil {
			return 0, 0, fmt.Errorf("raw loop: %w", err)
		}
	}
	return ours, raw, nil
}

// pairRatios describes the ratio of each pair of dispatch runs. The two runs of a pair are
// a minute apart, while the row's ratio of medians may compare runs from either end of the
// measurement, so the pairs show how much of the spread comes from the machine drifting.
func pairRatios(ours, raw []float64) string {
	ratios := make([]string, len(ours))
	values := make([]float64, len(ours))
	for i := range ours {
		values[i] = ours[i] / raw[i]
		ratios[i] = fmt.Sprintf("%.2fx", values[i])
	}
	return fmt.Sprintf("ratio of each pair of runs, in order: %s (median %.2fx)",
		strings.Join(ratios, ", "), Summarize(values).Median)
}

// dispatchRows compares the dispatcher's pod creation with a raw client-go loop.
func (r *Runner) dispatchRows(ctx context.Context) error {
	o := r.Opts
	d, err := NewDispatch(ctx, r.Env, "bench_dispatch", o.DispatchPods, o.Nodes)
	if err != nil {
		return err
	}
	defer d.Close()

	// A first pair, not counted, warms the API server, etcd and KWOK up for both sides. Its
	// dispatcher also creates the priority classes that the raw loop's pods name.
	if _, _, err := measureDispatchPair(ctx, d, false); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if o.ProfileDir != "" {
		if err := d.Trace(ctx, "bench_dispatch"); err != nil {
			return err
		}
	}
	meter, skipped := NewCPUMeter(ctx, r.Env, o.Kubeconfig)
	d.CPU = meter
	var ours, raw []float64
	for run := range r.Env.Runs {
		// The order alternates, so that neither side always runs on the state the other
		// left behind.
		dispatcherRate, rawRate, err := measureDispatchPair(ctx, d, run%2 == 1)
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		ours, raw = append(ours, dispatcherRate), append(raw, rawRate)
		r.Env.Log.Info("measured dispatch", "run", run+1, "dispatcher_pods_per_s", dispatcherRate,
			"raw_pods_per_s", rawRate)
	}

	row := Row{Name: fmt.Sprintf("dispatch, %d pods", o.DispatchPods), Unit: "pods/s",
		Ours: Summarize(ours), Reference: "raw client-go loop", Ref: spreadPtr(Summarize(raw)),
		Goal: Goal{MinRatio: 0.9}, Note: pairRatios(ours, raw)}
	r.Res.Rows = append(r.Res.Rows, row)
	r.peakPods = row.Ours.Median

	r.Res.Sections = append(r.Res.Sections, Section{Title: "CPU time per pod during the dispatch runs",
		Body: cpuTable(meter.Names(), d.DispatcherCPU, d.RawLoopCPU, o.DispatchPods*r.Env.Runs,
			r.Res.Machine.Cores)})
	if len(skipped) > 0 {
		r.Res.Notes = append(r.Res.Notes, "Dispatch CPU time not read for: "+strings.Join(skipped, "; "))
	}
	if d.Traced {
		r.Res.Sections = append(r.Res.Sections,
			Section{Title: "Calls of the dispatcher during the dispatch runs", Body: d.DispatcherCalls.String()},
			Section{Title: "Calls of the raw loop during the dispatch runs", Body: d.RawLoopCalls.String()})
	}
	r.Res.Notes = append(r.Res.Notes, fmt.Sprintf("Dispatch: both sides create %d pods of a tenth "+
		"of a GPU on %d KWOK nodes with %d concurrent workers and the client's QPS %.0f and burst %d; "+
		"the dispatcher's clock starts once its caches are filled and ends when the last run's pod "+
		"creation is recorded in the database. A first pair of runs warms the cluster up and is not "+
		"counted, and the two sides take turns at going first.",
		o.DispatchPods, o.Nodes, DispatchWorkers, r.Env.Kube.QPS, r.Env.Kube.Burst))
	return nil
}

// latencyRows measures submit-to-pod latency with an idle daemon and at half the peak.
func (r *Runner) latencyRows(ctx context.Context) error {
	o := r.Opts
	l, err := StartLatency(ctx, r.Env, "bench_latency", o.Nodes)
	if err != nil {
		return err
	}
	defer l.Stop()

	var p50, p99 []float64
	for run := range r.Env.Runs {
		latencies, err := l.MeasureIdle(ctx, o.LatencyIdleJobs)
		if err != nil {
			return fmt.Errorf("idle latency, run %d: %w", run+1, err)
		}
		p50 = append(p50, ms(Percentile(latencies, 50)))
		p99 = append(p99, ms(Percentile(latencies, 99)))
	}
	r.Res.Rows = append(r.Res.Rows,
		Row{Name: "submit to pod, idle, p50", Unit: "ms", Ours: Summarize(p50)},
		Row{Name: "submit to pod, idle, p99", Unit: "ms", Ours: Summarize(p99), Goal: Goal{MaxValue: 250},
			Note: fmt.Sprintf("%d jobs per run, one at a time", o.LatencyIdleJobs)})

	if r.peakPods <= 0 {
		r.Res.Notes = append(r.Res.Notes, "Latency at half of the peak was not measured: it takes its "+
			"rate from the dispatch measurement, which did not run.")
		return nil
	}
	rate := r.peakPods / 2
	p50, p99 = nil, nil
	for run := range r.Env.Runs {
		latencies, err := l.MeasureLoaded(ctx, rate, o.LatencyLoaded)
		if err != nil {
			return fmt.Errorf("latency at %.0f jobs/s, run %d: %w", rate, run+1, err)
		}
		p50 = append(p50, ms(Percentile(latencies, 50)))
		p99 = append(p99, ms(Percentile(latencies, 99)))
	}
	note := fmt.Sprintf("%.0f jobs/s for %s per run: half the dispatcher's median pods/s, the "+
		"slower of the daemon's two stages", rate, o.LatencyLoaded)
	r.Res.Rows = append(r.Res.Rows,
		Row{Name: "submit to pod, 50% of peak, p50", Unit: "ms", Ours: Summarize(p50)},
		Row{Name: "submit to pod, 50% of peak, p99", Unit: "ms", Ours: Summarize(p99), Note: note})
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// memoryRows measures the daemon's resident memory while it follows running pods.
func (r *Runner) memoryRows(ctx context.Context) error {
	o := r.Opts
	result, err := MeasureMemory(ctx, r.Env, "bench_memory", o.MemoryPods, o.Nodes, r.Env.Runs, o.Kubeconfig)
	if err != nil {
		return err
	}
	r.Res.Rows = append(r.Res.Rows, Row{
		Name: fmt.Sprintf("daemon RSS following %d running pods", o.MemoryPods), Unit: "MiB",
		Ours: Summarize(result.RSSMiB), Goal: Goal{MaxValue: 150},
		Note: fmt.Sprintf("`schedulerd run` as its own process; %d sample(s), 10 s apart, once all runs "+
			"were running (%.0f s after its start); peak RSS (VmHWM) %.0f MiB; last sample %.0f MiB "+
			"anonymous and %.0f MiB mapped from files",
			len(result.RSSMiB), result.Startup.Seconds(), result.PeakMiB, result.AnonMiB, result.FileMiB)})
	return nil
}
