// Package sim describes the simulated GPU nodes of the demo and the tests: KWOK nodes that
// carry GPU capacity and the GPU model label of a real cluster. Production never uses it.
package sim

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
)

// KWOKNodeAnnotation marks a node that KWOK simulates; scripts/kube-up.sh starts KWOK to
// manage exactly the nodes with this annotation set to "fake".
const KWOKNodeAnnotation = "kwok.x-k8s.io/node"

// GPUNode returns a KWOK node with gpus GPUs of model, cpuMilli thousandths of a core,
// memMiB MiB of memory and room for 110 pods. Its allocatable equals its capacity, and it
// advertises both whole GPUs and GPU thousandths (dispatcher.GPUMilliResource).
func GPUNode(name, model string, gpus int, cpuMilli, memMiB int64, labels map[string]string) *corev1.Node {
	resources := corev1.ResourceList{
		corev1.ResourceCPU:          *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI),
		corev1.ResourceMemory:       *resource.NewQuantity(memMiB<<20, resource.BinarySI),
		corev1.ResourcePods:         *resource.NewQuantity(110, resource.DecimalSI),
		dispatcher.GPUResource:      *resource.NewQuantity(int64(gpus), resource.DecimalSI),
		dispatcher.GPUMilliResource: *resource.NewQuantity(int64(gpus)*1000, resource.DecimalSI),
	}
	nodeLabels := map[string]string{
		"type":                   "kwok",
		dispatcher.GPUModelLabel: model,
		corev1.LabelHostname:     name,
		corev1.LabelOSStable:     "linux",
		corev1.LabelArchStable:   "amd64",
		corev1.LabelInstanceType: "kwok-gpu",
	}
	for k, v := range labels {
		nodeLabels[k] = v
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{KWOKNodeAnnotation: "fake"},
			Labels:      nodeLabels,
		},
		// The apiserver accepts status on create, and KWOK keeps capacity and
		// allocatable when it marks the node Ready.
		Status: corev1.NodeStatus{Capacity: resources, Allocatable: resources.DeepCopy()},
	}
}
