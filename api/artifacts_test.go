package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

const (
	checksumA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	checksumB = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
)

// startedRun submits a job as token to project, admits it and starts its run.
func (f *fixture) startedRun(token, project string) (api.Job, store.Admission) {
	f.t.Helper()
	job := f.submit(token, project, 5)
	return job, f.startNextRun()
}

// startNextRun admits the one queued job and starts its run on node-1.
func (f *fixture) startNextRun() store.Admission {
	f.t.Helper()
	admissions := f.admit()
	if len(admissions) != 1 {
		f.t.Fatalf("%d admissions, want 1", len(admissions))
	}
	if err := f.store.StartRun(context.Background(), admissions[0].RunID, time.Now(), "node-1"); err != nil {
		f.t.Fatal(err)
	}
	return admissions[0]
}

func (f *fixture) endRun(runID uuid.UUID, status store.RunStatus) {
	f.t.Helper()
	_, err := f.store.EndRun(context.Background(), store.RunEnd{RunID: runID, Status: status, EndedAt: time.Now(),
		Reason: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
}

func artifactPath(runID uuid.UUID) string { return "/v1/runs/" + runID.String() + "/artifacts" }

func checkpointBody(uri string, step int) map[string]any {
	return map[string]any{"artifact_type": "checkpoint", "storage_uri": uri, "checksum_sha256": checksumA,
		"size_bytes": 1 << 20, "step": step, "metadata": map[string]any{"loss": 0.42}}
}

// recordArtifact reports an artifact of the run as token and returns it.
func (f *fixture) recordArtifact(token string, runID uuid.UUID, body map[string]any) api.Artifact {
	f.t.Helper()
	var a api.Artifact
	f.do(token, "POST", artifactPath(runID), body).want(201).decode(&a)
	return a
}

func TestRecordCheckpoint(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	uri := "s3://vision-ckpt/llama/step-100"

	a := f.recordArtifact(f.submitter, run.RunID, checkpointBody(uri, 100))

	if a.RunID != run.RunID || a.ArtifactType != "checkpoint" || a.StorageURI != uri {
		t.Errorf("artifact %+v, want a checkpoint of run %s at %s", a, run.RunID, uri)
	}
	if a.ChecksumSHA256 != checksumA || a.SizeBytes != 1<<20 {
		t.Errorf("checksum %s size %d, want %s and %d", a.ChecksumSHA256, a.SizeBytes, checksumA, 1<<20)
	}
	wantJSON(t, "metadata", a.Metadata, `{"loss": 0.42, "step": 100}`)
	stored, err := f.store.GetRun(context.Background(), run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LastCheckpointURI == nil || *stored.LastCheckpointURI != uri {
		t.Errorf("last_checkpoint_uri %v, want %s", stored.LastCheckpointURI, uri)
	}
	if stored.LastCheckpointStep == nil || *stored.LastCheckpointStep != 100 {
		t.Errorf("last_checkpoint_step %v, want 100", stored.LastCheckpointStep)
	}
}

func TestRecordArtifactRetry(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	body := checkpointBody("s3://vision-ckpt/llama/step-100", 100)

	first := f.recordArtifact(f.submitter, run.RunID, body)
	again := f.recordArtifact(f.operator, run.RunID, body)
	if again.ID != first.ID {
		t.Errorf("retry recorded %s, want the first record %s", again.ID, first.ID)
	}

	body["checksum_sha256"] = checksumB
	p := f.do(f.submitter, "POST", artifactPath(run.RunID), body).problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, checksumA) {
		t.Errorf("detail %q, want it to name the recorded checksum", p.Detail)
	}
	if n := f.count(`SELECT count(*) FROM artifacts WHERE run_id = $1`, run.RunID); n != 1 {
		t.Errorf("%d artifacts stored, want 1", n)
	}
}

func TestRecordCheckpointSlotRotation(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	slotA, slotB := "s3://vision-ckpt/llama/slot-a", "s3://vision-ckpt/llama/slot-b"

	first := f.recordArtifact(f.submitter, run.RunID, checkpointBody(slotA, 100))
	f.recordArtifact(f.submitter, run.RunID, checkpointBody(slotB, 200))
	body := checkpointBody(slotA, 300)
	body["checksum_sha256"] = checksumB
	again := f.recordArtifact(f.submitter, run.RunID, body)

	if again.ID != first.ID {
		t.Errorf("slot A again recorded row %s, want the first row %s", again.ID, first.ID)
	}
	if again.ChecksumSHA256 != checksumB {
		t.Errorf("slot A row has checksum %s, want %s", again.ChecksumSHA256, checksumB)
	}
	stored, err := f.store.GetRun(context.Background(), run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	switch uri := stored.LastCheckpointURI; {
	case uri == nil:
		t.Errorf("last_checkpoint_uri is null, want %s", slotA)
	case *uri != slotA:
		t.Errorf("last_checkpoint_uri %s, want %s", *uri, slotA)
	}
	switch step := stored.LastCheckpointStep; {
	case step == nil:
		t.Error("last_checkpoint_step is null, want 300")
	case *step != 300:
		t.Errorf("last_checkpoint_step %d, want 300", *step)
	}

	// The same step with another checksum is a retry that disagrees with the record.
	body["checksum_sha256"] = checksumA
	f.do(f.submitter, "POST", artifactPath(run.RunID), body).problem(409, api.TypeConflict)
}

func TestRecordArtifactEndedRun(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	f.endRun(run.RunID, store.RunCompleted)

	p := f.do(f.submitter, "POST", artifactPath(run.RunID), checkpointBody("s3://vision-ckpt/late", 5)).
		problem(409, api.TypeConflict)
	if !strings.Contains(p.Detail, "has ended") {
		t.Errorf("detail %q, want it to say the run has ended", p.Detail)
	}
	if n := f.count(`SELECT count(*) FROM artifacts`); n != 0 {
		t.Errorf("%d artifacts stored, want 0", n)
	}
}

func TestRecordArtifactAccess(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	body := checkpointBody("s3://vision-ckpt/a", 1)

	f.do(f.audioSubmitter, "POST", artifactPath(run.RunID), body).problem(404, api.TypeNotFound)
	f.do(f.submitter, "POST", artifactPath(uuid.Must(uuid.NewV7())), body).problem(404, api.TypeNotFound)
	p := f.do(f.submitter, "POST", "/v1/runs/not-a-run/artifacts", body).problem(400, api.TypeInvalidRequest)
	if p.Field != "run" {
		t.Errorf("field %q, want run", p.Field)
	}
	f.recordArtifact(f.admin, run.RunID, body)
}

func TestRecordArtifactInvalidFields(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")

	cases := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"unknown type", func(b map[string]any) { b["artifact_type"] = "weights" }, "artifact_type"},
		{"missing type", func(b map[string]any) { delete(b, "artifact_type") }, "artifact_type"},
		{"missing uri", func(b map[string]any) { delete(b, "storage_uri") }, "storage_uri"},
		{"not s3", func(b map[string]any) { b["storage_uri"] = "gs://bucket/key" }, "storage_uri"},
		{"bad bucket", func(b map[string]any) { b["storage_uri"] = "s3://Bad_Bucket/key" }, "storage_uri"},
		{"no key", func(b map[string]any) { b["storage_uri"] = "s3://bucket/" }, "storage_uri"},
		{"control character", func(b map[string]any) { b["storage_uri"] = "s3://bucket/a\nb" }, "storage_uri"},
		{"dot-dot segment", func(b map[string]any) { b["storage_uri"] = "s3://bucket/vision/../audio/ckpt" }, "storage_uri"},
		{"dot segment", func(b map[string]any) { b["storage_uri"] = "s3://bucket/./ckpt" }, "storage_uri"},
		{"uri too long", func(b map[string]any) { b["storage_uri"] = "s3://bucket/" + strings.Repeat("k", 1013) }, "storage_uri"},
		{"uppercase checksum", func(b map[string]any) { b["checksum_sha256"] = strings.ToUpper(checksumA) }, "checksum_sha256"},
		{"short checksum", func(b map[string]any) { b["checksum_sha256"] = checksumA[:63] }, "checksum_sha256"},
		{"missing size", func(b map[string]any) { delete(b, "size_bytes") }, "size_bytes"},
		{"negative size", func(b map[string]any) { b["size_bytes"] = -1 }, "size_bytes"},
		{"metadata array", func(b map[string]any) { b["metadata"] = []int{1} }, "metadata"},
		{"negative step", func(b map[string]any) { b["step"] = -1 }, "step"},
		{"step too large", func(b map[string]any) { b["step"] = int64(1) << 31 }, "step"},
		{"step of a log", func(b map[string]any) { b["artifact_type"] = "log" }, "step"},
		{"unknown field", func(b map[string]any) { b["bucket"] = "x" }, "bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := checkpointBody("s3://vision-ckpt/a", 1)
			c.edit(body)
			p := f.do(f.submitter, "POST", artifactPath(run.RunID), body).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (%s)", p.Field, c.field, p.Detail)
			}
		})
	}

	longest := checkpointBody("s3://bucket/"+strings.Repeat("k", 1012), 1)
	f.recordArtifact(f.submitter, run.RunID, longest)
}

// TestRecordCheckpointMetadataStep: a metadata "step" beside the request's step must be the
// same number, because the stored metadata keeps only the request's step.
func TestRecordCheckpointMetadataStep(t *testing.T) {
	f := setup(t)
	_, run := f.startedRun(f.submitter, "vision")
	const fix = "send the step once, or the same number in both"
	rejected := []struct {
		name, step, want string
	}{
		{"larger", `500`, "is 500 but step is 100; " + fix},
		{"smaller", `99`, "is 99 but step is 100; " + fix},
		{"fraction", `100.5`, "is 100.5 but step is 100; " + fix},
		{"string", `"100"`, "is not a number but step is 100; " + fix},
		{"null", `null`, "is not a number but step is 100; " + fix},
	}
	for _, c := range rejected {
		t.Run(c.name, func(t *testing.T) {
			body := stepBody("s3://vision-ckpt/a", c.step)
			p := f.do(f.submitter, "POST", artifactPath(run.RunID), body).problem(400, api.TypeInvalidRequest)
			if p.Field != "metadata.step" {
				t.Errorf("field %q, want metadata.step", p.Field)
			}
			if p.Detail != c.want {
				t.Errorf("detail %q, want %q", p.Detail, c.want)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM artifacts WHERE run_id = $1`, run.RunID); n != 0 {
		t.Errorf("%d artifacts stored, want 0", n)
	}

	for i, step := range []string{`100`, `100.0`, `1e2`} {
		uri := fmt.Sprintf("s3://vision-ckpt/equal-%d", i)
		var a api.Artifact
		f.do(f.submitter, "POST", artifactPath(run.RunID), stepBody(uri, step)).want(201).decode(&a)
		wantJSON(t, "metadata", a.Metadata, `{"loss": 0.42, "step": 100}`)
	}
}

// stepBody is checkpointBody at step 100 as raw JSON, with metadataStep as the metadata's
// "step", so that the test controls how that number is written.
func stepBody(uri, metadataStep string) string {
	return fmt.Sprintf(`{"artifact_type":"checkpoint","storage_uri":%q,"checksum_sha256":%q,"size_bytes":1048576,`+
		`"step":100,"metadata":{"loss":0.42,"step":%s}}`, uri, checksumA, metadataStep)
}

// With an artifact URI prefix configured, a project's artifacts must be under its own
// prefix, so that retention never deletes another project's objects for it. The prefix is
// compared as written: an escaped slash does not reach another project's folder.
func TestRecordArtifactOutsidePrefix(t *testing.T) {
	f := setup(t)
	f.server.Close()
	f.api = api.New(api.Config{Store: f.store, ArtifactURIPrefix: "s3://ckpt/{project}/"})
	f.server = httptest.NewServer(f.api)
	t.Cleanup(f.server.Close)
	_, run := f.startedRun(f.submitter, "vision")

	for _, uri := range []string{"s3://ckpt/audio/models/", "s3://ckpt/visionary/a", "s3://other/vision/a",
		"s3://ckpt/audio%2Fmodels/"} {
		p := f.do(f.submitter, "POST", artifactPath(run.RunID), checkpointBody(uri, 1)).problem(422, api.TypeUnprocessable)
		if p.Field != "storage_uri" {
			t.Errorf("%s: field %q, want storage_uri", uri, p.Field)
		}
		if !strings.Contains(p.Detail, "s3://ckpt/vision/") {
			t.Errorf("%s: detail %q, want it to name the prefix s3://ckpt/vision/", uri, p.Detail)
		}
	}
	if a := f.recordArtifact(f.submitter, run.RunID, checkpointBody("s3://ckpt/vision/step-1", 1)); a.StorageURI != "s3://ckpt/vision/step-1" {
		t.Errorf("recorded %q, want s3://ckpt/vision/step-1", a.StorageURI)
	}
}
