package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// trainedVersion is a model version that a job of vision registered after its one run.
type trainedVersion struct {
	job        api.Job
	run        string
	checkpoint string
	version    store.ModelVersion
}

// trainVersion runs a job of vision that reports a checkpoint through the CLI, completes it
// and registers its version of resnet-ft, as a job's workflow does.
func (s *apiSession) trainVersion(db *store.Store, dataset string, accuracy float64) trainedVersion {
	s.t.Helper()
	job, runID := s.startRun(db)
	tr := trainedVersion{job: job, run: runID.String(), checkpoint: "s3://vision-ckpt/" + job.ID.String() + "/step-500"}
	s.ok("artifact", "record", tr.run, "-type", "checkpoint", "-uri", tr.checkpoint, "-sha256",
		checksumOf(tr.checkpoint), "-size", "2048", "-step", "500")
	endRun(s.t, db, runID)

	var err error
	tr.version, err = db.RegisterModelVersion(context.Background(), store.NewVersion{ProjectID: "vision",
		ModelName: "resnet-ft", Job: store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}, RunID: &runID,
		ArtifactURI: tr.checkpoint, DatasetVersion: dataset, CodeCommit: "4f2a9c1", ConfigHash: "sha256:c0ffee",
		TrackingRunID: "mlflow-" + dataset, EvalMetrics: map[string]float64{"accuracy": accuracy}})
	if err != nil {
		s.t.Fatal(err)
	}
	return tr
}

// TestModelVersionsList lists two registered versions, newest first, as a table and as JSON.
func TestModelVersionsList(t *testing.T) {
	s := newProjectSession(t)
	db := s.openStore()
	first := s.trainVersion(db, "imagenet-2026-10", 0.88)
	second := s.trainVersion(db, "imagenet-2026-11", 0.91)

	lines := tableLines(s.ok("model", "versions", "vision", "resnet-ft"))
	if len(lines) != 3 {
		t.Fatalf("model versions printed %d lines, want a header and two versions:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if want := "ID VERSION STAGE JOB DATASET CODE COMMIT CREATED METRICS"; lines[0] != want {
		t.Errorf("header %q, want %q", lines[0], want)
	}
	for i, tr := range []trainedVersion{second, first} {
		v := tr.version
		want := fmt.Sprintf("%s %d dev %s %s 4f2a9c1 %s %s", v.ID, v.VersionNumber, tr.job.ID, *v.DatasetVersion,
			showTime(v.CreatedAt), compactJSON(v.EvalMetrics))
		if lines[i+1] != want {
			t.Errorf("row %d %q, want %q", i+1, lines[i+1], want)
		}
	}
	if !strings.Contains(lines[1], `{"accuracy":0.91}`) || !strings.Contains(lines[1], " 2 dev ") {
		t.Errorf("first row %q, want version 2 with accuracy 0.91", lines[1])
	}

	var list api.ModelVersionList
	printed := s.ok("model", "versions", "vision", "resnet-ft", "-o", "json")
	if err := json.Unmarshal([]byte(printed), &list); err != nil {
		t.Fatalf("model versions -o json printed %q: %v", printed, err)
	}
	if len(list.Versions) != 2 {
		t.Fatalf("model versions -o json listed %d versions, want 2", len(list.Versions))
	}
	if list.Versions[0].ID != second.version.ID || list.Versions[0].VersionNumber != 2 {
		t.Errorf("first version %s (%d), want %s (2)", list.Versions[0].ID, list.Versions[0].VersionNumber, second.version.ID)
	}
	if list.Versions[1].ID != first.version.ID || list.Versions[1].VersionNumber != 1 {
		t.Errorf("second version %s (%d), want %s (1)", list.Versions[1].ID, list.Versions[1].VersionNumber, first.version.ID)
	}
}

// TestModelGetAndLineage shows one version, then its lineage: the job, its run, the
// checkpoint the run reported through the CLI and the version's approval.
func TestModelGetAndLineage(t *testing.T) {
	s := newProjectSession(t)
	db := s.openStore()
	tr := s.trainVersion(db, "imagenet-2026-11", 0.91)
	id := tr.version.ID.String()
	version := []string{
		"id " + id,
		"model resnet-ft version 1 of project vision",
		"stage dev",
		"job " + tr.job.ID.String(),
		"run " + tr.run,
		"artifact " + tr.checkpoint,
		"dataset version imagenet-2026-11",
		"code commit 4f2a9c1",
		"config hash sha256:c0ffee",
		"tracking run mlflow-imagenet-2026-11",
		`metrics {"accuracy":0.91}`,
		"created " + showTime(tr.version.CreatedAt),
		"promoted -",
	}
	checkLines(t, "model get", s.ok("model", "get", id), version...)

	approval, err := db.RequestApproval(context.Background(), store.ApprovalRequest{ModelVersionID: tr.version.ID,
		TargetStage: "prod", RequestedBy: "alice", Snapshot: json.RawMessage(`{"accuracy": 0.91}`)})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := db.JobRuns(context.Background(), store.JobRef{ID: tr.job.ID, CreatedAt: tr.job.CreatedAt})
	if err != nil {
		t.Fatal(err)
	}
	artifacts, err := db.JobArtifacts(context.Background(), store.JobRef{ID: tr.job.ID, CreatedAt: tr.job.CreatedAt})
	if err != nil || len(artifacts) != 1 {
		t.Fatalf("artifacts of the job: %d, err %v; want the checkpoint", len(artifacts), err)
	}
	lineage := s.ok("model", "lineage", id)
	checkLines(t, "model lineage", lineage, append(version,
		"job status completed, fine_tune job of project vision",
		"RUN ID STATUS STARTED COMPLETED GPU-HOURS NODE LAST CHECKPOINT",
		fmt.Sprintf("1 %s completed %s %s %.2f node-1 %s", tr.run, showTime(*runs[0].StartedAt),
			showTime(*runs[0].CompletedAt), runs[0].GPUHoursUsed, tr.checkpoint),
		"RUN TYPE STEP BYTES CREATED DELETED URI",
		fmt.Sprintf("1 checkpoint 500 2048 %s - %s", showTime(artifacts[0].CreatedAt), tr.checkpoint),
		"APPROVAL TO STAGE STATUS REQUESTED BY REQUESTED DECIDED BY REASON",
		fmt.Sprintf("%s prod pending alice %s - -", approval.ID, showTime(approval.RequestedAt)),
	)...)

	var got api.Lineage
	printed := s.ok("model", "lineage", id, "-o", "json")
	if err := json.Unmarshal([]byte(printed), &got); err != nil {
		t.Fatalf("model lineage -o json printed %q: %v", printed, err)
	}
	if len(got.Checkpoints) != 1 || got.Checkpoints[0].StorageURI != tr.checkpoint {
		t.Errorf("lineage checkpoints %+v, want %s", got.Checkpoints, tr.checkpoint)
	}
}

// TestModelCommandErrors: a malformed id exits 2 before any request, and what only the
// server can tell exits 1 with the problem's detail.
func TestModelCommandErrors(t *testing.T) {
	s := newProjectSession(t)
	unknown := "0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d"
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"version id not a UUID", []string{"model", "get", "v1"}, 2,
			`invalid model version id "v1": want a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d`},
		{"lineage id not a UUID", []string{"model", "lineage", "resnet-ft"}, 2, `invalid model version id "resnet-ft"`},
		{"versions without a model", []string{"model", "versions", "vision"}, 2,
			"usage: schedulerd model versions PROJECT MODEL"},
		{"versions of an empty model name", []string{"model", "versions", "vision", ""}, 2,
			"missing MODEL: the argument is empty; usage: schedulerd model versions PROJECT MODEL"},
		{"versions of an empty project", []string{"model", "versions", "", "resnet-ft"}, 2,
			"missing PROJECT: the argument is empty"},
		{"unknown action", []string{"model", "list"}, 2, "unknown command 'list'; want 'model versions|get|lineage'"},
		{"unknown model", []string{"model", "versions", "vision", "resnet-ft"}, 1,
			`HTTP 404 not found: project "vision" has no model "resnet-ft"`},
		{"unknown version", []string{"model", "get", unknown}, 1,
			"HTTP 404 not found: model version " + unknown + " does not exist"},
		{"lineage of an unknown version", []string{"model", "lineage", unknown}, 1,
			"HTTP 404 not found: model version " + unknown + " does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, s.env, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d", code, c.code)
			}
			if !strings.HasPrefix(stderr, "schedulerd model: "+c.want) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("stderr %q, want one line starting %q", stderr, "schedulerd model: "+c.want)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestRegistryCommandsReadAPISettings: artifact and model read only the API's settings, as
// the other API commands do, so a bad daemon setting in a pod's environment cannot stop them.
func TestRegistryCommandsReadAPISettings(t *testing.T) {
	env := map[string]string{"SCHEDULERD_DATABASE_URL": "host=db password=x", "SCHEDULERD_KUBE_QPS": "-1"}
	for _, args := range [][]string{{"artifact", "record", "-h"}, {"model", "versions", "-h"},
		{"model", "get", "-h"}, {"model", "lineage", "-h"}} {
		if got, want := commandSettings[args[0]], []string{"http-addr", "api-url", "token"}; !slices.Equal(got, want) {
			t.Errorf("%s reads the settings %q, want %q", args[0], got, want)
		}
		code, _, stderr := run(t, env, args...)
		if code != 0 {
			t.Errorf("%v: exit %d, want 0; stderr %q", args, code, stderr)
		}
		if !strings.Contains(stderr, `-api-url (env SCHEDULERD_API_URL) = ""`) {
			t.Errorf("%v: stderr does not list -api-url:\n%s", args, stderr)
		}
	}
}
