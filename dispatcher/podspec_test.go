package dispatcher_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// TestPodEnvCarriesRunAndTrialPoint: the container learns its run id, to report artifacts,
// and an hpo trial its hyperparameters as JSON.
func TestPodEnvCarriesRunAndTrialPoint(t *testing.T) {
	jobID, runID := uuid.New(), uuid.New()
	pod := dispatcher.BuildPod(dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(), RunID: runID, RunNumber: 1,
		ProjectID: "vision", Namespace: "team-vision", PodName: store.PodName(jobID, 1), GPUMilli: 1000,
		Spec: jobspec.Spec{Image: "trainer:1", Resources: jobspec.Resources{GPUs: 1}, MaxRuntimeSeconds: 60,
			Hyperparameters: map[string]float64{"lr": 0.01, "batch": 64}}})

	env := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env["SCHEDULERD_RUN_ID"] != runID.String() {
		t.Errorf("SCHEDULERD_RUN_ID %q, want %s", env["SCHEDULERD_RUN_ID"], runID)
	}
	if want := `{"batch":64,"lr":0.01}`; env["SCHEDULERD_HYPERPARAMETERS"] != want {
		t.Errorf("SCHEDULERD_HYPERPARAMETERS %q, want %s", env["SCHEDULERD_HYPERPARAMETERS"], want)
	}
	if _, ok := env["SCHEDULERD_RESUME_FROM"]; ok {
		t.Error("a first run got SCHEDULERD_RESUME_FROM, want none")
	}
}

// A GPU pod, whole or shared, tolerates the NoSchedule taints of both GPU resources, as the
// ExtendedResourceToleration admission plugin would add them. A pod without GPUs gets none.
// Every pod, GPU or not, also gets the extra tolerations of the daemon's setting, after the
// GPU ones.
func TestPodTolerationsForGPUs(t *testing.T) {
	gpuTolerations := []corev1.Toleration{
		{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
		{Key: "schedulerd.io/gpu-milli", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	}
	extra := []corev1.Toleration{
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule},
		{Key: "example.com/spot", Operator: corev1.TolerationOpExists},
	}
	cases := []struct {
		name            string
		gpus            int
		gpuMilli        int
		extra           []corev1.Toleration
		wantTolerations []corev1.Toleration
	}{
		{"two whole GPUs", 2, 2000, nil, gpuTolerations},
		{"shared GPU", 0, 500, nil, gpuTolerations},
		{"no GPU", 0, 0, nil, nil},
		{"two whole GPUs with extra", 2, 2000, extra, append(slices.Clone(gpuTolerations), extra...)},
		{"shared GPU with extra", 0, 500, extra, append(slices.Clone(gpuTolerations), extra...)},
		{"no GPU with extra", 0, 0, extra, extra},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			jobID := uuid.New()
			pod := dispatcher.BuildPod(dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(), RunID: uuid.New(),
				RunNumber: 1, ProjectID: "vision", Namespace: "team-vision", PodName: store.PodName(jobID, 1),
				GPUMilli: c.gpuMilli, Spec: jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 60,
					Resources: jobspec.Resources{GPUs: c.gpus, CPUMilli: 1000, MemoryMiB: 1024}},
				Tolerations: c.extra})

			if got := fmt.Sprintf("%+v", pod.Spec.Tolerations); got != fmt.Sprintf("%+v", c.wantTolerations) {
				t.Errorf("tolerations %s, want %+v", got, c.wantTolerations)
			}
		})
	}
}

// Pods get their own copy of the extra tolerations, so that changing one pod's spec, as a
// caller may before creating it, changes neither the setting nor other pods.
func TestPodTolerationsCopied(t *testing.T) {
	extra := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml"}}
	jobID := uuid.New()
	pod := dispatcher.BuildPod(dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(), RunID: uuid.New(),
		RunNumber: 1, ProjectID: "vision", Namespace: "team-vision", PodName: store.PodName(jobID, 1),
		Spec: jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 60}, Tolerations: extra})

	pod.Spec.Tolerations[0].Value = "changed"
	if extra[0].Value != "ml" {
		t.Errorf("setting's toleration value %q after a change to the pod's, want ml", extra[0].Value)
	}
}
