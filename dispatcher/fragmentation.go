package dispatcher

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// GPU fragmentation. Admission counts a GPU model's free GPUs as one sum, so it admits a
// job whose GPUs are free in total but on no single node, and the job's pod then stays
// unschedulable. Deleting such a pod at the unschedulable timeout and requeueing its job
// would count a preemption that no one made, and a large job on a busy cluster would fail
// at max_preemptions. The next dequeue would also admit it again at once, into the same
// shortage. Instead, a pod that only lacks GPUs that other pods use keeps waiting, with no
// new pod and no counted preemption. kube-scheduler tries it again when a pod ends, and its
// GPUs stay in the model's allocated count, so the scheduler admits fewer other jobs of the
// model meanwhile. Its job's wait reason gives the cause (store.ReasonPodWaitsForGPUs), and
// schedulerd_gpu_fragmentation_waits_total counts it once per run.
//
// The judgement is conservative, so that a pod that no node can ever hold still ends at the
// timeout and counts toward max_preemptions: both kube-scheduler's message and the node
// cache must show that only GPUs in use keep the pod off (waitsForGPUs).
//
// The wait lasts at most Config.GPUWaitTimeout from the time the pod became unschedulable.
// Then the pod ends as at the unschedulable timeout, counted, and its end reason names the
// GPU wait timeout.
//
// NOTE: the allocated count holds GPUs of the model, not of a node. When a node's GPUs free
// up, the scheduler may admit smaller jobs into them, and kube-scheduler may place those
// first, so a large job can wait as long as smaller ones keep coming, up to GPUWaitTimeout
// for each run. Meanwhile the job holds its concurrency slot and GPU-hour reservation.

// Reasons in kube-scheduler's unschedulable message (Kubernetes 1.37: the NodeAffinity,
// NodeUnschedulable and TaintToleration plugins of pkg/scheduler/framework/plugins) for a
// node that the pod may not use at all, whatever runs on it.
var excludedNodeReasons = map[string]bool{
	"node(s) didn't match Pod's node affinity/selector": true,
	"node(s) were unschedulable":                        true,
	"node(s) had untolerated taint(s)":                  true,
}

// gpuShortReasons are the reasons of kube-scheduler's NodeResourcesFit plugin for a node
// whose free GPUs are fewer than the pod requests.
var gpuShortReasons = map[string]bool{
	"Insufficient " + string(GPUResource):      true,
	"Insufficient " + string(GPUMilliResource): true,
}

// onlyGPUsShort reports whether message, the PodScheduled condition's message that
// kube-scheduler wrote for an unschedulable pod, names for each node either a lack of free
// GPUs or a reason the pod may not use it (excludedNodeReasons), and a lack of GPUs for at
// least one.
// kube-scheduler writes "0/N nodes are available: " and then, per reason, how many nodes
// failed for it, such as "0/3 nodes are available: 1 node(s) didn't match Pod's node
// affinity/selector, 2 Insufficient nvidia.com/gpu. preemption: ...". Any other reason
// (Insufficient cpu, say), or a message in another form, returns false.
func onlyGPUsShort(message string) bool {
	_, rest, ok := strings.Cut(message, " nodes are available: ")
	if !ok {
		return false
	}
	// The reasons end at the first ". " or at the message's end. Resource names such as
	// nvidia.com/gpu contain dots, but never a dot before a space.
	reasons, _, _ := strings.Cut(rest, ". ")
	reasons = strings.TrimSuffix(reasons, ".")
	gpuShort := false
	for _, item := range strings.Split(reasons, ", ") {
		count, reason, ok := strings.Cut(item, " ")
		if !ok || strings.Trim(count, "0123456789") != "" || count == "" {
			return false
		}
		switch {
		case gpuShortReasons[reason]:
			gpuShort = true
		case !excludedNodeReasons[reason]:
			return false
		}
	}
	return gpuShort
}

// nodeForRun returns a node of model that could hold the pod of run once other pods on it
// free their GPUs, or "" when none could. Such a node takes new GPU pods (nodeSchedulable)
// and its allocatable resources cover the pod's requests. kube-scheduler reports nodes only
// by count, so this is how the dispatcher tells a GPU shortage from a node too small for
// the pod, whose GPUs never suffice. The requests come from the run's config, as
// BuildPod sets them, because the informer cache keeps no pod spec (stripPod).
// NOTE: containers, requests and tolerations that a webhook adds to the pod are unknown
// here, so a node may pass that kube-scheduler would never use for the pod.
func (d *Dispatcher) nodeForRun(run store.Run, model string) string {
	spec, err := jobspec.Decode(run.ConfigJSON)
	if err != nil {
		return ""
	}
	requests := podResources(PodInput{GPUMilli: run.GPUMilli, Spec: spec}).Requests
	nodes, err := d.nodes.List(labels.SelectorFromSet(labels.Set{GPUModelLabel: model}))
	if err != nil {
		return "" // not reached: the lister reads the informer cache and returns no error
	}
	for _, n := range nodes {
		if nodeSchedulable(n, d.gpuPodTolerations) && covers(n.Status.Allocatable, requests) {
			return n.Name
		}
	}
	return ""
}

// covers reports whether allocatable has at least requests of every resource.
func covers(allocatable, requests corev1.ResourceList) bool {
	for name, want := range requests {
		have := allocatable[name] // zero when the node lacks the resource
		if have.Cmp(want) < 0 {
			return false
		}
	}
	return true
}

// waitsForGPUs reports whether the pod of run, unschedulable past the timeout, keeps waiting
// because other pods use the GPUs that it needs. That is so when kube-scheduler's message
// names no reason but a GPU shortage and nodes the pod may not use (onlyGPUsShort), and a
// node of the run's model could hold the pod once its GPUs are free (nodeForRun). The pod
// must also have been unschedulable for less than GPUWaitTimeout at now. It then stores
// the job's wait reason, and logs and counts the wait once per run. When the message names
// only a GPU shortage but the pod may not wait, it returns a note for the run's end reason
// that explains why the end counts.
func (d *Dispatcher) waitsForGPUs(ctx context.Context, run store.Run, pod *corev1.Pod, now time.Time) (
	wait bool, note string, err error) {
	since, message, _ := unschedulableSince(pod)
	if run.GPUModel == nil || !onlyGPUsShort(message) {
		return false, "", nil
	}
	node := d.nodeForRun(run, *run.GPUModel)
	if node == "" {
		return false, fmt.Sprintf("; counted: no node of model %s that takes new pods is large enough for the pod",
			*run.GPUModel), nil
	}
	if waited := now.Sub(since); waited >= d.cfg.GPUWaitTimeout {
		return false, fmt.Sprintf("; counted: waited %s for GPUs that other pods use, the GPU wait timeout (%s)",
			waited.Round(time.Second), d.cfg.GPUWaitTimeout), nil
	}
	reason := fmt.Sprintf("%s: node %s could hold the pod once its GPUs are free; kube-scheduler: %s",
		store.ReasonPodWaitsForGPUs, node, message)
	stored, err := d.store.SetPodWaitReason(ctx, run.ID, reason)
	if err != nil {
		return false, "", err
	}
	if stored {
		d.cfg.Logger.Info("pod waits for GPUs that other pods use", "job_id", run.JobID, "run", run.RunNumber,
			"project", run.ProjectID, "pod", run.PodName, "node", node, "message", message)
		d.cfg.Metrics.PodWaitsForGPUs()
	}
	return true, "", nil
}
