package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/store"
)

// DisruptionTarget reasons that Kubernetes 1.37 components write and k8s.io/api has no
// constants for. The API server's Eviction API writes the first
// (pkg/registry/core/pod/storage/eviction.go). The taint eviction controller of
// kube-controller-manager writes the second for a NoExecute taint the pod does not tolerate
// (pkg/controller/tainteviction). The pod garbage collector writes the third for a pod
// whose node no longer exists (pkg/controller/podgc).
const (
	reasonEvictionAPI  = "EvictionByEvictionAPI"
	reasonTaintManager = "DeletionByTaintManager"
	reasonPodGC        = "DeletionByPodGC"
)

// nodeShutdownReason is the pod status reason that the kubelet's graceful node shutdown
// writes, beside a DisruptionTarget condition with reason TerminationByKubelet
// (pkg/kubelet/nodeshutdown in Kubernetes 1.37). Nothing else in Kubernetes 1.37 writes it
// as a pod's reason.
const nodeShutdownReason = "Terminated"

// nodeShutdownRejectedReason is the pod status reason of a pod that the kubelet rejects at
// admission because its node is shutting down (NodeShutdownNotAdmittedReason in the
// kubelet's pkg/kubelet/nodeshutdown). The pod fails without a DisruptionTarget condition,
// and its container never starts.
const nodeShutdownRejectedReason = "NodeShutdown"

// notCountedPrefix starts the part of an end reason that gives the cause of a preemption
// that does not count toward the job's max_preemptions.
const notCountedPrefix = "; not counted: "

// NodeFacts is the part of a node's state that Judge reads for a pod bound to the node, as
// of when the dispatcher judges the pod. The zero value is for a node it cannot find.
type NodeFacts struct {
	// Cordoned is the node's spec.unschedulable, which kubectl cordon and kubectl drain set.
	Cordoned bool
	// DownTaint is the key of the NoExecute taint that the node lifecycle controller puts on
	// a node whose kubelet stopped reporting (node.kubernetes.io/unreachable) or reports the
	// node not ready (node.kubernetes.io/not-ready), or "" when the node has neither.
	DownTaint string
	// NotReady is the status of the node's Ready condition when it is not True ("False" or
	// "Unknown"), "missing" when the node has no Ready condition, and "" when it is True.
	NotReady string
}

// nodeFactsOf returns the facts of node, or the zero facts for nil.
func nodeFactsOf(node *corev1.Node) NodeFacts {
	if node == nil {
		return NodeFacts{}
	}
	facts := NodeFacts{Cordoned: node.Spec.Unschedulable, NotReady: "missing"}
	for _, taint := range node.Spec.Taints {
		if taint.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if taint.Key == corev1.TaintNodeUnreachable || taint.Key == corev1.TaintNodeNotReady {
			facts.DownTaint = taint.Key
			break
		}
	}
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			facts.NotReady = ""
			if c.Status != corev1.ConditionTrue {
				facts.NotReady = string(c.Status)
			}
			break
		}
	}
	return facts
}

// nodeFacts returns the facts of the named node from the node informer's cache. An unbound
// pod, or a node the cache lacks, gets the zero facts, so its disruption counts. An
// informer's lister fails only with NotFound.
func (d *Dispatcher) nodeFacts(name string) NodeFacts {
	if name == "" {
		return NodeFacts{}
	}
	node, err := d.nodes.Get(name)
	if err != nil {
		return NodeFacts{}
	}
	return nodeFactsOf(node)
}

// down returns why the node runs no pods, or "" while it is Ready and has neither the
// unreachable nor the not-ready taint.
func (n NodeFacts) down(name string) string {
	switch {
	case n.DownTaint != "":
		return fmt.Sprintf("node %s has the taint %s", name, n.DownTaint)
	case n.NotReady != "":
		return fmt.Sprintf("node %s is not ready (Ready condition %s)", name, n.NotReady)
	}
	return ""
}

// disruptionTarget returns the reason of the pod's DisruptionTarget condition, or "" when
// the pod has none that is True. The component that disrupts a pod sets this condition
// before it deletes or stops the pod, and a later disruption replaces its reason.
func disruptionTarget(pod *corev1.Pod) string {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return c.Reason
		}
	}
	return ""
}

// uncountedDisruption returns why the disruption of pod does not count toward its job's
// max_preemptions, or "" when it counts. These disruptions come from the node, not from
// the job:
//   - an Eviction API eviction while the node is cordoned, which is what kubectl drain does;
//   - a taint eviction while the node has the unreachable or not-ready taint;
//   - a deletion by the pod garbage collector, which it makes only when the node is gone;
//   - the kubelet's graceful node shutdown, and its rejection of a pod while the node
//     shuts down.
//
// A kubelet's node-pressure eviction (TerminationByKubelet with reason Evicted), a
// preemption by kube-scheduler (PreemptionByScheduler) and an Eviction API eviction on a
// schedulable node count.
func uncountedDisruption(pod *corev1.Pod, node NodeFacts) string {
	name := pod.Spec.NodeName
	if pod.Status.Reason == nodeShutdownRejectedReason {
		return fmt.Sprintf("node %s is shutting down", name)
	}
	switch disruptionTarget(pod) {
	case reasonEvictionAPI:
		if node.Cordoned {
			return fmt.Sprintf("node %s is cordoned, so the eviction is part of a drain", name)
		}
	case reasonTaintManager:
		if node.DownTaint != "" {
			return node.down(name)
		}
	case reasonPodGC:
		return fmt.Sprintf("node %s no longer exists", name)
	case corev1.PodReasonTerminationByKubelet:
		if pod.Status.Reason == nodeShutdownReason {
			return fmt.Sprintf("node %s shut down", name)
		}
	}
	return ""
}

// podNodeFacts returns the facts of the pod's node for Judge. An Eviction API eviction on a
// node that the cache shows schedulable is checked against the API server. kubectl drain
// evicts right after it cordons the node, so the node watch may deliver the cordon after
// the pod watch delivered the eviction.
func (d *Dispatcher) podNodeFacts(ctx context.Context, pod *corev1.Pod) (NodeFacts, error) {
	name := pod.Spec.NodeName
	facts := d.nodeFacts(name)
	if facts.Cordoned || name == "" || disruptionTarget(pod) != reasonEvictionAPI {
		return facts, nil
	}
	node, err := d.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return facts, nil
	case err != nil:
		return facts, fmt.Errorf("read node %s of evicted pod %s/%s: %w", name, pod.Namespace, pod.Name, err)
	}
	return nodeFactsOf(node), nil
}

// deletedPodEnd returns the end of a run whose pod was deleted before it finished. The end
// is a preemption judged from the pod's last state (onPodDelete) and its node now, or kept
// from while the pod was terminating (keepDisruption). Its reason is "pod deleted" when the
// dispatcher has neither.
func (d *Dispatcher) deletedPodEnd(ctx context.Context, runID uuid.UUID) (store.RunEnd, error) {
	end := store.RunEnd{Status: store.RunPreempted, Reason: "pod deleted"}
	if kept, ok := d.terminating.Load(runID); ok {
		end = kept.(store.RunEnd)
	}
	last, ok := d.deletedUnfinished.Load(runID)
	if !ok {
		return end, nil
	}
	pod := last.(*corev1.Pod)
	node, err := d.podNodeFacts(ctx, pod)
	if err != nil {
		return end, err
	}
	return d.keptDisruption(runID, disruptionEnd(pod, node, deletionReason(pod), time.Time{})), nil
}

// keepDisruption remembers end, the preempted end judged for the run's pod while someone
// else deletes it, for the run's end once the pod is gone or has finished. An end that does
// not count is kept over a later one that counts, because the node facts behind it may
// change before the pod is gone. For example, the node lifecycle controller removes the
// unreachable taint from a node that came back before its kubelet removes the pod. The
// workqueue never reconciles one run in two workers at once, so the load and store do not
// race.
func (d *Dispatcher) keepDisruption(runID uuid.UUID, end store.RunEnd) {
	if kept, ok := d.terminating.Load(runID); ok && kept.(store.RunEnd).NotCounted && !end.NotCounted {
		return
	}
	end.EndedAt = time.Time{}
	d.terminating.Store(runID, end)
}

// keptDisruption returns end, the run's end as its pod shows it, with the reason of a kept
// disruption that does not count (keepDisruption) when end is a preemption that counts.
// NOTE: what keepDisruption remembers is lost with the process, so a dispatcher that starts
// after the node came back counts the preemption.
func (d *Dispatcher) keptDisruption(runID uuid.UUID, end store.RunEnd) store.RunEnd {
	if end.Status != store.RunPreempted || end.NotCounted {
		return end
	}
	if kept, ok := d.terminating.Load(runID); ok && kept.(store.RunEnd).NotCounted {
		end.Reason, end.NotCounted = kept.(store.RunEnd).Reason, true
	}
	return end
}
