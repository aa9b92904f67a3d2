package api_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// useWorkflows serves the fixture's API as a daemon with a Temporal address does.
func (f *fixture) useWorkflows() {
	f.t.Helper()
	f.server.Close()
	f.api = api.New(api.Config{Store: f.store, Workflows: true, S3Configured: true})
	f.server = httptest.NewServer(f.api)
	f.t.Cleanup(f.server.Close)
}

// hpoBody is an hpo job with a grid of two learning rates.
func hpoBody() map[string]any {
	config := fineTune(1)
	config["hpo"] = map[string]any{
		"search":     "grid",
		"parameters": map[string]any{"learning_rate": map[string]any{"values": []float64{0.001, 0.01}}},
		"metric":     "accuracy",
		"goal":       "max",
	}
	return map[string]any{"job_type": "hpo", "config": config}
}

// registeredBody is a fine_tune job whose workflow evaluates it and registers a model.
func registeredBody() map[string]any {
	config := fineTune(1)
	config["model"] = map[string]any{"name": "llama-ft", "dataset_version": "ds-2026-11", "code_commit": "4f2a9c1"}
	config["evaluation"] = map[string]any{"thresholds": map[string]any{"accuracy": map[string]any{"min": 0.8}}}
	return map[string]any{"job_type": "fine_tune", "config": config}
}

func TestSubmitWithoutWorkflows(t *testing.T) {
	f := setup(t)
	withModel := registeredBody()
	delete(withModel["config"].(map[string]any), "evaluation")
	withEvaluation := registeredBody()
	delete(withEvaluation["config"].(map[string]any), "model")

	cases := []struct {
		name   string
		body   map[string]any
		field  string
		detail string
	}{
		{"hpo job", hpoBody(), "job_type",
			"hpo jobs are run by workflows; this daemon runs without a Temporal address"},
		{"model section", withModel, "config.model", "this daemon runs without a Temporal address"},
		{"evaluation section", withEvaluation, "config.evaluation", "this daemon runs without a Temporal address"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", c.body).problem(422, api.TypeUnprocessable)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
			if !strings.Contains(p.Detail, c.detail) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, c.detail)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}
}

// With workflows but without S3, the jobs whose workflows read S3 are rejected with the
// settings to set, and a plain job is still accepted with a workflow.
func TestSubmitWithoutS3(t *testing.T) {
	f := setup(t)
	f.server.Close()
	f.api = api.New(api.Config{Store: f.store, Workflows: true})
	f.server = httptest.NewServer(f.api)
	t.Cleanup(f.server.Close)
	withModel := registeredBody()
	delete(withModel["config"].(map[string]any), "evaluation")
	withEvaluation := registeredBody()
	delete(withEvaluation["config"].(map[string]any), "model")
	const noS3 = "this daemon has no S3 endpoint or region (SCHEDULERD_S3_ENDPOINT, SCHEDULERD_S3_REGION or AWS_REGION)"

	cases := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"hpo job", hpoBody(), "job_type"},
		{"model section", withModel, "config.model"},
		{"evaluation section", withEvaluation, "config.evaluation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", c.body).problem(422, api.TypeUnprocessable)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
			if !strings.Contains(p.Detail, noS3) {
				t.Errorf("detail %q, want it to contain %q", p.Detail, noS3)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 0 {
		t.Errorf("%d jobs stored, want 0", n)
	}

	job := f.submit(f.submitter, "vision", 5)
	if job.TemporalWorkflowID == nil {
		t.Error("plain job has no temporal_workflow_id, want a workflow without S3 too")
	}
}

func TestSubmitWithoutWorkflowsPlainJob(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)

	if job.SubmittedBy == nil || *job.SubmittedBy != "vision-ci" {
		t.Errorf("submitted_by %v, want vision-ci", job.SubmittedBy)
	}
	if job.TemporalWorkflowID != nil {
		t.Errorf("temporal_workflow_id %q, want none without workflows", *job.TemporalWorkflowID)
	}
	if job.Result != nil {
		t.Errorf("result %s, want none", job.Result)
	}
	if n := f.count(`SELECT count(*) FROM workflow_events`); n != 0 {
		t.Errorf("%d workflow events, want 0", n)
	}
}

func TestSubmitHPOWithWorkflows(t *testing.T) {
	f := setup(t)
	f.useWorkflows()

	var job api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", hpoBody()).want(201).decode(&job)

	if job.Status != "submitted" {
		t.Errorf("status %q, want submitted: an hpo job never enters the queue", job.Status)
	}
	wantWorkflow := "job-" + job.ID.String()
	if job.TemporalWorkflowID == nil || *job.TemporalWorkflowID != wantWorkflow {
		t.Errorf("temporal_workflow_id %v, want %s", job.TemporalWorkflowID, wantWorkflow)
	}
	if job.SubmittedBy == nil || *job.SubmittedBy != "vision-ci" {
		t.Errorf("submitted_by %v, want vision-ci", job.SubmittedBy)
	}
	if n := f.count(`SELECT count(*) FROM workflow_events WHERE workflow_id = $1 AND kind = 'start'`, wantWorkflow); n != 1 {
		t.Errorf("%d start events for %s, want 1", n, wantWorkflow)
	}

	var read api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&read)
	if read.TemporalWorkflowID == nil || *read.TemporalWorkflowID != wantWorkflow {
		t.Errorf("GET: temporal_workflow_id %v, want %s", read.TemporalWorkflowID, wantWorkflow)
	}
}

func TestSubmitModelWithWorkflows(t *testing.T) {
	f := setup(t)
	f.useWorkflows()

	var job api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", registeredBody()).want(201).decode(&job)
	if job.Status != "queued" {
		t.Errorf("status %q, want queued", job.Status)
	}
	if job.TemporalWorkflowID == nil || *job.TemporalWorkflowID != "job-"+job.ID.String() {
		t.Errorf("temporal_workflow_id %v, want job-%s", job.TemporalWorkflowID, job.ID)
	}
}

func TestJobViewShowsResult(t *testing.T) {
	f := setup(t)
	job := f.submit(f.submitter, "vision", 5)
	result := map[string]any{"metrics": map[string]float64{"accuracy": 0.91}, "model_version": 1}
	if err := f.store.SetJobResult(context.Background(), store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}, result); err != nil {
		t.Fatal(err)
	}

	var read api.Job
	f.do(f.submitter, "GET", "/v1/jobs/"+job.ID.String(), nil).want(200).decode(&read)
	wantJSON(t, "result", read.Result, `{"metrics": {"accuracy": 0.91}, "model_version": 1}`)
}

// TestPauseHPOParentConflicts: pausing an hpo parent whose trials have all ended is a
// conflict that gives the reason, and it changes nothing, because the parent's workflow is
// about to score the trials and end it. A parent whose trials are still being created
// (submitted) cannot be paused either.
func TestPauseHPOParentConflicts(t *testing.T) {
	f := setup(t)
	parent := f.hpoParent()
	p := f.action(f.operator, parent, "pause").problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "applies to an hpo parent that is running") {
		t.Errorf("pause of a submitted parent: detail %q, want it to say a parent must be running", p.Detail)
	}

	trial := f.addTrial(parent)
	f.startSearch(parent)
	f.action(f.submitter, trial, "cancel").want(200)
	before := f.auditCount()
	p = f.action(f.operator, parent, "pause").problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "trials have all ended") {
		t.Errorf("pause of a parent whose trials ended: detail %q, want it to say so", p.Detail)
	}
	if got := f.job(parent.ID).Status; got != store.JobRunning {
		t.Errorf("parent %s after the rejected pause, want running", got)
	}
	if after := f.auditCount(); after != before {
		t.Errorf("%d audit records after the rejected pause, want %d", after, before)
	}
}

// TestEvalOnlyNeedsVersionOfItsProject: an eval_only job must name a model version that
// exists and belongs to its own project.
func TestEvalOnlyNeedsVersionOfItsProject(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	tr := f.train(f.submitter, "llama-ft")
	evalOnly := func(version string) map[string]any {
		config := fineTune(1)
		config["evaluation"] = map[string]any{"model_version_id": version,
			"thresholds": map[string]any{"accuracy": map[string]any{"min": 0.8}}}
		return map[string]any{"job_type": "eval_only", "config": config}
	}

	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", evalOnly(tr.version.ID.String())).want(201)
	for name, c := range map[string]struct {
		token, project, version, detail string
	}{
		"missing version": {f.submitter, "vision", "01930000-0000-7000-8000-000000000000",
			"no model version 01930000-0000-7000-8000-000000000000 exists in project vision"},
		"other project": {f.audioSubmitter, "audio", tr.version.ID.String(),
			"no model version " + tr.version.ID.String() + " exists in project audio"},
	} {
		p := f.do(c.token, "POST", "/v1/projects/"+c.project+"/jobs", evalOnly(c.version)).problem(422, api.TypeUnprocessable)
		if p.Field != "config.evaluation.model_version_id" || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: field %q detail %q, want config.evaluation.model_version_id and %q", name, p.Field, p.Detail, c.detail)
		}
	}
}

// TestSubmitChildOfHPORejected: a child of an hpo job is rejected, since the hpo job would
// count, wait for and score it as one of its trials.
func TestSubmitChildOfHPORejected(t *testing.T) {
	f := setup(t)
	f.useWorkflows()
	var parent api.Job
	f.do(f.submitter, "POST", "/v1/projects/vision/jobs", hpoBody()).want(201).decode(&parent)

	child := registeredBody()
	child["parent_job_id"] = parent.ID.String()
	p := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", child).problem(422, api.TypeUnprocessable)
	if p.Field != "parent_job_id" {
		t.Errorf("field %q, want parent_job_id", p.Field)
	}
	if want := "job " + parent.ID.String() + " is an hpo job"; !strings.Contains(p.Detail, want) {
		t.Errorf("detail %q, want it to contain %q", p.Detail, want)
	}
	if n := f.count(`SELECT count(*) FROM jobs WHERE parent_job_id = $1`, parent.ID); n != 0 {
		t.Errorf("%d children stored, want 0", n)
	}
}
