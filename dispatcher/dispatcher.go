// Package dispatcher turns admitted runs into pods and follows each pod to its end. It is
// the only part of schedulerd that talks to Kubernetes. It decides nothing about which job
// runs next (the scheduler does); it records what the pods say: a run started, ended and
// how, and frees what the run held so the scheduler can admit more.
//
// Every run is reconciled the same way, whatever woke it: an admission, a pod event, a node
// event or the periodic resync. Reconciling reads the run from the database and its pod
// from the informer cache, and makes one guarded change. That makes a crash at any point
// safe: the next reconcile of the run finds the pod it created (pod names derive from job
// and run number) or sees it missing, and nothing is counted twice.
package dispatcher

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// Config tunes the dispatcher. Zero values take the defaults in parentheses.
type Config struct {
	// Workers reconcile runs in parallel (32). Pod creation is most of their work, so this
	// and the client's QPS bound the dispatch rate.
	Workers int
	// UnschedulableTimeout is how long a pod may stay unschedulable before its job is
	// requeued and its reservation released (5m). A pod that waits only for GPUs that other
	// pods use keeps waiting past it (waitsForGPUs), up to GPUWaitTimeout.
	UnschedulableTimeout time.Duration
	// GPUWaitTimeout is how long in all a pod that waits only for GPUs that other pods use
	// may stay unschedulable (1h). Past it the pod ends like any unschedulable pod, and the
	// preemption counts. A job whose GPUs no pod frees then fails at max_preemptions, and
	// does not hold its concurrency slot and reservation for ever. At or below
	// UnschedulableTimeout no pod waits for GPUs past that timeout.
	GPUWaitTimeout time.Duration
	// ImagePullGrace is how long a pod's container may wait with ErrImagePull,
	// ImagePullBackOff, CreateContainerError or a missing Secret, counted from the first such
	// wait that the dispatcher saw (containerWaitStart), before the run fails (5m). Until then
	// the kubelet retries, and a registry timeout or rate limit may pass. The periodic resync
	// judges a pod whose status no longer changes, so a run fails up to ResyncInterval after
	// the grace.
	ImagePullGrace time.Duration
	// PodTolerations are extra tolerations (none) for GPU nodes tainted by the operator,
	// such as dedicated=ml:NoSchedule, or copies of those the cluster adds to pods at
	// admission. GPU pods get them after the GPU resources' tolerations, and the GPU
	// capacity count judges node taints against that same list. Pods without GPUs get them
	// too, as a namespace's default tolerations would be added to every pod. The daemon's
	// settings check validates them as kube-apiserver would.
	PodTolerations []corev1.Toleration
	// ResyncInterval is how often every live run is reconciled even without events (10s).
	// It catches timeouts, pods lost while the daemon was down and missed events.
	ResyncInterval time.Duration
	// DeadlineGrace is how long past its max_runtime_seconds a running pod may go before the
	// dispatcher stops it (10m). A kubelet enforces the pod's activeDeadlineSeconds itself;
	// this is the backstop for pods whose kubelet does not, such as KWOK's simulated ones,
	// whose ends lag under load.
	DeadlineGrace time.Duration
	// Fence, when set, is called right before each pod creation, and an error puts the
	// creation off to a later reconcile. The daemon fails it while this replica's Lease may
	// have passed to another replica, as after the process was frozen: the run it read
	// before may have ended since, and its pod been deleted.
	Fence func() error
	// OnRunEnded is called after each run's end is recorded; the daemon wakes the scheduler.
	OnRunEnded func(store.RunEndResult)
	// OnCapacityChanged is called after the GPU capacity stored for admission changed.
	OnCapacityChanged func()
	// Now returns the current time (time.Now).
	Now func() time.Time
	// Metrics receives dispatch latencies, run ends and loop errors; nil records nothing.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// limits returns the durations Judge needs from the configuration.
func (c Config) limits() Limits {
	return Limits{UnschedulableTimeout: c.UnschedulableTimeout, ImagePullGrace: c.ImagePullGrace}
}

// Dispatcher creates and follows the pods of runs.
type Dispatcher struct {
	cfg    Config
	client kubernetes.Interface
	store  *store.Store
	runs   *runReader

	pods      corelisters.PodLister
	podIndex  cache.Indexer
	nodes     corelisters.NodeLister
	factories []informers.SharedInformerFactory
	queue     workqueue.TypedRateLimitingInterface[uuid.UUID]
	marks     *createdMarks

	namespaces        sync.Map // namespaces known to exist
	terminating       sync.Map // run ID to the store.RunEnd of its pod's deletion by someone else
	finished          sync.Map // run ID to the last state of its finished pod, once deleted
	deletedUnfinished sync.Map // run ID to the last state of its pod deleted before it finished
	waitingAtStart    sync.Map // run IDs whose pods waited for a cause that mayPass at the first cache sync
	capacityDirty     atomic.Bool
	synced            atomic.Bool

	// gpuPodTolerations are the tolerations of every GPU pod, which node updates are judged
	// against.
	gpuPodTolerations []corev1.Toleration
}

// New returns a dispatcher; Run starts it.
func New(client kubernetes.Interface, s *store.Store, cfg Config) *Dispatcher {
	cfg = withDefaults(cfg)
	d := &Dispatcher{cfg: cfg, client: client, store: s, runs: newRunReader(s),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[uuid.UUID](),
			workqueue.TypedRateLimitingQueueConfig[uuid.UUID]{Name: "runs"}),
		marks:             newCreatedMarks(),
		gpuPodTolerations: podTolerations(true, cfg.PodTolerations),
	}
	d.setUpInformers()
	return d
}

func withDefaults(cfg Config) Config {
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.UnschedulableTimeout <= 0 {
		cfg.UnschedulableTimeout = 5 * time.Minute
	}
	if cfg.GPUWaitTimeout <= 0 {
		cfg.GPUWaitTimeout = time.Hour
	}
	if cfg.ImagePullGrace <= 0 {
		cfg.ImagePullGrace = 5 * time.Minute
	}
	if cfg.DeadlineGrace <= 0 {
		cfg.DeadlineGrace = 10 * time.Minute
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 10 * time.Second
	}
	if cfg.Fence == nil {
		cfg.Fence = func() error { return nil }
	}
	if cfg.OnRunEnded == nil {
		cfg.OnRunEnded = func(store.RunEndResult) {}
	}
	if cfg.OnCapacityChanged == nil {
		cfg.OnCapacityChanged = func() {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Enqueue asks for the runs of new admissions to be reconciled, which creates their pods.
func (d *Dispatcher) Enqueue(admissions []store.Admission) {
	for _, a := range admissions {
		d.queue.Add(a.RunID)
	}
}

// Synced reports whether the first resync with the live pods has finished.
func (d *Dispatcher) Synced() bool { return d.synced.Load() }

// Run follows pods until ctx ends. Before it reconciles anything it waits for the informer
// caches to hold the live pods and nodes, so that a restart adopts running pods instead of
// taking them for lost.
func (d *Dispatcher) Run(ctx context.Context) error {
	log := d.cfg.Logger
	if err := d.ensurePriorityClasses(ctx); err != nil {
		return err
	}

	// Step 1: fill the caches with the live pods and nodes.
	for _, f := range d.factories {
		f.Start(ctx.Done())
	}
	for _, f := range d.factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				return contextErrorf(ctx, "wait for the %v cache", typ)
			}
		}
	}

	// Step 2: count GPU capacity and reconcile every live run once.
	if err := d.syncCapacity(ctx); err != nil {
		log.Error("GPU capacity sync failed", "err", err)
	}
	if err := d.noteWaitsAtStart(); err != nil {
		return err
	}
	if err := d.firstResync(ctx); err != nil {
		return err
	}
	d.synced.Store(true)
	log.Info("dispatcher synced with the cluster", "pods", len(d.podIndex.ListKeys()))

	// Step 3: work until ctx ends.
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() { d.work(ctx) })
	}
	wg.Go(func() { d.loopMarks(ctx) })
	wg.Go(func() { d.loopCapacity(ctx) })
	wg.Go(func() { d.loopResync(ctx) })

	<-ctx.Done()
	d.queue.ShutDown()
	wg.Wait()
	for _, f := range d.factories {
		f.Shutdown()
	}
	return nil
}

func (d *Dispatcher) work(ctx context.Context) {
	for {
		runID, shutdown := d.queue.Get()
		if shutdown {
			return
		}
		start := time.Now()
		err := d.reconcile(ctx, runID)
		d.cfg.Metrics.ObserveReconcile(time.Since(start))
		switch {
		case err == nil:
			d.queue.Forget(runID)
		case ctx.Err() != nil:
		default:
			d.cfg.Metrics.LoopError(metrics.LoopReconcile)
			d.cfg.Logger.Warn("reconcile failed; retrying", "run_id", runID, "err", err)
			d.queue.AddRateLimited(runID)
		}
		d.queue.Done(runID)
	}
}

func (d *Dispatcher) loopResync(ctx context.Context) {
	ticker := time.NewTicker(d.cfg.ResyncInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := d.resync(ctx); err != nil && ctx.Err() == nil {
				d.cfg.Metrics.LoopError(metrics.LoopResync)
				d.cfg.Logger.Error("resync failed", "err", err)
			}
		}
	}
}

// resync queues every live run and every pod of ours, so that runs without events are
// judged (timeouts, pods lost while the daemon was down) and pods of ended runs are removed.
func (d *Dispatcher) resync(ctx context.Context) error {
	runs, err := d.store.ListLiveRunIDs(ctx)
	if err != nil {
		return err
	}
	for _, id := range runs {
		d.queue.Add(id)
	}

	pods, err := d.pods.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, p := range pods {
		if id, ok := runIDOf(p); ok {
			d.queue.Add(id)
		}
	}
	return nil
}

func runIDOf(pod *corev1.Pod) (uuid.UUID, bool) {
	id, err := uuid.Parse(pod.Labels[LabelRunID])
	return id, err == nil
}
