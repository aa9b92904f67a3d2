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

	got := dispatcher.CountCapacity(nodes, nil)
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

// A node counts only when a GPU pod tolerates each of its NoSchedule and NoExecute taints.
// The pods tolerate NoSchedule taints of the GPU resources, which keep other pods off GPU
// nodes.
func TestCountCapacityJudgesTaints(t *testing.T) {
	cases := []struct {
		name    string
		taints  []corev1.Taint
		counted bool
	}{
		{"no taint", nil, true},
		{"nvidia.com/gpu NoSchedule", []corev1.Taint{
			{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule}}, true},
		{"gpu-milli NoSchedule", []corev1.Taint{
			{Key: "schedulerd.io/gpu-milli", Effect: corev1.TaintEffectNoSchedule}}, true},
		{"other key PreferNoSchedule", []corev1.Taint{
			{Key: "example.com/reserved", Effect: corev1.TaintEffectPreferNoSchedule}}, true},
		{"other key NoSchedule", []corev1.Taint{
			{Key: "example.com/reserved", Effect: corev1.TaintEffectNoSchedule}}, false},
		{"other key NoExecute", []corev1.Taint{
			{Key: "example.com/reserved", Value: "team-a", Effect: corev1.TaintEffectNoExecute}}, false},
		{"nvidia.com/gpu NoExecute", []corev1.Taint{
			{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoExecute}}, false},
		{"memory pressure", []corev1.Taint{
			{Key: corev1.TaintNodeMemoryPressure, Effect: corev1.TaintEffectNoSchedule}}, false},
		{"tolerated and untolerated", []corev1.Taint{
			{Key: "nvidia.com/gpu", Effect: corev1.TaintEffectNoSchedule},
			{Key: "example.com/reserved", Effect: corev1.TaintEffectNoSchedule}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tainted := readyNode("a10-1", "A10", 8, 64, 256)
			tainted.Spec.Taints = c.taints
			nodes := []*corev1.Node{tainted, readyNode("t4-1", "T4", 4, 32, 128)}

			got := map[string]int64{}
			for _, m := range dispatcher.CountCapacity(nodes, nil) {
				got[m.Model] = m.CapacityMilli
			}
			want := map[string]int64{"T4": 4000}
			if c.counted {
				want["A10"] = 8000
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("capacity by model %v, want %v", got, want)
			}
		})
	}
}

// Extra tolerations from the daemon's setting make a node tainted for them count, and only
// a toleration that matches the taint's key, value and effect does. One with
// tolerationSeconds does not, because the pod would be evicted once the seconds pass.
func TestCountCapacityWithExtraTolerations(t *testing.T) {
	dedicated := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml",
		Effect: corev1.TaintEffectNoSchedule}
	seconds := int64(600)
	cases := []struct {
		name        string
		taint       corev1.Taint
		tolerations []corev1.Toleration
		counted     bool
	}{
		{"no extra toleration", corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule},
			nil, false},
		{"matching toleration", corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule},
			[]corev1.Toleration{dedicated}, true},
		{"other value", corev1.Taint{Key: "dedicated", Value: "vision", Effect: corev1.TaintEffectNoSchedule},
			[]corev1.Toleration{dedicated}, false},
		{"other effect", corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoExecute},
			[]corev1.Toleration{dedicated}, false},
		{"Exists for any value", corev1.Taint{Key: "dedicated", Value: "vision", Effect: corev1.TaintEffectNoSchedule},
			[]corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}, true},
		{"NoExecute without seconds", corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute},
			[]corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute}}, true},
		{"NoExecute for 600 seconds", corev1.Taint{Key: "maintenance", Effect: corev1.TaintEffectNoExecute},
			[]corev1.Toleration{{Key: "maintenance", Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &seconds}}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tainted := readyNode("a10-1", "A10", 8, 64, 256)
			tainted.Spec.Taints = []corev1.Taint{c.taint}
			nodes := []*corev1.Node{tainted, readyNode("t4-1", "T4", 4, 32, 128)}

			got := map[string]int64{}
			for _, m := range dispatcher.CountCapacity(nodes, c.tolerations) {
				got[m.Model] = m.CapacityMilli
			}
			want := map[string]int64{"T4": 4000}
			if c.counted {
				want["A10"] = 8000
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("capacity by model %v, want %v", got, want)
			}
		})
	}
}
