package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/schedulerd/schedulerd/store"
)

// The messages that Kubernetes 1.37 components write beside the DisruptionTarget reasons.
const (
	evictionAPIMessage  = "Eviction API: evicting"
	taintManagerMessage = "Taint manager: deleting due to NoExecute taint"
	podGCMessage        = "PodGC: node no longer exists"
	shutdownMessage     = "Pod was terminated in response to imminent node shutdown."
	pressureMessage     = "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 9Gi. "
)

// disruptedAt is when the tests' pods were disrupted.
var disruptedAt = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

// readyNode is node-1, Ready, schedulable and without taints.
func readyNode() *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady,
			Status: corev1.ConditionTrue, Reason: "KubeletReady", LastTransitionTime: metav1.NewTime(disruptedAt.Add(-time.Hour))}}}}
}

// cordonedNode is node-1 as kubectl cordon leaves it.
func cordonedNode() *corev1.Node {
	node := readyNode()
	node.Spec.Unschedulable = true
	node.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
	return node
}

// notReadyNode is node-1 with its Ready condition status False (its kubelet reports the node
// not ready) or Unknown (its kubelet stopped reporting), before any taint.
func notReadyNode(status corev1.ConditionStatus) *corev1.Node {
	node := readyNode()
	node.Status.Conditions[0].Status = status
	node.Status.Conditions[0].Reason = "KubeletNotReady"
	if status == corev1.ConditionUnknown {
		node.Status.Conditions[0].Reason = "NodeStatusUnknown"
	}
	return node
}

// downNode is node-1 as the node lifecycle controller leaves it once its kubelet stopped
// reporting (status Unknown, taint key node.kubernetes.io/unreachable) or reports the node
// not ready (status False, taint key node.kubernetes.io/not-ready).
func downNode(status corev1.ConditionStatus, taintKey string) *corev1.Node {
	node := notReadyNode(status)
	added := metav1.NewTime(disruptedAt.Add(-5 * time.Minute))
	node.Spec.Taints = []corev1.Taint{{Key: taintKey, Effect: corev1.TaintEffectNoSchedule},
		{Key: taintKey, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	return node
}

// disruptedPod is a running pod on node-1 with the DisruptionTarget condition of reason and
// message, as the component that disrupts it sets it first.
func disruptedPod(reason, message string) *corev1.Pod {
	pod := runningPod(uuid.New(), disruptedAt.Add(-time.Hour))
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget,
		Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(disruptedAt)})
	return pod
}

// deleting sets the pod's deletion as the API server does for a deletion requested at
// disruptedAt with a 30 s grace period.
func deleting(pod *corev1.Pod) *corev1.Pod {
	grace := int64(30)
	pod.DeletionTimestamp = &metav1.Time{Time: disruptedAt.Add(30 * time.Second)}
	pod.DeletionGracePeriodSeconds = &grace
	return pod
}

// stoppedByKubelet sets the pod Failed, with its container ended by SIGTERM a few seconds
// after disruptedAt, and the status reason and message that the kubelet writes ("" for
// none, as for a deletion).
func stoppedByKubelet(pod *corev1.Pod, reason, message string) *corev1.Pod {
	pod.Status.Phase, pod.Status.Reason, pod.Status.Message = corev1.PodFailed, reason, message
	cs := &pod.Status.ContainerStatuses[0]
	cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error",
		StartedAt: cs.State.Running.StartedAt, FinishedAt: metav1.NewTime(disruptedAt.Add(5 * time.Second))}}
	return pod
}

// failedByPodGC sets the pod Failed as the pod garbage collector does before it deletes the
// pod of a deleted node. No kubelet reported the container's end.
func failedByPodGC(pod *corev1.Pod) *corev1.Pod {
	pod.Status.Phase = corev1.PodFailed
	return pod
}

// shutdownRejected is a pod on node-1 that its kubelet rejected at admission because the
// node shuts down: Failed, without a container status or a DisruptionTarget condition.
func shutdownRejected() *corev1.Pod {
	return &corev1.Pod{Spec: corev1.PodSpec{NodeName: "node-1"}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
		Reason: "NodeShutdown", Message: "Pod was rejected as the node is shutting down."}}
}

// Each disruption is judged from the pod and its node's facts. The ones the node caused (a
// drain, an unreachable node, a deleted node, a shutdown) do not count toward
// max_preemptions, and their end reason names the cause. The ones that may come from the job, or from
// a decision to run something else (a node-pressure eviction, kube-scheduler's preemption,
// an eviction of this pod alone), count.
func TestJudgeDisruptionCounting(t *testing.T) {
	now := disruptedAt.Add(10 * time.Second)
	cases := []struct {
		name        string
		pod         *corev1.Pod
		node        *corev1.Node
		verdict     Verdict
		reason      string
		notCounted  bool
		wantEndedAt time.Time
	}{
		{"eviction on a cordoned node", deleting(disruptedPod(reasonEvictionAPI, evictionAPIMessage)),
			cordonedNode(), Terminating,
			"EvictionByEvictionAPI; not counted: node node-1 is cordoned, so the eviction is part of a drain", true, now},
		{"eviction on a cordoned node, stopped by its kubelet",
			stoppedByKubelet(deleting(disruptedPod(reasonEvictionAPI, evictionAPIMessage)), "", ""),
			cordonedNode(), Ended,
			"EvictionByEvictionAPI; not counted: node node-1 is cordoned, so the eviction is part of a drain", true,
			disruptedAt.Add(5 * time.Second)},
		{"eviction on a schedulable node", deleting(disruptedPod(reasonEvictionAPI, evictionAPIMessage)),
			readyNode(), Terminating, "EvictionByEvictionAPI", false, now},
		{"eviction on a node the cache lacks", deleting(disruptedPod(reasonEvictionAPI, evictionAPIMessage)),
			nil, Terminating, "EvictionByEvictionAPI", false, now},
		{"node-pressure eviction on a cordoned node",
			stoppedByKubelet(disruptedPod(corev1.PodReasonTerminationByKubelet, pressureMessage), "Evicted", pressureMessage),
			cordonedNode(), Ended, "Evicted", false, disruptedAt.Add(5 * time.Second)},
		{"kube-scheduler preemption", deleting(disruptedPod(corev1.PodReasonPreemptionByScheduler,
			"default-scheduler: preempting to accommodate a higher priority pod")),
			readyNode(), Terminating, "PreemptionByScheduler", false, now},
		{"taint eviction from an unreachable node",
			deleting(disruptedPod(reasonTaintManager, taintManagerMessage)),
			downNode(corev1.ConditionUnknown, corev1.TaintNodeUnreachable), Terminating,
			"DeletionByTaintManager; not counted: node node-1 has the taint node.kubernetes.io/unreachable", true, now},
		{"taint eviction from a not-ready node",
			deleting(disruptedPod(reasonTaintManager, taintManagerMessage)),
			downNode(corev1.ConditionFalse, corev1.TaintNodeNotReady), Terminating,
			"DeletionByTaintManager; not counted: node node-1 has the taint node.kubernetes.io/not-ready", true, now},
		{"taint eviction for an operator's taint",
			deleting(disruptedPod(reasonTaintManager, taintManagerMessage)),
			withTaint(readyNode(), corev1.Taint{Key: "example.com/gpu-fault", Effect: corev1.TaintEffectNoExecute}),
			Terminating, "DeletionByTaintManager", false, now},
		{"pod of a deleted node", failedByPodGC(disruptedPod(reasonPodGC, podGCMessage)), nil, Ended,
			"DeletionByPodGC; not counted: node node-1 no longer exists", true, now},
		{"graceful node shutdown",
			stoppedByKubelet(disruptedPod(corev1.PodReasonTerminationByKubelet, shutdownMessage), "Terminated", shutdownMessage),
			readyNode(), Ended, "Terminated; not counted: node node-1 shut down", true, disruptedAt.Add(5 * time.Second)},
		{"rejected while its node shuts down", shutdownRejected(), readyNode(), Ended,
			"NodeShutdown; not counted: node node-1 is shutting down", true, now},
		{"deletion on an unreachable node, before it is stuck",
			deleting(runningPod(uuid.New(), disruptedAt.Add(-time.Hour))),
			downNode(corev1.ConditionUnknown, corev1.TaintNodeUnreachable), Terminating, "pod deleted", false, now},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obs := Judge(c.pod, nodeFactsOf(c.node), now, testLimits, time.Time{})

			if obs.Verdict != c.verdict {
				t.Fatalf("verdict %d, want %d", obs.Verdict, c.verdict)
			}
			checkPreemptedEnd(t, obs.End, c.reason, c.notCounted)
			if !obs.End.EndedAt.Equal(c.wantEndedAt) {
				t.Errorf("ended at %s, want %s", obs.End.EndedAt, c.wantEndedAt)
			}
		})
	}
}

func withTaint(node *corev1.Node, taint corev1.Taint) *corev1.Node {
	node.Spec.Taints = append(node.Spec.Taints, taint)
	return node
}

// A pod still terminating StuckTerminating past its deletion deadline ends its run at the
// deadline. The preemption does not count when its node is not ready or has the
// unreachable taint, and counts on a node that reports Ready.
func TestJudgeStuckTerminatingNode(t *testing.T) {
	pod := deleting(runningPod(uuid.New(), disruptedAt.Add(-time.Hour)))
	deadline := pod.DeletionTimestamp.Time
	now := deadline.Add(StuckTerminating)
	const stuck = "pod deleted; still terminating 5m0s after its deletion deadline on node node-1"

	cases := []struct {
		name       string
		node       *corev1.Node
		reason     string
		notCounted bool
	}{
		{"unreachable", downNode(corev1.ConditionUnknown, corev1.TaintNodeUnreachable),
			stuck + "; not counted: node node-1 has the taint node.kubernetes.io/unreachable", true},
		{"not ready, not yet tainted", notReadyNode(corev1.ConditionFalse),
			stuck + "; not counted: node node-1 is not ready (Ready condition False)", true},
		{"without a Ready condition", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}},
			stuck + "; not counted: node node-1 is not ready (Ready condition missing)", true},
		{"ready", readyNode(), stuck, false},
		{"missing from the cache", nil, stuck, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			facts := nodeFactsOf(c.node)
			if obs := Judge(pod, facts, now.Add(-time.Second), testLimits, time.Time{}); obs.Verdict != Terminating {
				t.Errorf("verdict %d a second before the limit, want Terminating", obs.Verdict)
			}

			obs := Judge(pod, facts, now, testLimits, time.Time{})
			if obs.Verdict != Ended {
				t.Fatalf("verdict %d at the limit, want Ended", obs.Verdict)
			}
			checkPreemptedEnd(t, obs.End, c.reason, c.notCounted)
			if !obs.End.EndedAt.Equal(deadline) {
				t.Errorf("ended at %s, want the deletion deadline %s", obs.End.EndedAt, deadline)
			}
		})
	}
}

// A taint eviction from an unreachable node that comes back: its node lifecycle controller
// removes the taint before the kubelet stops the pod and the pod is deleted. The run keeps
// the judgement made while the node was tainted, both when the dispatcher judges the Failed
// pod and when it has only the pod's deletion.
func TestUncountedDisruptionKeptAfterNodeReturns(t *testing.T) {
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	d := &Dispatcher{nodes: corelisters.NewNodeLister(nodes), queue: workqueue.NewTypedRateLimitingQueue(
		workqueue.DefaultTypedControllerRateLimiter[uuid.UUID]())}
	defer d.queue.ShutDown()
	run := uuid.New()
	evicted := deleting(disruptedPod(reasonTaintManager, taintManagerMessage))
	evicted.Labels[LabelRunID] = run.String()
	const want = "DeletionByTaintManager; not counted: node node-1 has the taint node.kubernetes.io/unreachable"

	if err := nodes.Add(downNode(corev1.ConditionUnknown, corev1.TaintNodeUnreachable)); err != nil {
		t.Fatal(err)
	}
	terminating := Judge(evicted, d.nodeFacts("node-1"), disruptedAt.Add(10*time.Second), testLimits, time.Time{})
	d.keepDisruption(run, terminating.End)

	if err := nodes.Update(readyNode()); err != nil {
		t.Fatal(err)
	}
	failed := stoppedByKubelet(evicted.DeepCopy(), "", "")
	obs := Judge(failed, d.nodeFacts("node-1"), disruptedAt.Add(time.Minute), testLimits, time.Time{})
	if obs.End.NotCounted {
		t.Fatalf("pod judged alone on the node that came back: not counted, want counted")
	}
	end := d.keptDisruption(run, obs.End)
	if !end.NotCounted {
		t.Error("Failed pod after the node came back: counted, want the kept judgement not counted")
	}
	if end.Reason != want {
		t.Errorf("Failed pod after the node came back: reason %q, want %q", end.Reason, want)
	}
	if !end.EndedAt.Equal(obs.End.EndedAt) {
		t.Errorf("Failed pod after the node came back: ended at %s, want the container's end %s",
			end.EndedAt, obs.End.EndedAt)
	}

	d.onPodDelete(evicted)
	deleted, err := d.deletedPodEnd(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	if !deleted.NotCounted {
		t.Error("deleted pod after the node came back: counted, want the kept judgement not counted")
	}
	if deleted.Reason != want {
		t.Errorf("deleted pod after the node came back: reason %q, want %q", deleted.Reason, want)
	}

	completed := store.RunEnd{Status: store.RunCompleted, Reason: "Completed"}
	if got := d.keptDisruption(run, completed); got != completed {
		t.Errorf("completed run: end %+v, want it unchanged", got)
	}
}

// An Eviction API eviction that the pod watch delivers before the node watch delivers the
// node's cordon is judged with the node as the API server has it.
func TestPodNodeFactsConfirmsCordon(t *testing.T) {
	nodes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	if err := nodes.Add(readyNode()); err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{nodes: corelisters.NewNodeLister(nodes), client: fake.NewClientset(cordonedNode())}
	ctx := context.Background()

	evicted := deleting(disruptedPod(reasonEvictionAPI, evictionAPIMessage))
	facts, err := d.podNodeFacts(ctx, evicted)
	if err != nil {
		t.Fatal(err)
	}
	if !facts.Cordoned {
		t.Error("eviction, cordon not yet in the cache: not cordoned, want the API server's cordon")
	}

	preempted := deleting(disruptedPod(corev1.PodReasonPreemptionByScheduler, "default-scheduler: preempting"))
	facts, err = d.podNodeFacts(ctx, preempted)
	if err != nil {
		t.Fatal(err)
	}
	if facts.Cordoned {
		t.Error("kube-scheduler preemption: cordoned, want the cache's node, which is not")
	}
}

// checkPreemptedEnd checks that end is a preemption with reason, counted unless notCounted.
func checkPreemptedEnd(t *testing.T, end store.RunEnd, reason string, notCounted bool) {
	t.Helper()
	if end.Status != store.RunPreempted {
		t.Errorf("run ends %s, want preempted", end.Status)
	}
	if end.Reason != reason {
		t.Errorf("reason %q, want %q", end.Reason, reason)
	}
	if end.NotCounted != notCounted {
		t.Errorf("not counted %v, want %v", end.NotCounted, notCounted)
	}
}
