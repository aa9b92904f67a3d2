package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

// latencyNamespace is the namespace of the latency measurement's pods.
const latencyNamespace = "bench-latency"

// Latency runs a daemon with its production defaults (batch 64, 1 s poll interval,
// 32 dispatcher workers) and measures, per job, the time from the start of SubmitJob to the
// moment a watch on the namespace receives the job's pod.
type Latency struct {
	store  *store.Store
	client kubernetes.Interface
	spec   jobspec.Spec
	raw    json.RawMessage

	mu        sync.Mutex
	podSeenAt map[string]time.Time // job id to the first sight of its pod
	seen      chan struct{}

	stop func()
}

// StartLatency creates the latency database, starts the daemon and the pod watch.
func StartLatency(ctx context.Context, env *Env, name string, nodes int) (*Latency, error) {
	client, err := env.KubeClient()
	if err != nil {
		return nil, err
	}
	if err := ensureNodes(ctx, client, nodes); err != nil {
		return nil, err
	}
	pool, err := env.FreshDatabase(ctx, name, 40)
	if err != nil {
		return nil, err
	}
	s := store.New(pool)
	if err := seedProjects(ctx, s, latencyNamespace); err != nil {
		return nil, err
	}
	// Pods run one second, so the daemon ends their runs and deletes them itself.
	spec := jobspec.Spec{Image: "registry.example/bench/train:1", MaxRuntimeSeconds: 3600,
		Resources:  jobspec.Resources{GPUShareMilli: 100, CPUMilli: 10, MemoryMiB: 16},
		Simulation: &jobspec.Simulation{RunSeconds: 1}}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	l := &Latency{store: s, client: client, spec: spec, raw: raw,
		podSeenAt: map[string]time.Time{}, seen: make(chan struct{}, 1)}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d := daemon.New(daemon.Config{Store: s, Kube: client,
		Scheduler: scheduler.Config{Batch: DequeueBatch}, Dispatcher: dispatcher.Config{}})
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(latencyNamespace))
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: l.onPod,
	})
	factory.Start(runCtx.Done())
	factory.WaitForCacheSync(runCtx.Done())

	l.stop = func() {
		cancel()
		<-done
		factory.Shutdown()
	}
	for !d.Dispatcher.Synced() {
		select {
		case err := <-done:
			l.stop = func() { cancel(); factory.Shutdown() }
			l.Stop()
			return nil, fmt.Errorf("daemon stopped during start-up: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return l, nil
}

// Stop stops the daemon and the watch.
func (l *Latency) Stop() { l.stop() }

func (l *Latency) onPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	job := pod.Labels[dispatcher.LabelJobID]
	l.mu.Lock()
	if _, ok := l.podSeenAt[job]; !ok && job != "" {
		l.podSeenAt[job] = now
	}
	l.mu.Unlock()
	select {
	case l.seen <- struct{}{}:
	default:
	}
}

// submit queues one job and returns its id and the time the submission started.
func (l *Latency) submit(ctx context.Context) (uuid.UUID, time.Time, error) {
	started := time.Now()
	job, err := l.store.SubmitJob(ctx, store.Submission{ProjectID: projectID(0), JobType: "fine_tune",
		Priority: 50, Config: l.raw, GPUMilli: l.spec.GPUMilli(), MaxRuntimeSeconds: l.spec.MaxRuntimeSeconds,
		MaxAttempts: 1, MaxPreemptions: l.spec.Preemptions()})
	return job.ID, started, err
}

func (l *Latency) seenAt(job uuid.UUID) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.podSeenAt[job.String()]
	return t, ok
}

// MeasureIdle submits jobs one at a time, each after the previous one's pod appeared and
// 50 ms of quiet, and returns the latencies.
func (l *Latency) MeasureIdle(ctx context.Context, jobs int) ([]time.Duration, error) {
	var latencies []time.Duration
	for range jobs {
		id, started, err := l.submit(ctx)
		if err != nil {
			return nil, err
		}
		deadline := time.After(30 * time.Second)
		for {
			if at, ok := l.seenAt(id); ok {
				latencies = append(latencies, at.Sub(started))
				break
			}
			select {
			case <-l.seen:
			case <-time.After(5 * time.Millisecond):
			case <-deadline:
				return nil, fmt.Errorf("no pod for job %s within 30 s of its submission", id)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return latencies, l.waitIdle(ctx)
}

// MeasureLoaded submits jobs at rate per second, evenly spaced, for duration, and returns
// the latencies of all of them once every pod appeared.
func (l *Latency) MeasureLoaded(ctx context.Context, rate float64, duration time.Duration) ([]time.Duration, error) {
	count := int(rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	type submitted struct {
		id      uuid.UUID
		started time.Time
	}
	results := make([]submitted, count)
	errs := make(chan error, count)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := range count {
		time.Sleep(time.Until(begin.Add(time.Duration(i) * interval)))
		wg.Go(func() {
			id, started, err := l.submit(ctx)
			if err != nil {
				errs <- err
				return
			}
			results[i] = submitted{id, started}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("submit at %.0f jobs/s: %w", rate, err)
	}

	deadline := time.Now().Add(60 * time.Second)
	latencies := make([]time.Duration, 0, count)
	for _, r := range results {
		for {
			if at, ok := l.seenAt(r.id); ok {
				latencies = append(latencies, at.Sub(r.started))
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("no pod for job %s within 60 s of the last submission", r.id)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return latencies, l.waitIdle(ctx)
}

// waitIdle waits until no run is live, so that the next run starts from an idle daemon.
func (l *Latency) waitIdle(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var live int
		err := l.store.Pool().QueryRow(ctx,
			`SELECT count(*) FROM runs WHERE status IN ('pending', 'running')`).Scan(&live)
		if err != nil {
			return err
		}
		if live == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d runs still live 2 minutes after the last submission", live)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
