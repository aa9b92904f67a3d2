package dispatcher_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/sim"
	"github.com/schedulerd/schedulerd/store"
)

// readyNode is a simulated GPU node that reports Ready, as KWOK makes it.
func readyNode(name, model string, gpus int, cores, gib int64) *corev1.Node {
	n := sim.GPUNode(name, model, gpus, cores*1000, gib*1024, nil)
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	return n
}

func TestCountCapacityListsNodeSizes(t *testing.T) {
	cordoned := readyNode("a10-4", "A10", 32, 128, 1024)
	cordoned.Spec.Unschedulable = true
	nodes := []*corev1.Node{
		readyNode("a10-1", "A10", 8, 64, 256),
		readyNode("a10-2", "A10", 16, 16, 256),
		readyNode("a10-3", "A10", 8, 64, 256),
		cordoned,
		readyNode("t4-1", "T4", 4, 32, 128),
	}

	got := dispatcher.CountCapacity(nodes)
	want := []store.ModelCapacity{
		{Model: "A10", CapacityMilli: 32000, Nodes: 3, LargestNodeMilli: 16000, LargestNodeCPUMilli: 64000,
			LargestNodeMemoryMiB: 262144, NodeShapes: []store.NodeShape{
				{GPUMilli: 16000, CPUMilli: 16000, MemoryMiB: 262144},
				{GPUMilli: 8000, CPUMilli: 64000, MemoryMiB: 262144}}},
		{Model: "T4", CapacityMilli: 4000, Nodes: 1, LargestNodeMilli: 4000, LargestNodeCPUMilli: 32000,
			LargestNodeMemoryMiB: 131072, NodeShapes: []store.NodeShape{
				{GPUMilli: 4000, CPUMilli: 32000, MemoryMiB: 131072}}},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("capacity\n%+v\nwant (the cordoned node left out, A10's repeated size once)\n%+v", got, want)
	}
}
