package dispatcher_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

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
