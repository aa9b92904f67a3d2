package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// completedJob submits a job and runs it to completion on A10, returning its key.
func completedJob(t *testing.T, s *store.Store) store.JobRef {
	t.Helper()
	a := admitOne(t, s, 1000, 3)
	ctx := context.Background()
	start := time.Now().Add(-time.Hour)
	if err := s.StartRun(ctx, a.RunID, start, "node-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunCompleted, EndedAt: start.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return a.Job
}

func register(t *testing.T, s *store.Store, job store.JobRef, model string) store.ModelVersion {
	t.Helper()
	v, err := s.RegisterModelVersion(context.Background(), store.NewVersion{ProjectID: "vision", ModelName: model,
		Job: job, ArtifactURI: "s3://models/" + job.ID.String(), DatasetVersion: "ds-1", CodeCommit: "abc",
		EvalMetrics: map[string]float64{"accuracy": 0.9}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVersionNumbersHaveNoGaps registers 16 versions of one model at once, one per job:
// they get the numbers 1 to 16, each once. Registering again for a job returns its version.
func TestVersionNumbersHaveNoGaps(t *testing.T) {
	s := setup(t)
	const n = 16
	jobs := make([]store.JobRef, n)
	for i := range jobs {
		job, err := s.SubmitJob(context.Background(), submission(""))
		if err != nil {
			t.Fatal(err)
		}
		jobs[i] = job.Ref()
	}

	numbers := make([]int, n)
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() { numbers[i] = register(t, s, job, "resnet").VersionNumber })
	}
	wg.Wait()
	sort.Ints(numbers)
	for i, got := range numbers {
		if got != i+1 {
			t.Fatalf("version numbers %v, want 1 to %d", numbers, n)
		}
	}

	again := register(t, s, jobs[0], "resnet")
	versions, _ := s.ListModelVersions(context.Background(), "vision", "resnet")
	if len(versions) != n || again.JobID != jobs[0].ID {
		t.Errorf("%d versions after registering job 0 again (got version %d), want %d", len(versions), again.VersionNumber, n)
	}
}

// TestRegisterOtherModelForJob: a job that registered a version of one model gets
// ErrInvalid, not that version, when a version of another model is registered for it.
func TestRegisterOtherModelForJob(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := completedJob(t, s)
	first := register(t, s, job, "resnet")

	v, err := s.RegisterModelVersion(ctx, store.NewVersion{ProjectID: "vision", ModelName: "detector",
		Job: job, ArtifactURI: "s3://models/" + job.ID.String()})
	if !errors.Is(err, store.ErrInvalid) {
		t.Errorf("registering model detector after resnet: version %+v, err %v, want ErrInvalid", v, err)
	}
	if err != nil && !strings.Contains(err.Error(), "version 1 of model vision/resnet") {
		t.Errorf("error %q, want it to name version 1 of model vision/resnet", err)
	}
	versions, err := s.ListModelVersions(ctx, "vision", "detector")
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 0 {
		t.Errorf("%d versions of detector, want none", len(versions))
	}
	again := register(t, s, job, "resnet")
	if again.ID != first.ID {
		t.Errorf("registering resnet again returned version %s, want the first %s", again.ID, first.ID)
	}
}

// A version registered without an evaluation, from a job with a model section only, has
// no metrics: an empty object as the column's default, not JSON null.
func TestRegisterWithoutMetricsStoresEmptyObject(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	job := completedJob(t, s)

	v, err := s.RegisterModelVersion(ctx, store.NewVersion{ProjectID: "vision", ModelName: "resnet",
		Job: job, ArtifactURI: "s3://models/" + job.ID.String()})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(v.EvalMetrics); got != "{}" {
		t.Errorf("metrics %s, want {}", got)
	}
	var stored string
	if err := s.Pool().QueryRow(ctx, `SELECT eval_metrics_json::text FROM model_versions WHERE id = $1`,
		v.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != "{}" {
		t.Errorf("stored metrics %s, want {}", stored)
	}

	// Earlier versions stored JSON null; they read as {} too.
	if _, err := s.Pool().Exec(ctx, `UPDATE model_versions SET eval_metrics_json = 'null' WHERE id = $1`,
		v.ID); err != nil {
		t.Fatal(err)
	}
	old, err := s.GetModelVersion(ctx, v.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(old.EvalMetrics); got != "{}" {
		t.Errorf("metrics stored as null read as %s, want {}", got)
	}
}

// TestPromotionNeedsApprovalAndArchivesOldProd: prod without an approved request is
// refused; the second prod version archives the first in the same step.
func TestPromotionNeedsApprovalAndArchivesOldProd(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")

	if _, err := s.PromoteVersion(ctx, first.ID, "prod", "olga"); !errors.Is(err, store.ErrIllegalTransition) {
		t.Fatalf("promotion without approval: %v, want ErrIllegalTransition", err)
	}
	for _, v := range []store.ModelVersion{first, second} {
		approve(t, s, v.ID, "prod")
		if _, err := s.PromoteVersion(ctx, v.ID, "prod", "olga"); err != nil {
			t.Fatal(err)
		}
	}

	got1, _ := s.GetModelVersion(ctx, first.ID)
	got2, _ := s.GetModelVersion(ctx, second.ID)
	if got1.Stage != "archived" || got2.Stage != "prod" || got2.PromotedBy == nil || *got2.PromotedBy != "olga" {
		t.Errorf("stages %s and %s (promoted by %v), want archived and prod by olga", got1.Stage, got2.Stage, got2.PromotedBy)
	}
	// A new approval makes the archived version the one approved last, and it still stays
	// archived.
	approve(t, s, first.ID, "prod")
	if _, err := s.PromoteVersion(ctx, first.ID, "prod", "olga"); !errors.Is(err, store.ErrIllegalTransition) {
		t.Errorf("promoting an archived version: %v, want ErrIllegalTransition", err)
	}
}

// TestPromotionFollowsApprovalOrder: two versions approved for prod one after the other
// are promoted in the other order, as when the first one's workflow is late. The version
// approved last stays in prod, and the late promotion changes nothing.
func TestPromotionFollowsApprovalOrder(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	first := register(t, s, completedJob(t, s), "resnet")
	second := register(t, s, completedJob(t, s), "resnet")
	approve(t, s, first.ID, "prod")
	approve(t, s, second.ID, "prod")

	if _, err := s.PromoteVersion(ctx, second.ID, "prod", "olga"); err != nil {
		t.Fatal(err)
	}
	late, err := s.PromoteVersion(ctx, first.ID, "prod", "olga")
	if !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("late promotion of the version approved first: %v, want ErrStaleStatus", err)
	}
	if late.ID != first.ID || late.Stage != "dev" {
		t.Errorf("late promotion returned version %s in %s, want %s in dev", late.ID, late.Stage, first.ID)
	}

	got1, _ := s.GetModelVersion(ctx, first.ID)
	got2, _ := s.GetModelVersion(ctx, second.ID)
	if got1.Stage != "dev" {
		t.Errorf("version approved first is %s, want dev", got1.Stage)
	}
	if got2.Stage != "prod" {
		t.Errorf("version approved last is %s, want prod", got2.Stage)
	}
}

// approve requests and approves the promotion of version to stage as a job's workflow
// does, each time under a new workflow id, so the promotion is left to PromoteVersion.
func approve(t *testing.T, s *store.Store, version uuid.UUID, stage string) store.Approval {
	t.Helper()
	ctx := context.Background()
	req, err := s.RequestApproval(ctx, store.ApprovalRequest{ModelVersionID: version, TargetStage: stage,
		RequestedBy: "alice", Snapshot: json.RawMessage(`{"accuracy": 0.9}`), WorkflowID: "job-" + uuid.NewString()})
	if err != nil {
		t.Fatal(err)
	}
	decided, err := s.DecideApproval(ctx, store.ApprovalDecision{ApprovalID: req.ID, Approve: true, Reason: "good",
		Audit: &store.Audit{Actor: store.Actor{Name: "olga", Role: store.RoleOperator}, Action: "approval.approve", At: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	return decided
}

// TestApprovalRules: the requester cannot decide, a decision is final, the snapshot cannot
// change, and a workflow asking twice gets its first request.
func TestApprovalRules(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	v := register(t, s, completedJob(t, s), "resnet")
	req := store.ApprovalRequest{ModelVersionID: v.ID, TargetStage: "staging", RequestedBy: "alice",
		Snapshot: json.RawMessage(`{"accuracy": 0.9}`), WorkflowID: "job-x"}
	first, err := s.RequestApproval(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.RequestApproval(ctx, req); err != nil || again.ID != first.ID {
		t.Errorf("second request from the workflow: %v (%v), want the first %v", again.ID, err, first.ID)
	}

	decide := func(actor string) error {
		_, err := s.DecideApproval(ctx, store.ApprovalDecision{ApprovalID: first.ID, Approve: false, Reason: "no",
			Audit: &store.Audit{Actor: store.Actor{Name: actor, Role: store.RoleOperator}, Action: "approval.reject", At: time.Now()}})
		return err
	}
	if err := decide("alice"); !errors.Is(err, store.ErrSelfApproval) {
		t.Errorf("requester deciding: %v, want ErrSelfApproval", err)
	}
	if err := decide("olga"); err != nil {
		t.Fatal(err)
	}
	if err := decide("oscar"); !errors.Is(err, store.ErrStaleStatus) {
		t.Errorf("second decision: %v, want ErrStaleStatus", err)
	}
	_, err = s.Pool().Exec(ctx, `UPDATE approvals SET eval_snapshot_json = '{"accuracy": 1}' WHERE id = $1`, first.ID)
	if err == nil {
		t.Error("changing the snapshot succeeded, want it refused")
	}

	var events int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM workflow_events
		WHERE workflow_id = 'job-x' AND kind = 'approval_decided' AND payload->>'status' = 'rejected'`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Errorf("%d approval_decided events for job-x, want 1", events)
	}
}

// TestArtifactsOnlyFromLiveRuns: a live run's checkpoint becomes its last checkpoint; the
// same report again returns the first record; an ended run accepts none.
func TestArtifactsOnlyFromLiveRuns(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	step := int64(200)
	art := store.NewArtifact{RunID: a.RunID, Type: "checkpoint", URI: "s3://ckpt/run-1/step-200",
		Checksum: "3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea", SizeBytes: 10, Step: &step}
	first, err := s.RecordArtifact(ctx, art)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.RecordArtifact(ctx, art); err != nil || again.ID != first.ID {
		t.Errorf("same report again: %v (%v), want %v", again.ID, err, first.ID)
	}
	if uri, _ := s.LastCheckpoint(ctx, a.Job); uri != art.URI {
		t.Errorf("last checkpoint %q, want %q", uri, art.URI)
	}

	if _, err := s.EndRun(ctx, store.RunEnd{RunID: a.RunID, Status: store.RunFailed, EndedAt: time.Now(), Retryable: true}); err != nil {
		t.Fatal(err)
	}
	art.URI = "s3://ckpt/run-1/step-300"
	if _, err := s.RecordArtifact(ctx, art); !errors.Is(err, store.ErrRunEnded) {
		t.Errorf("artifact of an ended run: %v, want ErrRunEnded", err)
	}
}

// A checkpoint reported with a step and other metadata keeps both, with the step also in
// metadata_json, where retention reads it.
func TestCheckpointStepInMetadata(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	step := int64(700)
	recorded, err := s.RecordArtifact(ctx, store.NewArtifact{RunID: a.RunID, Type: "checkpoint",
		URI: "s3://ckpt/run-1/step-700", Checksum: strings.Repeat("ab", 32), SizeBytes: 10, Step: &step,
		Metadata: json.RawMessage(`{"metrics":{"loss":0.25}}`)})
	if err != nil {
		t.Fatal(err)
	}

	var metadata struct {
		Step    *int64             `json:"step"`
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(recorded.Metadata, &metadata); err != nil {
		t.Fatal(err)
	}
	if metadata.Step == nil || *metadata.Step != 700 {
		t.Errorf("metadata step %v, want 700 (%s)", metadata.Step, recorded.Metadata)
	}
	if metadata.Metrics["loss"] != 0.25 {
		t.Errorf("metadata metrics %v, want the reported loss 0.25", metadata.Metrics)
	}
}

// TestCheckpointSlotRotation: a trainer that writes its checkpoints to two slots in turn
// resumes from the slot it wrote last. A re-reported slot's row describes the new object,
// and a late retry of an older report moves nothing.
func TestCheckpointSlotRotation(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	a := admitOne(t, s, 1000, 3)
	report := func(uri string, step int64, checksum, metadata string) store.Artifact {
		t.Helper()
		got, err := s.RecordArtifact(ctx, store.NewArtifact{RunID: a.RunID, Type: "checkpoint", URI: uri,
			Checksum: checksum, SizeBytes: step * 10, Metadata: json.RawMessage(metadata), Step: &step})
		if err != nil {
			t.Fatalf("report %s at step %d: %v", uri, step, err)
		}
		return got
	}
	const (
		slotA     = "s3://ckpt/run-1/slot-a"
		slotB     = "s3://ckpt/run-1/slot-b"
		checksum1 = "1111111111111111111111111111111111111111111111111111111111111111"
		checksum2 = "2222222222222222222222222222222222222222222222222222222222222222"
		checksum3 = "3333333333333333333333333333333333333333333333333333333333333333"
	)
	first := report(slotA, 100, checksum1, `{"step": 100, "metrics": {"loss": 0.9}}`)
	report(slotB, 200, checksum2, `{"step": 200, "metrics": {"loss": 0.5}}`)
	again := report(slotA, 300, checksum3, `{"metrics": {"loss": 0.2}}`)

	if again.ID != first.ID {
		t.Errorf("slot A again recorded row %s, want the first row %s", again.ID, first.ID)
	}
	if again.Checksum != checksum3 || again.SizeBytes != 3000 {
		t.Errorf("slot A row has checksum %s and %d bytes, want %s and 3000", again.Checksum, again.SizeBytes, checksum3)
	}
	var metadata struct {
		Step    float64            `json:"step"`
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal(again.Metadata, &metadata); err != nil {
		t.Fatalf("slot A metadata %s: %v", again.Metadata, err)
	}
	if metadata.Step != 300 {
		t.Errorf("slot A metadata step %v, want 300", metadata.Step)
	}
	if metadata.Metrics["loss"] != 0.2 {
		t.Errorf("slot A metadata loss %v, want 0.2", metadata.Metrics["loss"])
	}
	if !again.CreatedAt.After(first.CreatedAt) {
		t.Errorf("slot A created_at %v, want after the first report's %v", again.CreatedAt, first.CreatedAt)
	}
	wantResumePoint(t, s, a, slotA, 300)

	if got := report(slotB, 200, checksum2, `{"step": 200}`); got.Checksum != checksum2 {
		t.Errorf("retry of slot B returned checksum %s, want %s", got.Checksum, checksum2)
	}
	if got := report(slotA, 100, checksum1, `{"step": 100}`); got.Checksum != checksum3 {
		t.Errorf("late retry of slot A at step 100 returned checksum %s, want the recorded %s", got.Checksum, checksum3)
	}
	wantResumePoint(t, s, a, slotA, 300)
	var rows int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM artifacts WHERE run_id = $1`, a.RunID).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != 2 {
		t.Errorf("%d artifact rows, want 2, one per slot", rows)
	}
}

// wantResumePoint checks the run's last checkpoint and step, and the job's resume point.
func wantResumePoint(t *testing.T, s *store.Store, a store.Admission, uri string, step int) {
	t.Helper()
	run, err := s.GetRun(context.Background(), a.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.LastCheckpointURI == nil || *run.LastCheckpointURI != uri {
		t.Errorf("run's last checkpoint %s, want %s", valueOf(run.LastCheckpointURI), uri)
	}
	if run.LastCheckpointStep == nil || *run.LastCheckpointStep != step {
		t.Errorf("run's last checkpoint step %s, want %d", valueOf(run.LastCheckpointStep), step)
	}
	if got, err := s.LastCheckpoint(context.Background(), a.Job); err != nil || got != uri {
		t.Errorf("job's resume point %q (%v), want %s", got, err, uri)
	}
}

// valueOf prints the value p points at, or nil.
func valueOf[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// TestOutboxEvents: a job with a workflow records start at submission and job_ended only
// at its first terminal status; a trial's end goes to its parent's workflow.
func TestOutboxEvents(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	parentSub := submission("")
	parentSub.JobType, parentSub.Workflow = "hpo", true
	parent, err := s.SubmitJob(ctx, parentSub)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Status != store.JobSubmitted {
		t.Errorf("hpo parent inserted %s, want submitted", parent.Status)
	}
	trialSub := submission("")
	trialSub.Parent, trialSub.Workflow = &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}, true
	trial, err := s.SubmitJob(ctx, trialSub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionJob(ctx, trial.Ref(), store.JobQueued, store.JobFailed, "broken"); err != nil {
		t.Fatal(err)
	}

	got := map[string]int{}
	rows, _ := s.Pool().Query(ctx, `SELECT workflow_id || ' ' || kind FROM workflow_events ORDER BY id`)
	for rows.Next() {
		var key string
		_ = rows.Scan(&key)
		got[key]++
	}
	pw, tw := store.WorkflowID(parent.ID), store.WorkflowID(trial.ID)
	want := map[string]int{pw + " start": 1, tw + " start": 1, tw + " job_ended": 1, pw + " trial_ended": 1}
	if len(got) != len(want) {
		t.Errorf("events %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("events %v, want %v", got, want)
			break
		}
	}

	if _, err := s.TransitionJob(ctx, parent.Ref(), store.JobSubmitted, store.JobQueued, ""); err == nil {
		t.Error("hpo parent moved to queued, want refused: it holds no pod")
	}
}
