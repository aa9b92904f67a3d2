package kubetest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/schedulerd/schedulerd/sim"
)

// Node labels, annotations and resources that CreateGPUNode sets.
const (
	// KWOKNodeAnnotation marks a node that KWOK simulates. kube-up.sh starts
	// KWOK with --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake.
	KWOKNodeAnnotation = "kwok.x-k8s.io/node"
	// GPUProductLabel is the GPU model label that NVIDIA's GPU feature
	// discovery sets on real nodes.
	GPUProductLabel = "nvidia.com/gpu.product"
	// GPUResource is the extended resource of NVIDIA's device plugin.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// GPUMilliResource is GPU capacity in thousandths of a GPU, for
	// schedulerd's fractional GPU accounting.
	GPUMilliResource corev1.ResourceName = "schedulerd.io/gpu-milli"
)

// CreateGPUNode creates a KWOK node with gpus GPUs of the given model,
// cpuMilli millicores, memMiB MiB of memory and room for 110 pods. Its
// allocatable equals its capacity. KWOK makes it Ready within seconds, and
// WaitNodesReady waits for that.
func (e *Env) CreateGPUNode(ctx context.Context, name, model string, gpus int, cpuMilli, memMiB int64) (*corev1.Node, error) {
	if gpus < 0 || cpuMilli <= 0 || memMiB <= 0 {
		return nil, fmt.Errorf("create node %s: invalid resources gpus=%d cpuMilli=%d memMiB=%d: expected gpus >= 0, cpuMilli > 0 and memMiB > 0", name, gpus, cpuMilli, memMiB)
	}
	node := sim.GPUNode(name, model, gpus, cpuMilli, memMiB, nil)
	created, err := e.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("create node %s: %w", name, err)
	}
	return created, nil
}

// WaitNodesReady waits until every named node has the condition Ready=True,
// or until ctx ends. With no names it waits for every node in the cluster.
func (e *Env) WaitNodesReady(ctx context.Context, names ...string) error {
	lw := cache.NewListWatchFromClient(e.Clientset.CoreV1().RESTClient(), "nodes", "", fields.Everything())
	ready := map[string]bool{}
	allReady := func() bool {
		if len(names) == 0 {
			return len(ready) > 0 && countTrue(ready) == len(ready)
		}
		for _, name := range names {
			if !ready[name] {
				return false
			}
		}
		return true
	}
	record := func(obj any) {
		if node, ok := obj.(*corev1.Node); ok {
			ready[node.Name] = sim.NodeReady(node)
		}
	}

	precondition := func(store cache.Store) (bool, error) {
		for _, obj := range store.List() {
			record(obj)
		}
		return allReady(), nil
	}
	condition := func(event watch.Event) (bool, error) {
		switch event.Type {
		case watch.Deleted:
			if node, ok := event.Object.(*corev1.Node); ok {
				delete(ready, node.Name)
			}
		case watch.Added, watch.Modified:
			record(event.Object)
		}
		return allReady(), nil
	}
	if _, err := watchtools.UntilWithSync(ctx, lw, &corev1.Node{}, precondition, condition); err != nil {
		err = contextError(ctx, err)
		return fmt.Errorf("wait for nodes %v to be Ready (%d of %d seen Ready): %w", names, countTrue(ready), len(ready), err)
	}
	return nil
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}
