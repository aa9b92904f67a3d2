package dispatcher

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// byNode indexes pods by the node they are bound to, to find the runs of a lost node.
const byNode = "node"

func (d *Dispatcher) setUpInformers() {
	podFactory := informers.NewSharedInformerFactoryWithOptions(d.client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = LabelManagedBy + "=" + ManagedByValue
		}),
		informers.WithTransform(stripPod))
	podInformer := podFactory.Core().V1().Pods()
	_ = podInformer.Informer().AddIndexers(cache.Indexers{byNode: func(obj any) ([]string, error) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName == "" {
			return nil, nil
		}
		return []string{pod.Spec.NodeName}, nil
	}})
	_, _ = podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    d.onPodAdd,
		UpdateFunc: d.onPodUpdate,
		DeleteFunc: d.onPodDelete,
	})
	d.pods = podInformer.Lister()
	d.podIndex = podInformer.Informer().GetIndexer()

	nodeFactory := informers.NewSharedInformerFactoryWithOptions(d.client, 0,
		informers.WithTransform(stripNode))
	nodeInformer := nodeFactory.Core().V1().Nodes()
	_, _ = nodeInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { d.capacityDirty.Store(true) },
		UpdateFunc: func(old, obj any) { d.onNodeUpdate(old, obj) },
		DeleteFunc: d.onNodeDelete,
	})
	d.nodes = nodeInformer.Lister()

	d.factories = []informers.SharedInformerFactory{podFactory, nodeFactory}
}

func (d *Dispatcher) onPod(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if pod, ok := obj.(*corev1.Pod); ok {
		if id, ok := runIDOf(pod); ok {
			d.queue.Add(id)
		}
	}
}

// onPodAdd reconciles a new pod unless it is as its creation left it. Such a pod is one the
// dispatcher has just created, because the first resync queues the pods found at start-up.
// Judge finds nothing to act on in it, and each later change arrives as an update.
// Skipping it saves a database read per pod created.
func (d *Dispatcher) onPodAdd(obj any) {
	if pod, ok := obj.(*corev1.Pod); ok && freshPod(pod) {
		return
	}
	d.onPod(obj)
}

// onPodUpdate reconciles a pod when something Judge reads changed: its status, node or
// deletion. Updates of other fields leave the run's judgement as it was.
func (d *Dispatcher) onPodUpdate(old, obj any) {
	before, ok1 := old.(*corev1.Pod)
	after, ok2 := obj.(*corev1.Pod)
	if ok1 && ok2 && before.Spec.NodeName == after.Spec.NodeName &&
		(before.DeletionTimestamp == nil) == (after.DeletionTimestamp == nil) &&
		equality.Semantic.DeepEqual(before.Status, after.Status) {
		return
	}
	d.onPod(obj)
}

// freshPod reports whether pod is pending, unbound, not being deleted and without any
// condition or container status.
func freshPod(pod *corev1.Pod) bool {
	return (pod.Status.Phase == "" || pod.Status.Phase == corev1.PodPending) && pod.Spec.NodeName == "" &&
		pod.DeletionTimestamp == nil && len(pod.Status.Conditions) == 0 && len(pod.Status.ContainerStatuses) == 0
}

// onPodDelete remembers the pod's last state, because the run is judged after the pod is
// gone from the cache. A pod that had not finished shows why it was deleted (an eviction,
// kube-scheduler's preemption) and whether that counts (deletedPodEnd). A finished pod is kept
// too, because someone may delete it before its run was judged (a cleanup while the
// database was down, say), and its phase and exit code still show how the run ended.
func (d *Dispatcher) onPodDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	id, ok := runIDOf(pod)
	if !ok {
		return
	}
	if podFinished(pod) {
		d.finished.Store(id, pod)
	} else {
		d.deletedUnfinished.Store(id, pod)
	}
	d.queue.Add(id)
}

// onNodeUpdate marks capacity for recount only when something admission reads changed;
// heartbeats of a thousand nodes would otherwise recount it all the time.
func (d *Dispatcher) onNodeUpdate(old, obj any) {
	before, ok1 := old.(*corev1.Node)
	after, ok2 := obj.(*corev1.Node)
	if !ok1 || !ok2 {
		d.capacityDirty.Store(true)
		return
	}
	if nodeCapacityChanged(before, after, d.gpuPodTolerations) {
		d.capacityDirty.Store(true)
	}
}

// nodeCapacityChanged reports whether a node update changes what CountCapacity reads from
// the node: its GPUs, whether it takes GPU pods with tolerations (readiness, cordon,
// taints), its model, or the CPU and memory that make its size. Heartbeats, which change
// none of these, cause no recount.
func nodeCapacityChanged(before, after *corev1.Node, tolerations []corev1.Toleration) bool {
	return nodeGPUMilli(before) != nodeGPUMilli(after) ||
		nodeSchedulable(before, tolerations) != nodeSchedulable(after, tolerations) ||
		before.Labels[GPUModelLabel] != after.Labels[GPUModelLabel] ||
		!before.Status.Allocatable.Cpu().Equal(*after.Status.Allocatable.Cpu()) ||
		!before.Status.Allocatable.Memory().Equal(*after.Status.Allocatable.Memory())
}

// onNodeDelete recounts capacity and reconciles the runs of the node's pods, which end as
// preempted: the node is lost.
func (d *Dispatcher) onNodeDelete(obj any) {
	d.capacityDirty.Store(true)
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	pods, _ := d.podIndex.ByIndex(byNode, node.Name)
	for _, p := range pods {
		if id, ok := runIDOf(p.(*corev1.Pod)); ok {
			d.queue.Add(id)
		}
	}
}

// stripPod drops what the dispatcher never reads, so that following ten thousand pods costs
// little memory: managed fields, annotations, labels other than the run id, most of the
// spec, and the addresses, images and resources of the status. Judge and runIDOf read the
// rest.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	pod.Annotations = nil
	pod.OwnerReferences = nil
	if runID, ok := pod.Labels[LabelRunID]; ok {
		pod.Labels = map[string]string{LabelRunID: runID}
	} else {
		pod.Labels = nil
	}
	pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
	pod.Status.HostIP, pod.Status.HostIPs, pod.Status.PodIP, pod.Status.PodIPs = "", nil, "", nil
	pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses = nil, nil
	pod.Status.ResourceClaimStatuses = nil
	for i := range pod.Status.ContainerStatuses {
		cs := &pod.Status.ContainerStatuses[i]
		cs.Image, cs.ImageID, cs.ContainerID = "", "", ""
		cs.AllocatedResources, cs.Resources, cs.VolumeMounts, cs.User = nil, nil, nil, nil
		cs.AllocatedResourcesStatus = nil
	}
	return pod, nil
}

func stripNode(obj any) (any, error) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	node.ManagedFields = nil
	node.Status.Images = nil
	return node, nil
}

func contextErrorf(ctx context.Context, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), context.Cause(ctx))
}
