// Package metrics owns every Prometheus series schedulerd exposes. The other packages report
// events through the methods of Metrics (a job admitted, a run ended, a cron task finished)
// and never create series themselves. Gauges of database state (queue depth, quotas, GPU
// capacity, partition runway) are read from PostgreSQL at scrape time, so they are correct
// on every replica whether or not it leads. The pod gauges come from the dispatcher's
// informer cache, which only the leader fills.
//
// Series are built against the prometheus.Registerer passed to New; there is no global
// registry. No label takes a job id, run id or idempotency key: labels are projects, GPU
// models, priority tiers and fixed enumerations, and series of a project that no longer
// exists are removed at the next scrape.
//
// GPU time is exposed in GPU-seconds, the base unit Prometheus names use; divide by 3600
// for the GPU-hours that budgets are set in.
//
// Every method is safe on a nil *Metrics and then does nothing, so that components built
// without metrics (most tests) need no special case.
package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of the admission policy, the result label of schedulerd_admission_decisions_total.
const (
	AdmissionAdmitted    = "admitted"
	AdmissionBudget      = "budget"
	AdmissionConcurrency = "concurrency"
	AdmissionDrained     = "drained"
	AdmissionNoCapacity  = "no_capacity"
	AdmissionNoQuota     = "no_quota"
	AdmissionPeriod      = "period"
)

// Causes of a run's end, the cause label of schedulerd_runs_ended_total.
const (
	CauseCompleted        = "completed"
	CauseFailed           = "failed"
	CauseOOMKilled        = "oom_killed"
	CauseImagePull        = "image_pull"
	CauseDeadlineExceeded = "deadline_exceeded"
	CauseEvicted          = "evicted"
	CausePreempted        = "preempted"
	CauseUnschedulable    = "unschedulable"
	CausePreemptionLimit  = "preemption_limit"
	CauseCancelled        = "cancelled"
	CausePaused           = "paused"
)

// Loops whose failed iterations schedulerd_loop_errors_total counts.
const (
	LoopDequeue   = "dequeue"
	LoopReconcile = "reconcile"
	LoopResync    = "resync"
	LoopCapacity  = "capacity"
	LoopAccrual   = "accrual"
	LoopRenewal   = "renewal"
)

var (
	admissionResults = []string{AdmissionAdmitted, AdmissionBudget, AdmissionConcurrency,
		AdmissionDrained, AdmissionNoCapacity, AdmissionNoQuota, AdmissionPeriod}
	runEndCauses = []string{CauseCompleted, CauseFailed, CauseOOMKilled, CauseImagePull,
		CauseDeadlineExceeded, CauseEvicted, CausePreempted, CauseUnschedulable, CausePreemptionLimit,
		CauseCancelled, CausePaused}
	loops = []string{LoopDequeue, LoopReconcile, LoopResync, LoopCapacity, LoopAccrual, LoopRenewal}
)

// Tier is a band of job priorities that shares a name, as the dispatcher's priority classes
// define them.
type Tier struct {
	Name        string
	MinPriority int // lowest priority (0 to 100) in the tier
}

// Options configures New. Zero values take the defaults in parentheses.
type Options struct {
	// Tiers are the priority tiers, highest first ({all, 0}). A priority below every
	// MinPriority falls in the last tier.
	Tiers []Tier
	// CronTasks names the cron tasks, whose series start at zero ({partitions, retention, budgets}).
	CronTasks []string
	// DatabaseTimeout bounds the queries of one scrape (2s).
	DatabaseTimeout time.Duration
	// Now returns the current time (time.Now); the partition runway counts months from it.
	Now func() time.Time
}

// Metrics holds every series. Create it with New.
type Metrics struct {
	reg  prometheus.Registerer
	opts Options

	admissions       *prometheus.CounterVec
	dequeueSeconds   prometheus.Histogram
	loopErrors       *prometheus.CounterVec
	dispatchSeconds  prometheus.Histogram
	startWaitSeconds *prometheus.HistogramVec
	reconcileSeconds prometheus.Histogram
	runsEnded        *prometheus.CounterVec
	gpuWaits         prometheus.Counter
	gpuSeconds       *prometheus.CounterVec
	leader           prometheus.Gauge
	httpRequests     *prometheus.CounterVec
	httpSeconds      *prometheus.HistogramVec
	cronRuns         *prometheus.CounterVec
	retentionObjects prometheus.Counter
	retentionBytes   prometheus.Counter

	// projects with a series in gpuSeconds, so that a scrape can delete those of projects
	// that no longer exist.
	mu       sync.Mutex
	projects map[string]bool
}

// New creates the event series and registers them with reg. It panics if a series is
// already registered there, as prometheus.MustRegister does.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	opts = withDefaults(opts)
	m := &Metrics{reg: reg, opts: opts, projects: map[string]bool{}}

	m.admissions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_admission_decisions_total",
		Help: "Decisions of the admission policy, one per candidate job per dequeue; a job " +
			"that waits is counted again at every dequeue that considers it. Jobs that their " +
			"quota holds back are not candidates (see schedulerd_queued_jobs_held), so budget " +
			"and concurrency count only jobs refused beside others admitted in the same " +
			"dequeue. Budget also counts the jobs that have waited the starvation bound for " +
			"the budget and the later jobs of their projects. result is " +
			labelList(admissionResults) + ".",
	}, []string{"result"})
	m.dequeueSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "schedulerd_dequeue_duration_seconds",
		Help:    "Duration of one dequeue transaction (Store.Dequeue), failed ones included.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 13),
	})
	m.loopErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_loop_errors_total",
		Help: "Failed iterations of the daemon's loops, each retried. loop is " + labelList(loops) + ".",
	}, []string{"loop"})
	m.dispatchSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "schedulerd_dispatch_duration_seconds",
		Help:    "Time from a job's admission (its run created) to its pod created.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 18), // up to 22 minutes: a burst of thousands of admissions
	})
	m.startWaitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "schedulerd_job_submit_to_running_seconds",
		Help: "Time from a job's submission to the start of its first run's container. " +
			"tier is the job's priority tier: " + labelList(tierNames(opts.Tiers)) + ".",
		Buckets: prometheus.ExponentialBuckets(0.5, 2, 20), // up to 3 days of waiting for capacity or budget
	}, []string{"tier"})
	m.reconcileSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "schedulerd_reconcile_duration_seconds",
		Help:    "Duration of one reconcile of a run with its pod by the dispatcher.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 13),
	})
	m.runsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_runs_ended_total",
		Help: "Runs whose end this replica recorded, by cause: " + labelList(runEndCauses) + ". " +
			"preemption_limit counts preempted runs whose job failed because it reached max_preemptions, " +
			"which evicted, preempted and unschedulable then leave out. cancelled counts runs stopped " +
			"because their job was cancelled, and paused those stopped because their job was paused, " +
			"which a resume queues again.",
	}, []string{"cause"})
	m.gpuWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "schedulerd_gpu_fragmentation_waits_total",
		Help: "Runs whose pod stayed unschedulable past the unschedulable timeout only because " +
			"other pods use the GPUs on every node that could hold it, so that the pod keeps " +
			"waiting and its job's preemption count stays as it is. Each run counts once, on " +
			"the replica that saw it.",
	})
	m.gpuSeconds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_project_gpu_seconds_total",
		Help: "GPU time of ended runs, in GPU-seconds (3600 make a GPU-hour), added when " +
			"this replica records each run's end. project is the project id.",
	}, []string{"project"})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "schedulerd_leader",
		Help: "1 while this replica holds the leader lease and runs the scheduler and dispatcher, else 0.",
	})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_http_requests_total",
		Help: "HTTP requests served. route is the ServeMux pattern that matched, such as " +
			"'GET /readyz', or 'unmatched'; code is the HTTP status code.",
	}, []string{"route", "code"})
	m.httpSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "schedulerd_http_request_duration_seconds",
		Help: "Duration of HTTP requests. route is the ServeMux pattern that matched, " +
			"such as 'GET /readyz', or 'unmatched'.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"route"})
	m.cronRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "schedulerd_cron_task_runs_total",
		Help: "Cron task runs this replica finished. task is " + labelList(opts.CronTasks) +
			"; result is success or failure.",
	}, []string{"task", "result"})
	m.retentionObjects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "schedulerd_retention_deleted_objects_total",
		Help: "Checkpoints that checkpoint retention on this replica deleted, each an artifact " +
			"row: one object, or every object under a prefix.",
	})
	m.retentionBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "schedulerd_retention_deleted_bytes_total",
		Help: "Bytes of the checkpoint objects that checkpoint retention on this replica deleted.",
	})

	reg.MustRegister(m.admissions, m.dequeueSeconds, m.loopErrors, m.dispatchSeconds,
		m.startWaitSeconds, m.reconcileSeconds, m.runsEnded, m.gpuWaits, m.gpuSeconds, m.leader,
		m.httpRequests, m.httpSeconds, m.cronRuns, m.retentionObjects, m.retentionBytes)
	m.initLabels()
	return m
}

func withDefaults(opts Options) Options {
	if len(opts.Tiers) == 0 {
		opts.Tiers = []Tier{{Name: "all", MinPriority: 0}}
	}
	if len(opts.CronTasks) == 0 {
		opts.CronTasks = []string{"partitions", "retention", "budgets"}
	}
	if opts.DatabaseTimeout <= 0 {
		opts.DatabaseTimeout = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

// initLabels creates every series of a fixed enumeration at zero, so that rate() and
// increase() see the first event and dashboards show zero rather than no data.
func (m *Metrics) initLabels() {
	for _, r := range admissionResults {
		m.admissions.WithLabelValues(r)
	}
	for _, l := range loops {
		m.loopErrors.WithLabelValues(l)
	}
	for _, c := range runEndCauses {
		m.runsEnded.WithLabelValues(c)
	}
	for _, t := range m.opts.Tiers {
		m.startWaitSeconds.WithLabelValues(t.Name)
	}
	for _, task := range m.opts.CronTasks {
		m.cronRuns.WithLabelValues(task, "success")
		m.cronRuns.WithLabelValues(task, "failure")
	}
}

// Admissions counts one dequeue's decisions: admitted jobs and, for each refusal, its
// result (one of the Admission* constants).
func (m *Metrics) Admissions(admitted int, refusals []string) {
	if m == nil {
		return
	}
	m.admissions.WithLabelValues(AdmissionAdmitted).Add(float64(admitted))
	for _, result := range refusals {
		m.admissions.WithLabelValues(result).Inc()
	}
}

// ObserveDequeue records the duration of one dequeue transaction.
func (m *Metrics) ObserveDequeue(d time.Duration) {
	if m == nil {
		return
	}
	m.dequeueSeconds.Observe(d.Seconds())
}

// LoopError counts a failed iteration of loop, one of the Loop* constants.
func (m *Metrics) LoopError(loop string) {
	if m == nil {
		return
	}
	m.loopErrors.WithLabelValues(loop).Inc()
}

// ObserveDispatch records the time from a run's admission to its pod's creation.
func (m *Metrics) ObserveDispatch(d time.Duration) {
	if m == nil {
		return
	}
	m.dispatchSeconds.Observe(max(d, 0).Seconds())
}

// ObserveSubmitToRunning records the time from a job's submission to its first run's start,
// in the tier of the job's priority.
func (m *Metrics) ObserveSubmitToRunning(priority int, d time.Duration) {
	if m == nil {
		return
	}
	m.startWaitSeconds.WithLabelValues(m.TierOf(priority)).Observe(max(d, 0).Seconds())
}

// ObserveReconcile records the duration of one reconcile.
func (m *Metrics) ObserveReconcile(d time.Duration) {
	if m == nil {
		return
	}
	m.reconcileSeconds.Observe(d.Seconds())
}

// RunEnded counts a run's end by cause (one of the Cause* constants) and adds the GPU-hours
// it used to its project's GPU time.
func (m *Metrics) RunEnded(cause, project string, gpuHours float64) {
	if m == nil {
		return
	}
	m.runsEnded.WithLabelValues(cause).Inc()
	if project == "" {
		return
	}
	m.mu.Lock()
	m.projects[project] = true
	m.mu.Unlock()
	m.gpuSeconds.WithLabelValues(project).Add(max(gpuHours, 0) * 3600)
}

// PodWaitsForGPUs counts a run whose unschedulable pod keeps waiting for GPUs that other
// pods use.
func (m *Metrics) PodWaitsForGPUs() {
	if m == nil {
		return
	}
	m.gpuWaits.Inc()
}

// SetLeader records whether this replica holds the leader lease.
func (m *Metrics) SetLeader(leading bool) {
	if m == nil {
		return
	}
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// TierOf returns the name of the tier that priority falls in.
func (m *Metrics) TierOf(priority int) string {
	tiers := withDefaults(Options{}).Tiers
	if m != nil {
		tiers = m.opts.Tiers
	}
	for _, t := range tiers {
		if priority >= t.MinPriority {
			return t.Name
		}
	}
	return tiers[len(tiers)-1].Name
}

// syncProjects gives every project in live a GPU time series, at 0 until one of its runs
// ends, and deletes the series of every project not in live. Without the zero,
// increase() would leave out the first run that ends after a project's creation or a
// replica's start, because a series that appears with a value has no earlier sample.
func (m *Metrics) syncProjects(live map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for project := range live {
		m.gpuSeconds.WithLabelValues(project)
		m.projects[project] = true
	}
	for project := range m.projects {
		if !live[project] {
			m.gpuSeconds.DeleteLabelValues(project)
			delete(m.projects, project)
		}
	}
}

func tierNames(tiers []Tier) []string {
	names := make([]string, len(tiers))
	for i, t := range tiers {
		names[i] = t.Name
	}
	return names
}

// labelList writes label values for a Help text: "a, b or c".
func labelList(values []string) string {
	if len(values) <= 1 {
		return strings.Join(values, "")
	}
	return strings.Join(values[:len(values)-1], ", ") + " or " + values[len(values)-1]
}
