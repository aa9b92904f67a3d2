package dispatcher

import (
	"context"
	"sort"
	"time"

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
	if err := d.store.SyncGPUCapacity(ctx, CountCapacity(nodes)); err != nil {
		return err
	}
	d.cfg.OnCapacityChanged()
	return nil
}

// CountCapacity sums, by GPU model, the GPU thousandths of nodes that are ready and not
// cordoned, and lists their sizes. A cordoned model has no capacity, so its jobs stay
// queued until uncordon.
func CountCapacity(nodes []*corev1.Node) []store.ModelCapacity {
	byModel := map[string]*store.ModelCapacity{}
	shapes := map[string][]store.NodeShape{}
	for _, n := range nodes {
		model := n.Labels[GPUModelLabel]
		milli := nodeGPUMilli(n)
		if model == "" || milli == 0 || !nodeSchedulable(n) {
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

// nodeSchedulable reports whether a node is ready and not cordoned.
// NOTE: taints are not read, so a node whose NoSchedule taint the pods do not tolerate
// still counts, and its model's jobs are admitted to wait unschedulable.
func nodeSchedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable || n.DeletionTimestamp != nil {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
