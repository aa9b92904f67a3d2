package dispatcher_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// BenchmarkBuildPod times building one run's pod with every optional part set: a GPU
// model, a checkpoint to resume from and a simulated run length.
func BenchmarkBuildPod(b *testing.B) {
	jobID := uuid.New()
	in := dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(), RunID: uuid.New(), RunNumber: 2,
		ProjectID: "vision", Namespace: "team-vision", PodName: store.PodName(jobID, 2), Priority: 70,
		GPUMilli: 2000, GPUModel: "A100", ResumeFrom: "s3://checkpoints/vision/step-1000",
		Spec: jobspec.Spec{Image: "registry.example/train:1", Command: []string{"python", "train.py"},
			Resources:         jobspec.Resources{GPUs: 2, CPUMilli: 8000, MemoryMiB: 65536},
			MaxRuntimeSeconds: 3600, Simulation: &jobspec.Simulation{RunSeconds: 60}}}

	pod := dispatcher.BuildPod(in)
	if pod.Name != in.PodName || pod.Namespace != in.Namespace {
		b.Fatalf("pod %s/%s, want %s/%s", pod.Namespace, pod.Name, in.Namespace, in.PodName)
	}
	if got := pod.Spec.Containers[0].Resources.Requests[dispatcher.GPUResource]; got.Value() != 2 {
		b.Fatalf("pod requests %s %s, want 2", got.String(), dispatcher.GPUResource)
	}
	for b.Loop() {
		dispatcher.BuildPod(in)
	}
}
