package api_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// trained is a job that ran twice (preempted after a checkpoint, then completed) and
// registered a model version.
type trained struct {
	job        api.Job
	runs       []store.Admission
	version    store.ModelVersion
	checkpoint []string // checkpoint URIs, by run
}

// train submits a registered fine_tune job of model as token, runs it to completion and
// registers its version as the workflow would. The fixture must use workflows.
func (f *fixture) train(token, model string) trained {
	f.t.Helper()
	ctx := context.Background()
	var tr trained
	f.do(token, "POST", "/v1/projects/vision/jobs", registeredBody()).want(201).decode(&tr.job)
	prefix := "s3://vision-ckpt/" + tr.job.ID.String()

	first := f.startNextRun()
	tr.checkpoint = append(tr.checkpoint, prefix+"/step-100")
	f.recordArtifact(f.submitter, first.RunID, checkpointBody(tr.checkpoint[0], 100))
	f.endRun(first.RunID, store.RunPreempted)

	second := f.startNextRun()
	tr.checkpoint = append(tr.checkpoint, prefix+"/step-200")
	f.recordArtifact(f.submitter, second.RunID, checkpointBody(tr.checkpoint[1], 200))
	modelURI := prefix + "/model"
	f.recordArtifact(f.submitter, second.RunID, map[string]any{"artifact_type": "model", "storage_uri": modelURI,
		"checksum_sha256": checksumB, "size_bytes": 4096})
	f.endRun(second.RunID, store.RunCompleted)
	tr.runs = []store.Admission{first, second}

	var err error
	tr.version, err = f.store.RegisterModelVersion(ctx, store.NewVersion{ProjectID: "vision", ModelName: model,
		Job: store.JobRef{ID: tr.job.ID, CreatedAt: tr.job.CreatedAt}, RunID: &second.RunID, ArtifactURI: modelURI,
		DatasetVersion: "ds-2026-11", CodeCommit: "4f2a9c1", ConfigHash: "sha256:c0ffee",
		EvalMetrics: map[string]float64{"accuracy": 0.91}})
	if err != nil {
		f.t.Fatal(err)
	}
	return tr
}

// requestApproval requests the version's promotion to prod with the job's submitter and the
// submitter's owner, as the job's workflow does.
func (f *fixture) requestApproval(tr trained) store.Approval {
	f.t.Helper()
	ctx := context.Background()
	job, err := f.store.GetJob(ctx, tr.job.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	a, err := f.store.RequestApproval(ctx, store.ApprovalRequest{
		ModelVersionID: tr.version.ID, TargetStage: "prod", RequestedBy: *job.SubmittedBy,
		RequesterOwner: *job.SubmitterOwner, Snapshot: json.RawMessage(`{"accuracy": 0.91}`),
		WorkflowID: *job.TemporalWorkflowID})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func TestLineage(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	tr := f.train(f.submitter, "llama-ft")
	approval := f.requestApproval(tr)

	var got api.Lineage
	f.do(f.submitter, "GET", "/v1/model-versions/"+tr.version.ID.String()+"/lineage", nil).want(200).decode(&got)

	v := got.Version
	if v.ID != tr.version.ID || v.Model != "llama-ft" || v.VersionNumber != 1 || v.Stage != "dev" {
		t.Errorf("version %+v, want llama-ft version 1 in dev", v)
	}
	if v.JobID != tr.job.ID || v.RunID == nil || *v.RunID != tr.runs[1].RunID {
		t.Errorf("version job %s run %v, want job %s run %s", v.JobID, v.RunID, tr.job.ID, tr.runs[1].RunID)
	}
	if v.DatasetVersion == nil || *v.DatasetVersion != "ds-2026-11" {
		t.Errorf("dataset_version %v, want ds-2026-11", v.DatasetVersion)
	}
	if v.CodeCommit == nil || *v.CodeCommit != "4f2a9c1" {
		t.Errorf("code_commit %v, want 4f2a9c1", v.CodeCommit)
	}
	wantJSON(t, "eval_metrics", v.EvalMetrics, `{"accuracy": 0.91}`)
	if got.Job.ID != tr.job.ID || got.Job.Status != "completed" {
		t.Errorf("job %s %s, want %s completed", got.Job.ID, got.Job.Status, tr.job.ID)
	}

	if len(got.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(got.Runs))
	}
	for i, want := range []string{"preempted", "completed"} {
		run := got.Runs[i]
		if run.ID != tr.runs[i].RunID || run.RunNumber != i+1 || run.Status != want {
			t.Errorf("run %d: %s number %d %s, want %s number %d %s", i, run.ID, run.RunNumber, run.Status,
				tr.runs[i].RunID, i+1, want)
		}
		if run.LastCheckpointURI == nil || *run.LastCheckpointURI != tr.checkpoint[i] {
			t.Errorf("run %d: last_checkpoint_uri %v, want %s", i, run.LastCheckpointURI, tr.checkpoint[i])
		}
		if run.WorkerNode == nil || *run.WorkerNode != "node-1" || run.StartedAt == nil || run.CompletedAt == nil {
			t.Errorf("run %d: node %v started %v completed %v, want node-1 and both times", i, run.WorkerNode,
				run.StartedAt, run.CompletedAt)
		}
	}

	var checkpoints []string
	for _, a := range got.Checkpoints {
		checkpoints = append(checkpoints, a.StorageURI)
	}
	if !slices.Equal(checkpoints, tr.checkpoint) {
		t.Errorf("checkpoints %v, want %v", checkpoints, tr.checkpoint)
	}
	if len(got.Artifacts) != 3 {
		t.Errorf("%d artifacts, want 3 (two checkpoints and the model)", len(got.Artifacts))
	}
	if len(got.Approvals) != 1 || got.Approvals[0].ID != approval.ID || got.Approvals[0].Status != "pending" {
		t.Errorf("approvals %+v, want the pending request %s", got.Approvals, approval.ID)
	}
}

func TestLineageAccess(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	tr := f.train(f.submitter, "llama-ft")
	path := "/v1/model-versions/" + tr.version.ID.String()

	f.do(f.audioSubmitter, "GET", path+"/lineage", nil).problem(404, api.TypeNotFound)
	f.do(f.audioSubmitter, "GET", path, nil).problem(404, api.TypeNotFound)
	f.do(f.operator, "GET", path+"/lineage", nil).want(200)
	f.do(f.submitter, "GET", "/v1/model-versions/"+uuid.NewString()+"/lineage", nil).problem(404, api.TypeNotFound)
	p := f.do(f.submitter, "GET", "/v1/model-versions/v1", nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "id" {
		t.Errorf("field %q, want id", p.Field)
	}
}

func TestModelVersionsNewestFirst(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	first := f.train(f.submitter, "llama-ft")
	second := f.train(f.submitter, "llama-ft")

	var list api.ModelVersionList
	f.do(f.submitter, "GET", "/v1/projects/vision/models/llama-ft/versions", nil).want(200).decode(&list)
	if len(list.Versions) != 2 {
		t.Fatalf("%d versions, want 2", len(list.Versions))
	}
	if list.Versions[0].ID != second.version.ID || list.Versions[0].VersionNumber != 2 {
		t.Errorf("first listed %s number %d, want %s number 2", list.Versions[0].ID,
			list.Versions[0].VersionNumber, second.version.ID)
	}
	if list.Versions[1].ID != first.version.ID || list.Versions[1].VersionNumber != 1 {
		t.Errorf("second listed %s number %d, want %s number 1", list.Versions[1].ID,
			list.Versions[1].VersionNumber, first.version.ID)
	}

	var one api.ModelVersion
	f.do(f.submitter, "GET", "/v1/model-versions/"+first.version.ID.String(), nil).want(200).decode(&one)
	if one.ID != first.version.ID || one.JobID != first.job.ID || one.Project != "vision" {
		t.Errorf("version %+v, want %s of job %s in vision", one, first.version.ID, first.job.ID)
	}
}

func TestModelVersionsAccess(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	f.train(f.submitter, "llama-ft")

	f.do(f.audioSubmitter, "GET", "/v1/projects/vision/models/llama-ft/versions", nil).problem(403, api.TypeForbidden)
	f.do(f.submitter, "GET", "/v1/projects/vision/models/other/versions", nil).problem(404, api.TypeNotFound)
	f.do(f.operator, "GET", "/v1/projects/audio/models/llama-ft/versions", nil).problem(404, api.TypeNotFound)
	p := f.do(f.operator, "GET", "/v1/projects/Vision!/models/llama-ft/versions", nil).problem(400, api.TypeInvalidRequest)
	if p.Field != "project" {
		t.Errorf("field %q, want project", p.Field)
	}
}
