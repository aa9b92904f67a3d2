package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// DispatchWorkers is the dispatcher's default number of reconcile workers; the raw loop
// creates pods with as many goroutines.
const DispatchWorkers = 32

// Dispatch measures pod creation by the dispatcher and by a raw client-go loop, on the
// same API server with the same client settings.
type Dispatch struct {
	env    *Env
	setup  *DequeueSetup
	client kubernetes.Interface
	nodes  int
	pods   int
	trial  int
	kind   jobShape

	// Traced, when set, times the dispatcher's SQL statements and API requests and the raw
	// loop's requests.
	Traced           bool
	DispatcherCalls  CallTimes
	RawLoopCalls     CallTimes
	tracedDispatcher kubernetes.Interface
	tracedRaw        kubernetes.Interface
	tracedPool       *pgxpool.Pool

	// CPU, when set, reads the CPU time of each process during the timed window of each
	// side, into DispatcherCPU and RawLoopCPU.
	CPU           *CPUMeter
	DispatcherCPU CPUUse
	RawLoopCPU    CPUUse
}

// NewDispatch creates the database of the dispatch measurement with pods queued jobs.
func NewDispatch(ctx context.Context, env *Env, name string, pods, nodes int) (*Dispatch, error) {
	client, err := env.KubeClient()
	if err != nil {
		return nil, err
	}
	if err := ensureNodes(ctx, client, nodes); err != nil {
		return nil, err
	}
	pool, err := env.FreshDatabase(ctx, name, 48)
	if err != nil {
		return nil, err
	}
	s := store.New(pool)
	if err := seedProjects(ctx, s, "bench-dispatch"); err != nil {
		return nil, err
	}
	kind, err := sharedShape(0)
	if err != nil {
		return nil, err
	}
	if err := seedQueued(ctx, pool, pods, []jobShape{kind}); err != nil {
		return nil, err
	}
	return &Dispatch{env: env, setup: &DequeueSetup{Pool: pool, Queued: pods}, client: client,
		nodes: nodes, pods: pods, kind: kind}, nil
}

// Trace makes the following runs time their calls, into DispatcherCalls and RawLoopCalls.
func (d *Dispatch) Trace(ctx context.Context, name string) error {
	var err error
	d.tracedPool, err = d.env.TracedPool(ctx, name, 48, &d.DispatcherCalls)
	if err != nil {
		return err
	}
	for _, side := range []struct {
		calls  *CallTimes
		client *kubernetes.Interface
	}{{&d.DispatcherCalls, &d.tracedDispatcher}, {&d.RawLoopCalls, &d.tracedRaw}} {
		cfg := rest.CopyConfig(d.env.Kube)
		cfg.WrapTransport = side.calls.WrapTransport
		if *side.client, err = kubernetes.NewForConfig(cfg); err != nil {
			return err
		}
	}
	d.Traced = true
	return nil
}

// cpuStart starts a timed window on the CPU meter, and returns the function that adds the
// window to use at its end. Without a meter both do nothing.
func (d *Dispatch) cpuStart(use *CPUUse) (stop func()) {
	if d.CPU == nil {
		return func() {}
	}
	return d.CPU.Start(use)
}

// Close closes the database pools.
func (d *Dispatch) Close() {
	d.setup.Pool.Close()
	if d.tracedPool != nil {
		d.tracedPool.Close()
	}
}

// MeasureDispatcher admits every queued job into a new namespace, starts a dispatcher on
// the pending runs and returns the pods it created per second. The clock runs from the end
// of the dispatcher's start-up (caches filled, runs queued) until the last run's pod is
// recorded as created. Each pod goes through the real reconcile path: read the run, look
// for its pod, build and create it, record the creation.
func (d *Dispatch) MeasureDispatcher(ctx context.Context) (float64, error) {
	d.trial++
	ns := fmt.Sprintf("bench-dispatch-%d-%d", time.Now().Unix(), d.trial)
	pool := d.setup.Pool
	s := store.New(pool)
	if _, err := requeue(ctx, pool); err != nil {
		return 0, err
	}
	if err := setNamespace(ctx, pool, ns); err != nil {
		return 0, err
	}
	if err := s.SyncGPUCapacity(ctx, nodeCapacity(d.nodes)); err != nil {
		return 0, err
	}
	run, err := drainQueue(ctx, pool, 1)
	if err != nil {
		return 0, err
	}
	if err := checkDrained(ctx, pool, run, d.pods); err != nil {
		return 0, err
	}

	client, dispatchStore := d.client, s
	if d.Traced {
		client, dispatchStore = d.tracedDispatcher, store.New(d.tracedPool)
	}
	runCtx, cancel := context.WithCancel(ctx)
	reg := prometheus.NewRegistry()
	disp := dispatcher.New(client, dispatchStore, dispatcher.Config{Workers: DispatchWorkers,
		Metrics: metrics.New(reg, metrics.Options{})})
	done := make(chan error, 1)
	go func() { done <- disp.Run(runCtx) }()
	stop := func() error {
		cancel()
		return <-done
	}

	for !disp.Synced() {
		select {
		case err := <-done:
			cancel()
			return 0, fmt.Errorf("dispatcher stopped during start-up: %w", err)
		case <-time.After(time.Millisecond):
		}
	}
	// The clock first waits for the dispatcher's own count of creations, read in this
	// process, and only then for the database to record them all. Counting the runs in the
	// database every 10 ms for the whole window cost PostgreSQL about 0.12 ms of CPU time
	// per pod, 0.43 ms against 0.31 ms with this clock, in development runs on 2 cores. The
	// raw loop does not pay that cost. Gathering the registry takes about 0.1 ms, so it is
	// read every 50 ms, which may add that much to a window of about 20 s.
	cpuStop := d.cpuStart(&d.DispatcherCPU)
	start := time.Now()
	_, err = waitUntil(ctx, func() (int, error) { return podsCreated(reg) }, dispatchHistogram,
		d.pods, 50*time.Millisecond, 10*time.Minute, start)
	var elapsed time.Duration
	if err == nil {
		elapsed, err = waitCount(ctx, pool, `SELECT count(*) FROM runs WHERE pod_created_at IS NOT NULL`,
			d.pods, 10*time.Minute, start)
	}
	cpuStop()
	if stopErr := stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return 0, err
	}
	if err := deletePods(ctx, d.client, ns); err != nil {
		return 0, err
	}
	return Rate(d.pods, elapsed), nil
}

// MeasureRawLoop creates the same number of pods, built by dispatcher.BuildPod with the
// same shape, with DispatchWorkers goroutines calling the client's Create, and returns pods
// per second. The pods name the dispatcher's priority classes, which exist only once a
// dispatcher has run: MeasureDispatcher must run first.
func (d *Dispatch) MeasureRawLoop(ctx context.Context) (float64, error) {
	d.trial++
	ns := fmt.Sprintf("bench-raw-%d-%d", time.Now().Unix(), d.trial)
	if err := ensureNamespace(ctx, d.client, ns); err != nil {
		return 0, err
	}
	spec, err := jobspec.Decode(d.kind.config)
	if err != nil {
		return 0, err
	}
	pods := make(chan *corev1.Pod, d.pods)
	for i := range d.pods {
		jobID := uuid.New()
		pods <- dispatcher.BuildPod(dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(),
			RunID: uuid.New(), RunNumber: 1, ProjectID: projectID(i % benchProjects), Namespace: ns,
			PodName: store.PodName(jobID, 1), Priority: 50, GPUMilli: d.kind.milli,
			GPUModel: benchNodeModel, Spec: spec})
	}
	close(pods)

	client := d.client
	if d.Traced {
		client = d.tracedRaw
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	cpuStop := d.cpuStart(&d.RawLoopCPU)
	start := time.Now()
	for range DispatchWorkers {
		wg.Go(func() {
			for pod := range pods {
				if _, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpuStop()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("raw loop: %d pods not created: %w", len(errs), errs[0])
	}
	if err := deletePods(ctx, d.client, ns); err != nil {
		return 0, err
	}
	return Rate(d.pods, elapsed), nil
}

// waitCount polls query, a count, every 10 ms until it reaches want, and returns the time
// from start until then.
func waitCount(ctx context.Context, q querier, query string, want int, timeout time.Duration,
	start time.Time) (time.Duration, error) {
	count := func() (n int, err error) {
		err = q.QueryRow(ctx, query).Scan(&n)
		return n, err
	}
	return waitUntil(ctx, count, query, want, 10*time.Millisecond, timeout, start)
}

// waitUntil calls count every interval until it returns want or more, and returns the time
// from start until then. what names the count in the timeout's error.
func waitUntil(ctx context.Context, count func() (int, error), what string, want int,
	interval, timeout time.Duration, start time.Time) (time.Duration, error) {
	deadline := start.Add(timeout)
	for {
		got, err := count()
		if err != nil {
			return 0, err
		}
		if got >= want {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d after %s: %s", got, want, timeout, what)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// podsCreated returns how many pods the dispatcher reports created, from the sample count
// of its dispatch histogram in reg.
func podsCreated(reg prometheus.Gatherer) (int, error) {
	families, err := reg.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather the dispatcher's metrics: %w", err)
	}
	for _, f := range families {
		if f.GetName() != dispatchHistogram {
			continue
		}
		n := 0
		for _, m := range f.GetMetric() {
			n += int(m.GetHistogram().GetSampleCount())
		}
		return n, nil
	}
	return 0, fmt.Errorf("the dispatcher's metrics have no %s", dispatchHistogram)
}

// dispatchHistogram is the metric that the dispatcher observes once per pod it creates.
const dispatchHistogram = "schedulerd_dispatch_duration_seconds"
