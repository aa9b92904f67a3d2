//go:build reliability

package reliability_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/schedulerd/schedulerd/dispatcher"
)

// podLog follows every schedulerd pod of the cluster through one watch for the length of a
// test, and records a violation whenever a job gets a pod while another of its pods is
// still live. A pod is live from its creation until it is Succeeded, Failed or gone. A
// pod that is being deleted still counts, because its container may still run. Events of
// one watch arrive in the apiserver's order, so the check needs no clocks.
type podLog struct {
	kube      kubernetes.Interface
	mu        sync.Mutex
	seen      map[types.UID]bool
	liveByJob map[string]map[types.UID]string // job -> its live pods' names
	created   map[string]map[string]int       // namespace -> job -> pods seen created
	// liveDeletions counts, by namespace, pods whose deletion began while they were live:
	// pods the dispatcher stopped, not the finished ones it cleans up.
	liveDeletions map[string]int
	deleting      map[types.UID]bool
	violations    []string
	ended         bool  // the watch ended before the test stopped it
	err           error // why it ended
}

// watchPods starts a podLog from the current list of pods. It resumes after the apiserver
// closes the watch or goes away, from the last event it saw. After an apiserver restart
// that resource version may be older than the new watch cache (410 Gone). The log then
// lists the pods again and continues from the list. NOTE: a pod created and deleted
// entirely between the last event and the new list goes unseen.
func watchPods(t *testing.T, kube kubernetes.Interface) *podLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := &podLog{kube: kube, seen: map[types.UID]bool{}, liveByJob: map[string]map[types.UID]string{},
		created: map[string]map[string]int{}, liveDeletions: map[string]int{}, deleting: map[types.UID]bool{}}
	version, err := l.relist(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go l.follow(ctx, version)
	return l
}

const podSelector = dispatcher.LabelManagedBy + "=" + dispatcher.ManagedByValue

// relist lists the pods, ends the live ones that are gone, observes the rest, and returns
// the list's resource version.
func (l *podLog) relist(ctx context.Context) (string, error) {
	list, err := l.kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: podSelector})
	if err != nil {
		return "", fmt.Errorf("list pods: %w", err)
	}
	present := map[types.UID]bool{}
	for i := range list.Items {
		present[list.Items[i].UID] = true
		l.observe(watch.Modified, &list.Items[i])
	}
	l.mu.Lock()
	var gone []*corev1.Pod
	for job, pods := range l.liveByJob {
		for uid, name := range pods {
			if !present[uid] {
				gone = append(gone, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid, Name: name,
					Labels: map[string]string{dispatcher.LabelJobID: job}}})
			}
		}
	}
	l.mu.Unlock()
	for _, pod := range gone {
		l.observe(watch.Deleted, pod)
	}
	return list.ResourceVersion, nil
}

// follow applies watch events until ctx ends, listing again when the watch's resource
// version has expired.
func (l *podLog) follow(ctx context.Context, version string) {
	for {
		lw := &cache.ListWatch{WatchFuncWithContext: func(ctx context.Context, options metav1.ListOptions) (watch.Interface, error) {
			options.LabelSelector = podSelector
			return l.kube.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, options)
		}}
		w, err := watchtools.NewRetryWatcherWithContext(ctx, version, lw)
		if err != nil {
			l.finish(ctx, err)
			return
		}
		err = l.apply(w)
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
			l.finish(ctx, err)
			return
		}
		if version, err = l.relist(ctx); err != nil {
			l.finish(ctx, err)
			return
		}
	}
}

// apply observes the events of w until it ends, and returns the error event that ended it.
func (l *podLog) apply(w *watchtools.RetryWatcher) error {
	defer w.Stop()
	for event := range w.ResultChan() {
		if event.Type == watch.Error {
			return apierrors.FromObject(event.Object)
		}
		if pod, ok := event.Object.(*corev1.Pod); ok {
			l.observe(event.Type, pod)
		}
	}
	return nil
}

func (l *podLog) finish(ctx context.Context, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ctx.Err() == nil {
		l.ended, l.err = true, err
	}
}

// observe updates the live set with one event.
func (l *podLog) observe(event watch.EventType, pod *corev1.Pod) {
	l.mu.Lock()
	defer l.mu.Unlock()
	job := pod.Labels[dispatcher.LabelJobID]
	ended := event == watch.Deleted ||
		pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	if !l.seen[pod.UID] {
		l.seen[pod.UID] = true
		if l.created[pod.Namespace] == nil {
			l.created[pod.Namespace] = map[string]int{}
		}
		l.created[pod.Namespace][job]++
		if !ended {
			l.start(pod, job)
		}
	}
	_, live := l.liveByJob[job][pod.UID]
	if live && !l.deleting[pod.UID] && (event == watch.Deleted || pod.DeletionTimestamp != nil) {
		l.deleting[pod.UID] = true
		l.liveDeletions[pod.Namespace]++
	}
	if ended {
		delete(l.liveByJob[job], pod.UID)
		if len(l.liveByJob[job]) == 0 {
			delete(l.liveByJob, job)
		}
	}
}

// start adds a new live pod, and records a violation if its job already has one.
func (l *podLog) start(pod *corev1.Pod, job string) {
	others := l.liveByJob[job]
	if len(others) > 0 {
		var names []string
		for _, name := range others {
			names = append(names, name)
		}
		l.violations = append(l.violations, fmt.Sprintf(
			"job %s: pod %s/%s appeared while pods %v of the same job were live",
			job, pod.Namespace, pod.Name, names))
	}
	if others == nil {
		others = map[types.UID]string{}
		l.liveByJob[job] = others
	}
	others[pod.UID] = pod.Name
}

// Violations returns what the watch caught, including its own early end, which would
// leave later pods unchecked.
func (l *podLog) Violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]string(nil), l.violations...)
	if l.ended {
		out = append(out, fmt.Sprintf("the pod watch ended early, so later pods went unchecked: %v", l.err))
	}
	return out
}

// Created returns how many pods of each job of namespace the watch saw appear.
func (l *podLog) Created(namespace string) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.created[namespace]))
	for job, n := range l.created[namespace] {
		out[job] = n
	}
	return out
}

// LiveDeletions returns how many pods of namespace were deleted while live.
func (l *podLog) LiveDeletions(namespace string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.liveDeletions[namespace]
}
