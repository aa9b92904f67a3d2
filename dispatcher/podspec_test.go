package dispatcher_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
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

// The config's env follows schedulerd's variables in name order, and each secret_env
// variable refers to its Secret's key. kube-apiserver accepts such a pod as built.
func TestPodEnvFromConfig(t *testing.T) {
	jobID := uuid.New()
	ns := "env-" + uuid.NewString()[:8]
	spec, err := jobspec.Decode([]byte(`{"image":"trainer:1","max_runtime_seconds":60,` +
		`"env":{"WANDB_PROJECT":"vision","DATA_DIR":"/data"},` +
		`"secret_env":{"AWS_SECRET_ACCESS_KEY":{"name":"s3-creds","key":"secret-key"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	pod := dispatcher.BuildPod(dispatcher.PodInput{JobID: jobID, JobCreatedAt: time.Now(), RunID: uuid.New(),
		RunNumber: 1, ProjectID: "vision", Namespace: ns, PodName: store.PodName(jobID, 1), Spec: spec})

	var names []string
	for _, e := range pod.Spec.Containers[0].Env {
		names = append(names, e.Name)
	}
	want := "[SCHEDULERD_JOB_ID SCHEDULERD_RUN SCHEDULERD_RUN_ID DATA_DIR WANDB_PROJECT AWS_SECRET_ACCESS_KEY]"
	if fmt.Sprint(names) != want {
		t.Errorf("variables %v, want %s", names, want)
	}

	ctx := context.Background()
	client := daemontest.Kube.Clientset
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) })
	pod.Spec.PriorityClassName = "" // only a running dispatcher creates its priority classes
	created, err := client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kube-apiserver rejected the pod: %v", err)
	}
	env := created.Spec.Containers[0].Env
	last := env[len(env)-1]
	if last.ValueFrom == nil || last.ValueFrom.SecretKeyRef == nil ||
		last.ValueFrom.SecretKeyRef.Name != "s3-creds" || last.ValueFrom.SecretKeyRef.Key != "secret-key" {
		t.Errorf("stored %s from %+v, want Secret s3-creds key secret-key", last.Name, last.ValueFrom)
	}
	if env[4].Value != "vision" {
		t.Errorf("stored WANDB_PROJECT %q, want vision", env[4].Value)
	}
}
