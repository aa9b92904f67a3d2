package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/schedulerd/schedulerd/store"
)

func shape(gpus, cores, gib int64) store.NodeShape {
	return store.NodeShape{GPUMilli: gpus * 1000, CPUMilli: cores * 1000, MemoryMiB: gib * 1024}
}

func TestMaximalShapesDropsCovered(t *testing.T) {
	wide, tall := shape(8, 64, 256), shape(16, 16, 256)
	shapes := []store.NodeShape{shape(8, 32, 256), wide, tall, wide, shape(4, 16, 128), tall}

	got := store.MaximalShapes(shapes)
	want := []store.NodeShape{tall, wide}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("maximal shapes %v, want %v (largest GPU count first, covered and repeated ones gone)", got, want)
	}
	if len(store.MaximalShapes(nil)) != 0 {
		t.Errorf("maximal shapes of none: %v, want none", store.MaximalShapes(nil))
	}
}

func TestHoldsNeedsOneNodeForEveryResource(t *testing.T) {
	m := store.ModelCapacity{Model: "A10", Nodes: 2, CapacityMilli: 24000, LargestNodeMilli: 16000,
		LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 256 * 1024,
		NodeShapes: []store.NodeShape{shape(16, 16, 256), shape(8, 64, 256)}}
	cases := []struct {
		name        string
		gpus, cores int64
		memoryGiB   int64
		want        bool
	}{
		{"the GPU node's size", 16, 16, 256, true},
		{"the CPU node's size", 8, 64, 256, true},
		{"GPUs of one node and cores of the other", 16, 64, 0, false},
		{"more memory than any node", 1, 1, 257, false},
	}
	for _, c := range cases {
		if got := m.Holds(int(c.gpus*1000), c.cores*1000, c.memoryGiB*1024); got != c.want {
			t.Errorf("%s: holds %t, want %t", c.name, got, c.want)
		}
	}

	// A row without sizes, as before migration 010, falls back to the largest values.
	m.NodeShapes = nil
	if !m.Holds(16000, 64000, 0) {
		t.Error("without sizes: a pod within each largest value is not held, want held")
	}
	m.Nodes = 0
	if m.Holds(1000, 0, 0) {
		t.Error("a model without nodes holds a pod, want none")
	}
}

func TestSyncGPUCapacityStoresShapes(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	shapes := []store.NodeShape{shape(16, 16, 256), shape(8, 64, 256)}
	capacity := []store.ModelCapacity{
		{Model: "A10", CapacityMilli: 24000, Nodes: 2, LargestNodeMilli: 16000, LargestNodeCPUMilli: 64000,
			LargestNodeMemoryMiB: 256 * 1024, NodeShapes: shapes},
		{Model: "T4", CapacityMilli: 4000, Nodes: 1, LargestNodeMilli: 4000},
	}
	if err := s.SyncGPUCapacity(ctx, capacity); err != nil {
		t.Fatal(err)
	}
	models, err := s.ListGPUModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models) != 2 || fmt.Sprint(models[0].NodeShapes) != fmt.Sprint(shapes) || len(models[1].NodeShapes) != 0 {
		t.Fatalf("models %+v, want A10 with %v and T4 without sizes", models, shapes)
	}

	// A10 loses every node: its sizes go with them.
	if err := s.SyncGPUCapacity(ctx, capacity[1:]); err != nil {
		t.Fatal(err)
	}
	models, err = s.ListGPUModels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if models[0].Nodes != 0 || len(models[0].NodeShapes) != 0 {
		t.Errorf("A10 after losing its nodes: %d nodes, sizes %v; want none of either", models[0].Nodes, models[0].NodeShapes)
	}
}
