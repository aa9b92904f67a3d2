package daemon_test

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// podCreations counts, from a watch of a namespace, every pod added: by pod name, by job
// and by the manager (the creating client's user agent).
type podCreations struct {
	mu        sync.Mutex
	byPod     map[string]int
	byJob     map[string]int
	byManager map[string]int
	closed    bool
	err       error // the watch's error event, which ends it
}

func watchPodCreations(t *testing.T, namespace string) *podCreations {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// A RetryWatcher resumes from the last event after the apiserver closes a watch, which
	// it does to a watcher that falls behind a burst of events.
	list, err := daemontest.Kube.Clientset.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lw := cache.NewListWatchFromClient(daemontest.Kube.Clientset.CoreV1().RESTClient(), "pods", namespace,
		fields.Everything())
	w, err := watchtools.NewRetryWatcherWithContext(ctx, list.ResourceVersion, lw)
	if err != nil {
		t.Fatal(err)
	}
	c := &podCreations{byPod: map[string]int{}, byJob: map[string]int{}, byManager: map[string]int{}}

	go func() {
		defer func() { c.mu.Lock(); c.closed = true; c.mu.Unlock() }()
		for event := range w.ResultChan() {
			if event.Type == watch.Error {
				c.mu.Lock()
				c.err = apierrors.FromObject(event.Object)
				c.mu.Unlock()
				return
			}
			pod, ok := event.Object.(*corev1.Pod)
			if event.Type != watch.Added || !ok {
				continue
			}
			c.mu.Lock()
			c.byPod[pod.Name]++
			c.byJob[pod.Labels[dispatcher.LabelJobID]]++
			if len(pod.ManagedFields) > 0 {
				c.byManager[pod.ManagedFields[0].Manager]++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func countJobs(t *testing.T, s *store.Store, status store.JobStatus) int {
	t.Helper()
	var n int
	err := s.Pool().QueryRow(context.Background(), `SELECT count(*) FROM jobs WHERE status = $1`, status).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// queryInt runs a query that returns one integer.
func queryInt(t *testing.T, s *store.Store, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := s.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestThreeReplicasDispatchEachJobOnce runs three daemons on one database and one
// apiserver. 1,000 one-second jobs must each get exactly one run and one pod, while only
// the Lease holder runs the loops and the first leader hands over midway.
func TestThreeReplicasDispatchEachJobOnce(t *testing.T) {
	const jobs, handoverAt = 1000, 300
	leaseName := uniqueName("lease")
	first, _ := replica{name: "replica-a", lease: leaseName}.start(t, fastElection)
	harnesses := map[string]*daemontest.Harness{"replica-a": first}
	for _, name := range []string{"replica-b", "replica-c"} {
		harnesses[name], _ = replica{name: name, lease: leaseName, store: first.Store}.start(t, fastElection)
	}
	leaders := func() []string {
		var names []string
		for name, h := range harnesses {
			if h.Daemon.Leading() {
				names = append(names, name)
			}
		}
		return names
	}
	waitFor(t, wait, "a leader", func() bool { return len(leaders()) == 1 })

	model := gpuNodes(t, 16, 8)
	project := first.Project("vision", 1e6, jobs)
	created := watchPodCreations(t, project.K8sNamespace)
	for range jobs {
		first.Submit("vision", 50, gpuSpec(model, &jobspec.Simulation{RunSeconds: 1}))
	}

	// Poll to the end, checking at every poll that at most one replica leads, and stop
	// the leader once handoverAt jobs have completed.
	seenLeaders := map[string]bool{}
	stopped := ""
	deadline := time.Now().Add(10 * time.Minute)
	for countJobs(t, first.Store, store.JobCompleted) < jobs {
		current := leaders()
		if len(current) > 1 {
			t.Fatalf("replicas %v lead at once", current)
		}
		for _, name := range current {
			seenLeaders[name] = true
		}
		if stopped == "" && len(current) == 1 && countJobs(t, first.Store, store.JobCompleted) >= handoverAt {
			stopped = current[0]
			start := time.Now()
			if err := harnesses[stopped].Shutdown(); err != nil {
				t.Fatalf("leader %s: %v", stopped, err)
			}
			delete(harnesses, stopped)
			t.Logf("stopped leader %s in %s", stopped, time.Since(start).Round(time.Millisecond))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs completed within 10 minutes", countJobs(t, first.Store, store.JobCompleted), jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if stopped == "" || len(seenLeaders) < 2 {
		t.Errorf("leaders seen %v, stopped %q: want a handover from the stopped leader to another", seenLeaders, stopped)
	}

	if n := queryInt(t, first.Store, `SELECT count(*) FROM runs`); n != jobs {
		t.Errorf("%d runs for %d jobs, want one each", n, jobs)
	}
	if n := queryInt(t, first.Store, `SELECT count(*) FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(*) > 1) x`); n != 0 {
		t.Errorf("%d jobs have more than one run", n)
	}

	// Every pod is created before its run completes, so all creations have been seen.
	waitFor(t, wait, "every pod creation seen", func() bool {
		created.mu.Lock()
		defer created.mu.Unlock()
		return len(created.byJob) == jobs || created.closed
	})
	created.mu.Lock()
	defer created.mu.Unlock()
	if created.closed && len(created.byJob) < jobs {
		t.Fatalf("the pod watch ended after %d jobs' pods: %v", len(created.byJob), created.err)
	}
	if len(created.byJob) != jobs {
		t.Errorf("pods of %d jobs created, want %d", len(created.byJob), jobs)
	}
	for job, n := range created.byJob {
		if n != 1 {
			t.Errorf("job %s: %d pods created, want 1", job, n)
		}
	}
	for manager, n := range created.byManager {
		if !seenLeaders[manager] {
			t.Errorf("%s, which never led, created %d pods", manager, n)
		}
	}
	t.Logf("pods created by replica: %v", created.byManager)
}

// TestShutdownMidDispatchIsRecoverable stops a leader (as SIGTERM does) while it dispatches
// many jobs. Every job must be left queued or running with at most one pod, the Lease
// released, and a second daemon must bring every job to running with exactly one pod.
func TestShutdownMidDispatchIsRecoverable(t *testing.T) {
	const jobs = 200
	leaseName := uniqueName("lease")
	first, _ := replica{name: "shutdown-a", lease: leaseName}.start(t, fastElection)
	waitFor(t, wait, "leadership", first.Daemon.Leading)
	model := gpuNodes(t, 25, 8)
	project := first.Project("vision", 1e6, jobs)
	for range jobs {
		// No simulated run time: the pods run until deleted.
		first.Submit("vision", 50, gpuSpec(model, nil))
	}
	waitFor(t, wait, "dispatch under way", func() bool {
		return queryInt(t, first.Store, `SELECT count(*) FROM runs`) >= jobs/4
	})

	start := time.Now()
	if err := first.Shutdown(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("shutdown took %s", took.Round(time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("shutdown took %s, want under 10s (the pod's grace period is 30s)", took)
	}
	if got := holder(lease(t, leaseName)); got != "" {
		t.Errorf("Lease still held by %q after a clean shutdown, want released", got)
	}

	// The state left behind: no job lost or doubled.
	s := first.Store
	if n := countJobs(t, s, store.JobQueued) + countJobs(t, s, store.JobRunning); n != jobs {
		t.Errorf("%d jobs queued or running after the shutdown, want all %d", n, jobs)
	}
	if n := queryInt(t, s, `SELECT count(*) FROM runs WHERE status NOT IN ('pending', 'running')`); n != 0 {
		t.Errorf("%d runs ended during the shutdown, want none", n)
	}
	if n := queryInt(t, s, `SELECT count(*) FROM jobs WHERE status = 'running' AND run_count <> 1`); n != 0 {
		t.Errorf("%d running jobs have other than one run", n)
	}
	podless := queryInt(t, s, `SELECT count(*) FROM runs WHERE status = 'pending' AND pod_created_at IS NULL`)
	t.Logf("left behind: %d running jobs, %d of their runs without a recorded pod",
		countJobs(t, s, store.JobRunning), podless)

	// A second daemon takes over at once and finishes the dispatch.
	second, _ := replica{name: "shutdown-b", lease: leaseName, store: s}.start(t, fastElection)
	waitFor(t, 5*time.Second, "the second daemon leading (the first released the Lease)", second.Daemon.Leading)
	waitFor(t, 3*time.Minute, "every job running", func() bool {
		return queryInt(t, s, `SELECT count(*) FROM runs WHERE status = 'running'`) == jobs
	})
	if n := queryInt(t, s, `SELECT count(*) FROM runs`); n != jobs {
		t.Errorf("%d runs for %d jobs, want one each", n, jobs)
	}

	pods, err := daemontest.Kube.Clientset.CoreV1().Pods(project.K8sNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	perJob := map[string]int{}
	for _, p := range pods.Items {
		perJob[p.Labels[dispatcher.LabelJobID]]++
	}
	if len(perJob) != jobs {
		t.Errorf("pods of %d jobs exist, want %d", len(perJob), jobs)
	}
	for job, n := range perJob {
		if n != 1 {
			t.Errorf("job %s has %d pods, want 1", job, n)
		}
	}
}
