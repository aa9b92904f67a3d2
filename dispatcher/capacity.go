package dispatcher

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// loopCapacity recounts GPU capacity at most twice a second, after node changes.
func (d *Dispatcher) loopCapacity(ctx context.Context) {
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if !d.capacityDirty.Swap(false) {
			continue
		}
		if err := d.syncCapacity(ctx); err != nil && ctx.Err() == nil {
			d.capacityDirty.Store(true)
			d.cfg.Metrics.LoopError(metrics.LoopCapacity)
			d.cfg.Logger.Error("GPU capacity sync failed", "err", err)
		}
	}
}

// syncCapacity stores the GPU capacity by model of the nodes that can take new pods.
func (d *Dispatcher) syncCapacity(ctx context.Context) error {
	nodes, err := d.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	if err := d.store.SyncGPUCapacity(ctx, CountCapacity(nodes, d.cfg.PodTolerations)); err != nil {
		return err
	}
	d.cfg.OnCapacityChanged()
	return nil
}

// CountCapacity sums, by GPU model, the GPU thousandths of the nodes that can take a GPU pod
// (nodeSchedulable), and lists their sizes. A GPU pod carries gpuTolerations and
// extraTolerations, the daemon's pod-tolerations setting (Config.PodTolerations). A model
// whose nodes are all cordoned, or all tainted against GPU pods, has no capacity, so its
// jobs stay queued until a node takes pods.
func CountCapacity(nodes []*corev1.Node, extraTolerations []corev1.Toleration) []store.ModelCapacity {
	tolerations := podTolerations(true, extraTolerations)
	byModel := map[string]*store.ModelCapacity{}
	shapes := map[string][]store.NodeShape{}
	for _, n := range nodes {
		model := n.Labels[GPUModelLabel]
		milli := nodeGPUMilli(n)
		if model == "" || milli == 0 || !nodeSchedulable(n, tolerations) {
			continue
		}
		c := byModel[model]
		if c == nil {
			c = &store.ModelCapacity{Model: model}
			byModel[model] = c
		}
		shape := store.NodeShape{GPUMilli: milli, CPUMilli: n.Status.Allocatable.Cpu().MilliValue(),
			MemoryMiB: n.Status.Allocatable.Memory().Value() >> 20}
		c.CapacityMilli += milli
		c.Nodes++
		c.LargestNodeMilli = max(c.LargestNodeMilli, shape.GPUMilli)
		c.LargestNodeCPUMilli = max(c.LargestNodeCPUMilli, shape.CPUMilli)
		c.LargestNodeMemoryMiB = max(c.LargestNodeMemoryMiB, shape.MemoryMiB)
		shapes[model] = append(shapes[model], shape)
	}

	out := make([]store.ModelCapacity, 0, len(byModel))
	for model, c := range byModel {
		c.NodeShapes = store.MaximalShapes(shapes[model])
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Model < out[j].Model })
	return out
}

// nodeGPUMilli is a node's allocatable GPU thousandths: the GPUMilliResource when the node
// advertises it, else 1000 per whole GPU.
func nodeGPUMilli(n *corev1.Node) int64 {
	if q, ok := n.Status.Allocatable[GPUMilliResource]; ok {
		return q.Value()
	}
	if q, ok := n.Status.Allocatable[GPUResource]; ok {
		return q.Value() * 1000
	}
	return 0
}

// nodeSchedulable reports whether a node can take a new GPU pod: it is ready, not cordoned
// and not being deleted, and tolerations, those of a GPU pod (podTolerations), tolerate its
// taints. The node.kubernetes.io/not-ready and unreachable taints need no special case,
// because a node that carries them is not ready. Taints for other conditions
// (memory-pressure, disk-pressure and the like) keep the node out while they last, as
// kube-scheduler does.
// NOTE: tolerations that the cluster adds to pods at admission (a namespace's default
// tolerations, a webhook) are unknown here unless the pod-tolerations setting repeats them,
// so a node tainted for them alone does not count.
func nodeSchedulable(n *corev1.Node, tolerations []corev1.Toleration) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	if !toleratesTaints(tolerations, n.Spec.Taints) {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// toleratesTaints reports whether tolerations tolerate every NoSchedule and NoExecute taint in
// taints, the effects that keep kube-scheduler from placing a pod. A PreferNoSchedule taint
// only makes it try other nodes first, so it is ignored. A toleration with
// tolerationSeconds counts for nothing here: kube-scheduler places the pod, but Kubernetes'
// taint eviction controller evicts it once the seconds have passed, so the job would be
// requeued again and again.
func toleratesTaints(tolerations []corev1.Toleration, taints []corev1.Taint) bool {
	for i := range taints {
		taint := &taints[i]
		if taint.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		tolerated := slices.ContainsFunc(tolerations, func(t corev1.Toleration) bool {
			// The logger and the Lt/Gt switch matter only to numeric operators, which
			// gpuTolerations does not use and the settings check rejects.
			return t.TolerationSeconds == nil && t.ToleratesTaint(logr.Discard(), taint, false)
		})
		if !tolerated {
			return false
		}
	}
	return true
}
