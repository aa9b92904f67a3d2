package workflow_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/schedulerd/schedulerd/internal/temporaltest"
	"github.com/schedulerd/schedulerd/store"
)

// TestFineTuneIsRegisteredApprovedAndPromoted follows a fine_tune job from submission to a
// prod model version. schedulerd is killed while the job trains, and again right after the
// approval, before or after the outbox sent the decision to the workflow.
func TestFineTuneIsRegisteredApprovedAndPromoted(t *testing.T) {
	sys := newSystem(t)
	sys.trainer(func(store.Job) map[string]float64 { return map[string]float64{"accuracy": 0.91, "loss": 0.2} })
	id := sys.submit("fine_tune", sys.trainConfig(12, map[string]any{
		"evaluation": map[string]any{"thresholds": map[string]any{"accuracy": map[string]any{"min": 0.8}}},
		"model": map[string]any{"name": "resnet-ft", "dataset_version": "imagenet-2026-11",
			"code_commit": "4f2a9c1", "tracking_run_id": "mlflow-77", "promote_to": "prod"},
	}))
	if job, _ := sys.store.GetJob(context.Background(), id); job.TemporalWorkflowID == nil ||
		*job.TemporalWorkflowID != store.WorkflowID(id) {
		t.Fatalf("workflow id %v, want %s", job.TemporalWorkflowID, store.WorkflowID(id))
	}

	sys.waitReported(id)
	sys.crash("while the job trains")

	job := sys.waitJob(id, "an approval request", func(j store.Job) bool {
		r := result(t, j)
		return r.Approval != nil && r.Approval.Status == "pending"
	})
	r := result(t, job)
	if job.Status != store.JobCompleted || r.ModelVersion == nil || r.ModelVersion.Number != 1 ||
		r.ModelVersion.Stage != "dev" || r.Evaluation.Metrics["accuracy"] != 0.91 {
		t.Fatalf("job %s with result %s, want completed with version 1 in dev and accuracy 0.91", job.Status, job.Result)
	}

	approval := "/v1/approvals/" + r.Approval.ID
	if code := sys.call("alice-operator", "POST", approval+"/approve", map[string]string{"reason": "mine"}, nil); code != http.StatusForbidden {
		t.Errorf("alice approving her own request: status %d, want 403", code)
	}
	// The workflow carried alice's owner into the request, so her token of another name
	// is refused too.
	if code := sys.call("alice-laptop", "POST", approval+"/approve", map[string]string{"reason": "mine"}, nil); code != http.StatusForbidden {
		t.Errorf("alice approving her own request with the token alice-laptop: status %d, want 403", code)
	}
	if code := sys.call("alice", "POST", approval+"/approve", map[string]string{"reason": "ok"}, nil); code != http.StatusForbidden {
		t.Errorf("a submitter token approving: status %d, want 403", code)
	}
	if code := sys.call("olga-operator", "POST", approval+"/approve",
		map[string]string{"reason": "accuracy 0.91 on the held-out set"}, nil); code != http.StatusOK {
		t.Fatalf("olga approving: status %d, want 200", code)
	}
	sys.crash("right after the approval")

	job = sys.waitJob(id, "promotion", func(j store.Job) bool {
		r := result(t, j)
		return r.ModelVersion != nil && r.ModelVersion.Stage == "prod"
	})
	checkLineage(t, sys, result(t, job).ModelVersion.ID, id)
	sys.waitOutboxEmpty()

	// An event for a workflow that has finished is delivered as a no-op: the workflow is
	// not started again, so its latest run stays the one that promoted the version.
	firstRun := latestRun(t, id)
	if _, err := sys.store.Pool().Exec(context.Background(),
		`SELECT workflow_event($1, 'job_ended', '{"status": "completed"}')`, store.WorkflowID(id)); err != nil {
		t.Fatal(err)
	}
	sys.waitOutboxEmpty()
	if run := latestRun(t, id); run != firstRun {
		t.Errorf("a late event started run %s of the finished workflow (first run %s)", run, firstRun)
	}
}

// latestRun returns the run id of the job's workflow's latest execution, which must have
// completed.
func latestRun(t *testing.T, job uuid.UUID) string {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: temporaltest.Shared(t).Address, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The workflow records its result before it completes, so a test that saw the result
	// may ask a moment too early: the status is polled for a while.
	deadline := time.Now().Add(30 * time.Second)
	for {
		desc, err := c.DescribeWorkflow(context.Background(), store.WorkflowID(job), "")
		if err != nil {
			t.Fatal(err)
		}
		info := desc.RawResponse.GetWorkflowExecutionInfo()
		if info.GetStatus() == enums.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			return info.GetExecution().GetRunId()
		}
		if time.Now().After(deadline) {
			t.Errorf("workflow of job %s is %s 30s after its result, want completed", job, info.GetStatus())
			return info.GetExecution().GetRunId()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quietLogger drops the SDK client's logs.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

// checkLineage reads the version's lineage through the API back to the job, its runs,
// checkpoint, dataset version and code commit.
func checkLineage(t *testing.T, sys *system, versionID string, job uuid.UUID) {
	t.Helper()
	var lineage struct {
		Version struct {
			Stage          string    `json:"stage"`
			VersionNumber  int       `json:"version_number"`
			JobID          uuid.UUID `json:"job_id"`
			DatasetVersion string    `json:"dataset_version"`
			CodeCommit     string    `json:"code_commit"`
			ConfigHash     string    `json:"config_hash"`
			TrackingRunID  string    `json:"tracking_run_id"`
			ArtifactURI    string    `json:"artifact_uri"`
		} `json:"version"`
		Runs []struct {
			Status            string `json:"status"`
			LastCheckpointURI string `json:"last_checkpoint_uri"`
		} `json:"runs"`
		Checkpoints []struct {
			URI string `json:"storage_uri"`
		} `json:"checkpoints"`
	}
	if code := sys.call("olga-operator", "GET", "/v1/model-versions/"+versionID+"/lineage", nil, &lineage); code != http.StatusOK {
		t.Fatalf("lineage: status %d", code)
	}
	v := lineage.Version
	if v.Stage != "prod" || v.VersionNumber != 1 || v.JobID != job || v.DatasetVersion != "imagenet-2026-11" ||
		v.CodeCommit != "4f2a9c1" || v.TrackingRunID != "mlflow-77" || !strings.HasPrefix(v.ConfigHash, "sha256:") ||
		!strings.HasSuffix(v.ArtifactURI, "/model") {
		t.Errorf("lineage version %+v", v)
	}
	if len(lineage.Runs) != 1 || lineage.Runs[0].Status != "completed" ||
		!strings.HasSuffix(lineage.Runs[0].LastCheckpointURI, "/checkpoint") {
		t.Errorf("lineage runs %+v, want one completed run with its checkpoint", lineage.Runs)
	}
	if len(lineage.Checkpoints) != 1 || lineage.Checkpoints[0].URI != lineage.Runs[0].LastCheckpointURI {
		t.Errorf("lineage checkpoints %+v", lineage.Checkpoints)
	}
}

// TestPoorMetricsEndEvalFailed: a job whose eval report misses its threshold ends
// eval_failed with the reason and registers nothing, across a kill of schedulerd.
func TestPoorMetricsEndEvalFailed(t *testing.T) {
	sys := newSystem(t)
	sys.trainer(func(store.Job) map[string]float64 { return map[string]float64{"accuracy": 0.61} })
	id := sys.submit("fine_tune", sys.trainConfig(8, map[string]any{
		"evaluation": map[string]any{"thresholds": map[string]any{"accuracy": map[string]any{"min": 0.8}}},
		"model":      map[string]any{"name": "resnet-poor"},
	}))
	sys.waitReported(id)
	sys.crash("while the job trains")

	job := sys.waitJob(id, "eval_failed", func(j store.Job) bool { return j.Status == store.JobEvalFailed })
	if job.ErrorMessage == nil || *job.ErrorMessage != "evaluation: accuracy 0.61 below min 0.8" {
		t.Errorf("error message %v, want the threshold miss", job.ErrorMessage)
	}
	versions, err := sys.store.ListModelVersions(context.Background(), "vision", "resnet-poor")
	if err != nil || len(versions) != 0 {
		t.Errorf("versions %v (%v), want none", versions, err)
	}
}

// TestHPOPicksTheBestOfFourTrials runs a 2x2 grid. Each trial reports an accuracy that
// depends on its hyperparameters; schedulerd is killed while the trials run. The parent
// must end completed with the best trial named and its model registered, and no trial may
// be left without an end.
func TestHPOPicksTheBestOfFourTrials(t *testing.T) {
	sys := newSystem(t)
	sys.trainer(func(j store.Job) map[string]float64 {
		var config struct {
			Hyperparameters map[string]float64 `json:"hyperparameters"`
		}
		_ = json.Unmarshal(j.ConfigJSON, &config)
		lr, batch := config.Hyperparameters["lr"], config.Hyperparameters["batch"]
		return map[string]float64{"accuracy": 0.5 + lr + batch/1000}
	})
	parent := sys.submit("hpo", sys.trainConfig(10, map[string]any{
		"hpo": map[string]any{"search": "grid", "metric": "accuracy", "goal": "max",
			"parameters": map[string]any{"lr": map[string]any{"values": []float64{0.1, 0.01}},
				"batch": map[string]any{"values": []float64{32, 64}}}},
		"model": map[string]any{"name": "hpo-best", "dataset_version": "imagenet-2026-11"},
	}))
	sys.waitJob(parent, "trials created", func(j store.Job) bool { return j.Status == store.JobRunning })
	trials, err := sys.store.ChildJobs(context.Background(), store.JobRef{ID: parent, CreatedAt: createdAt(t, sys, parent)})
	if err != nil || len(trials) != 4 {
		t.Fatalf("trials %d (%v), want 4", len(trials), err)
	}
	for _, trial := range trials {
		sys.waitReported(trial.ID)
	}
	sys.crash("while the trials run")

	// The parent completes before it registers the best trial's model, with result status
	// evaluating until then, so the test waits for both.
	job := sys.waitJob(parent, "completed", func(j store.Job) bool {
		return j.Status.Terminal() && result(t, j).Status != "evaluating"
	})
	r := result(t, job)
	if job.Status != store.JobCompleted || r.HPO == nil || r.HPO.Created != 4 || r.HPO.BestValue == nil {
		t.Fatalf("parent %s with result %s, want completed over 4 trials", job.Status, job.Result)
	}
	best := bestOf(t, sys, trials)
	if r.HPO.BestJobID != best.String() || math.Abs(*r.HPO.BestValue-0.664) > 1e-9 {
		t.Errorf("best trial %s with %v, want %s with 0.664", r.HPO.BestJobID, *r.HPO.BestValue, best)
	}
	v, err := sys.store.GetModelVersion(context.Background(), uuid.MustParse(r.ModelVersion.ID))
	if err != nil || v.JobID != best || v.VersionNumber != 1 {
		t.Errorf("registered version %+v (%v), want version 1 from trial %s", v, err, best)
	}
	sys.waitOutboxEmpty()
	for _, trial := range trials {
		now, err := sys.store.GetJob(context.Background(), trial.ID)
		if err != nil || now.Status != store.JobCompleted || now.RunCount != 1 {
			t.Errorf("trial %s: %s with %d runs (%v), want completed after one run", trial.ID, now.Status, now.RunCount, err)
		}
	}
}

func createdAt(t *testing.T, sys *system, id uuid.UUID) time.Time {
	t.Helper()
	job, err := sys.store.GetJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return job.CreatedAt
}

// bestOf returns the trial whose hyperparameters are lr 0.1 and batch 64.
func bestOf(t *testing.T, sys *system, trials []store.Job) uuid.UUID {
	t.Helper()
	for _, trial := range trials {
		var config struct {
			Hyperparameters map[string]float64 `json:"hyperparameters"`
		}
		_ = json.Unmarshal(trial.ConfigJSON, &config)
		if config.Hyperparameters["lr"] == 0.1 && config.Hyperparameters["batch"] == 64 {
			return trial.ID
		}
	}
	t.Fatal("no trial has lr 0.1 and batch 64")
	return uuid.Nil
}
