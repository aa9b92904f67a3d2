package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// startRun submits a job to vision and starts its run on node-1, as the scheduler and the
// dispatcher would, and returns the job and the run's id.
func (s *apiSession) startRun(db *store.Store) (api.Job, uuid.UUID) {
	s.t.Helper()
	ctx := context.Background()
	s.ok("quota", "set", "vision", "-max-concurrent", "1")
	job := s.submit()
	admitFirst := func(snap store.Snapshot) ([]store.Decision, []store.Refusal) {
		return []store.Decision{{Candidate: snap.Candidates[0], GPUModel: "A10", GPUHoursReserved: 1}}, nil
	}
	admissions, err := db.Dequeue(ctx, store.CandidateWindow{Limit: 10}, admitFirst)
	if err != nil || len(admissions) != 1 {
		s.t.Fatalf("dequeue: %d admissions, err %v", len(admissions), err)
	}
	if err := db.StartRun(ctx, admissions[0].RunID, time.Now().Add(-time.Hour), "node-1"); err != nil {
		s.t.Fatal(err)
	}
	return job, admissions[0].RunID
}

// endRun ends the run as completed now.
func endRun(t *testing.T, db *store.Store, runID uuid.UUID) {
	t.Helper()
	_, err := db.EndRun(context.Background(), store.RunEnd{RunID: runID, Status: store.RunCompleted, EndedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

func checksumOf(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

// tableLines returns the lines of a command's table output with each run of spaces made
// one, so that a test need not know the column widths.
func tableLines(output string) []string {
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(output), "\n") {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	return lines
}

// checkLines reports each line of want that output lacks, spaces made one as by tableLines.
func checkLines(t *testing.T, command string, output string, want ...string) {
	t.Helper()
	lines := tableLines(output)
	for _, line := range want {
		found := false
		for _, got := range lines {
			if got == line {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("%s printed:\n%s\nwant the line %q", command, output, line)
		}
	}
}

// TestArtifactRecordStoresRow records a checkpoint through the CLI and reads its row, and
// the run's last checkpoint, back from the database.
func TestArtifactRecordStoresRow(t *testing.T) {
	s := newProjectSession(t)
	db := s.openStore()
	job, runID := s.startRun(db)
	uri := "s3://vision-ckpt/" + job.ID.String() + "/step-100"
	checksum := checksumOf("weights at step 100")

	printed := s.ok("artifact", "record", runID.String(), "-type", "checkpoint", "-uri", uri, "-sha256", checksum,
		"-size", "1234", "-step", "100", "-metadata", `{"epoch": 3}`)
	checkLines(t, "artifact record", printed, "run "+runID.String(), "type checkpoint", "uri "+uri,
		"sha256 "+checksum, "size 1234 bytes", `metadata {"step":100,"epoch":3}`, "deleted -")

	artifacts, err := db.JobArtifacts(context.Background(), store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(artifacts) != 1 {
		t.Fatalf("job has %d artifacts, want 1: %+v", len(artifacts), artifacts)
	}
	a := artifacts[0]
	if a.RunID != runID {
		t.Errorf("artifact of run %s, want %s", a.RunID, runID)
	}
	if a.Type != "checkpoint" {
		t.Errorf("artifact type %q, want checkpoint", a.Type)
	}
	if a.URI != uri {
		t.Errorf("artifact URI %q, want %q", a.URI, uri)
	}
	if a.Checksum != checksum {
		t.Errorf("artifact checksum %q, want %q", a.Checksum, checksum)
	}
	if a.SizeBytes != 1234 {
		t.Errorf("artifact size %d, want 1234", a.SizeBytes)
	}
	var metadata map[string]float64
	if err := json.Unmarshal(a.Metadata, &metadata); err != nil {
		t.Fatalf("artifact metadata %s: %v", a.Metadata, err)
	}
	if metadata["epoch"] != 3 || metadata["step"] != 100 || len(metadata) != 2 {
		t.Errorf("artifact metadata %s, want epoch 3 and step 100", a.Metadata)
	}

	runs, err := db.JobRuns(context.Background(), store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if got := orDash(runs[0].LastCheckpointURI, plain); got != uri {
		t.Errorf("run's last checkpoint %q, want %q", got, uri)
	}
}

// TestArtifactRecordRunIDFromEnv: without a run id argument the command reports to the run
// in SCHEDULERD_RUN_ID, as a training pod has it, and an argument takes precedence.
func TestArtifactRecordRunIDFromEnv(t *testing.T) {
	s := newProjectSession(t)
	db := s.openStore()
	job, runID := s.startRun(db)
	uri := "s3://vision-models/" + job.ID.String() + "/model"
	checksum := checksumOf("final weights")

	s.env[runIDVariable] = runID.String()
	var recorded api.Artifact
	printed := s.ok("artifact", "record", "-type", "model", "-uri", uri, "-sha256", checksum, "-size", "0", "-o", "json")
	if err := json.Unmarshal([]byte(printed), &recorded); err != nil {
		t.Fatalf("artifact record -o json printed %q: %v", printed, err)
	}
	if recorded.RunID != runID {
		t.Errorf("recorded for run %s, want %s from %s", recorded.RunID, runID, runIDVariable)
	}
	if recorded.ArtifactType != "model" || recorded.StorageURI != uri || recorded.SizeBytes != 0 {
		t.Errorf("recorded %s %s of %d bytes, want model %s of 0 bytes", recorded.ArtifactType, recorded.StorageURI,
			recorded.SizeBytes, uri)
	}

	// Another run's id in the variable: the argument names the run that gets the report.
	s.env[runIDVariable] = "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"
	logURI := "s3://vision-logs/" + job.ID.String() + "/train.log"
	s.ok("artifact", "record", runID.String(), "-type", "log", "-uri", logURI, "-sha256", checksumOf("log"), "-size", "3")

	artifacts, err := db.JobArtifacts(context.Background(), store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	if len(artifacts) != 2 {
		t.Fatalf("job has %d artifacts, want the model and the log: %+v", len(artifacts), artifacts)
	}
	for i, want := range []string{uri, logURI} {
		if artifacts[i].URI != want || artifacts[i].RunID != runID {
			t.Errorf("artifact %d: %s of run %s, want %s of run %s", i, artifacts[i].URI, artifacts[i].RunID, want, runID)
		}
	}
}

// TestArtifactRecordRejectsBadInput needs no database: every case exits 2 with the flag at
// fault before any request reaches the server, which counts the requests it gets.
func TestArtifactRecordRejectsBadInput(t *testing.T) {
	var requests atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "no request expected", http.StatusTeapot)
	}))
	t.Cleanup(server.Close)
	const runID = "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"
	checksum := checksumOf("weights")
	valid := []string{"-type", "checkpoint", "-uri", "s3://vision-ckpt/a/step-1", "-sha256", checksum, "-size", "10"}
	with := func(args ...string) []string {
		return append(append([]string{"artifact", "record"}, valid...), args...)
	}
	usage := "usage: schedulerd " + artifactRecordUsage

	cases := []struct {
		name  string
		args  []string
		runID string // SCHEDULERD_RUN_ID
		want  string
	}{
		{"missing type", []string{"artifact", "record", runID, "-uri", "s3://b-1/k", "-sha256", checksum, "-size", "1"}, "",
			"missing -type; " + usage},
		{"missing every required flag", []string{"artifact", "record", runID}, "",
			"missing -type, -uri, -sha256, -size; " + usage},
		{"no run id", with(), "", "missing RUN_ID: give the run's id, or set SCHEDULERD_RUN_ID, as schedulerd does in " +
			"the run's pod; " + usage},
		{"run id not a UUID", with("run-7"), "",
			`invalid run id "run-7": want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d`},
		{"run id in the variable not a UUID", with(), "42",
			`invalid run id "42" in SCHEDULERD_RUN_ID: want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d`},
		{"two run ids", with(runID, runID), "", `unexpected arguments ["` + runID + `"] after the run id; ` + usage},
		{"unknown type", []string{"artifact", "record", runID, "-type", "ckpt", "-uri", "s3://b-1/k", "-sha256", checksum,
			"-size", "1"}, "",
			`invalid -type: "ckpt" is not an artifact type; want one of checkpoint, model, adapter, log, eval_report`},
		{"URI not S3", with("-uri", "gs://vision/k"), runID, `invalid -uri: "gs://vision/k" is not an s3:// URI; want s3://BUCKET/KEY`},
		{"URI without a key", with("-uri", "s3://vision-ckpt/"), runID,
			`invalid -uri: "s3://vision-ckpt/" has no object key; want s3://BUCKET/KEY`},
		{"URI with a dot-dot segment", with("-uri", "s3://vision-ckpt/a/../b"), runID,
			`invalid -uri: the object key "a/../b" has a ".." path segment`},
		{"checksum in capitals", with("-sha256", strings.ToUpper(checksum)), runID,
			"invalid -sha256: must be the SHA-256 of the object as 64 lowercase hex digits"},
		{"checksum too short", with("-sha256", checksum[:63]), runID,
			"invalid -sha256: must be the SHA-256 of the object as 64 lowercase hex digits"},
		{"negative size", with("-size", "-5"), runID, "invalid -size: must be 0 or more, got -5"},
		{"size not a number", with("-size", "1GB"), runID, `invalid value "1GB" for flag -size: parse error`},
		{"negative step", with("-step", "-1"), runID, "invalid -step: must be from 0 to 2147483647, got -1"},
		{"step of a model", []string{"artifact", "record", runID, "-type", "model", "-uri", "s3://b-1/k", "-sha256", checksum,
			"-size", "1", "-step", "3"}, "", "invalid -step: only a checkpoint has a training step"},
		{"metadata not JSON", with("-metadata", `{"epoch": 3`), runID,
			"invalid -metadata: not valid JSON: line 1, column 11: unexpected end of JSON input"},
		{"metadata an array", with("-metadata", `[3]`), runID,
			`invalid -metadata [3]: want a JSON object such as '{"epoch": 3}'`},
		{"metadata step unlike -step", with("-step", "7", "-metadata", `{"step": 5}`), runID,
			"invalid -metadata (metadata.step): is 5 but step is 7; send the step once, or the same number in both"},
		{"bad output format", with("-o", "yaml"), runID, `invalid -o "yaml": want table or json`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{"SCHEDULERD_API_URL": server.URL, "SCHEDULERD_TOKEN": "sdt_x", runIDVariable: c.runID}
			code, stdout, stderr := run(t, env, c.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if want := "schedulerd artifact: " + c.want + "\n"; stderr != want {
				t.Errorf("stderr %q, want %q", stderr, want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the server got %d requests, want none", n)
	}
}

// TestArtifactRecordAPIErrors: what only the server can tell, an unknown run or one that has
// ended, exits 1 with the problem's detail.
func TestArtifactRecordAPIErrors(t *testing.T) {
	s := newProjectSession(t)
	db := s.openStore()
	_, runID := s.startRun(db)
	endRun(t, db, runID)
	flags := []string{"-type", "checkpoint", "-uri", "s3://vision-ckpt/late", "-sha256", checksumOf("late"), "-size", "1"}

	unknown := "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"
	cases := []struct {
		name, runID, want string
	}{
		{"unknown run", unknown, "schedulerd artifact: HTTP 404 not found: run " + unknown + " does not exist\n"},
		{"ended run", runID.String(), "schedulerd artifact: HTTP 409 conflict with the current state: run " +
			runID.String() + " has ended and accepts no more artifacts\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, s.env, append([]string{"artifact", "record", c.runID}, flags...)...)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if stderr != c.want {
				t.Errorf("stderr %q, want %q", stderr, c.want)
			}
		})
	}
}

// TestArtifactRecordHelp: -h names the run id's default and the required flags, and needs
// no token.
func TestArtifactRecordHelp(t *testing.T) {
	code, stdout, stderr := run(t, nil, "artifact", "record", "-h")
	if code != 0 {
		t.Errorf("exit %d, want 0; stderr %q", code, stderr)
	}
	for _, want := range []string{
		"Usage of artifact record: schedulerd " + artifactRecordUsage + "\n",
		"RUN_ID defaults to $SCHEDULERD_RUN_ID, which schedulerd sets in the pod of each run.\n",
		"size of the object in bytes (required)",
		`-api-url (env SCHEDULERD_API_URL) = ""`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not contain %q:\n%s", want, stderr)
		}
	}
	if n := strings.Count(stderr, "Usage of "); n != 1 {
		t.Errorf("stderr has %d flag lists, want 1", n)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}
