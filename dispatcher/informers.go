package dispatcher

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
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
		AddFunc:    d.onPod,
		UpdateFunc: func(_, obj any) { d.onPod(obj) },
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

// onPodDelete remembers why a pod that had not finished was deleted, from its last state
// (an eviction, kube-scheduler's preemption), because the run is judged after the pod is
// gone from the cache.
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
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		d.terminating.Store(id, deletionReason(pod))
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
	if nodeGPUMilli(before) != nodeGPUMilli(after) || nodeSchedulable(before) != nodeSchedulable(after) ||
		before.Labels[GPUModelLabel] != after.Labels[GPUModelLabel] {
		d.capacityDirty.Store(true)
	}
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
// little memory: managed fields and most of the spec.
func stripPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	pod.ManagedFields = nil
	pod.Spec = corev1.PodSpec{NodeName: pod.Spec.NodeName}
	for i := range pod.Status.ContainerStatuses {
		pod.Status.ContainerStatuses[i].Image = ""
		pod.Status.ContainerStatuses[i].ImageID = ""
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
