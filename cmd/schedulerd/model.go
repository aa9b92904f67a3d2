package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
)

// runModel is `schedulerd model versions|get|lineage`: it reads the model registry, the
// versions that job workflows register after an evaluation passes.
func runModel(ctx context.Context, env *environment, args []string) error {
	action, rest, err := subcommand(args, "model", "versions", "get", "lineage")
	if err != nil {
		return err
	}
	client := newAPIClient(env)
	switch action {
	case "versions":
		return listModelVersions(ctx, env, client, rest)
	case "get":
		return getModelVersion(ctx, env, client, rest)
	}
	return getLineage(ctx, env, client, rest)
}

func listModelVersions(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "model versions")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 2, "model versions PROJECT MODEL")
	if err != nil {
		return err
	}
	project, model := positional[0], positional[1]
	for _, arg := range []struct{ value, name string }{{project, "PROJECT"}, {model, "MODEL"}} {
		if arg.value == "" {
			return usageError{"missing " + arg.name + ": the argument is empty; " +
				"usage: schedulerd model versions PROJECT MODEL"}
		}
	}
	raw, err := client.call(ctx, "GET", projectPath(project)+"/models/"+url.PathEscape(model)+"/versions", nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.ModelVersionList{}, printModelVersionList)
}

func getModelVersion(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "model get")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "model get VERSION_ID")
	if err != nil {
		return err
	}
	path, err := modelVersionPath(positional[0])
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", path, nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.ModelVersion{}, printModelVersion)
}

// getLineage is `model lineage VERSION_ID`: the version with the job that trained it, the
// job's runs, what they wrote and the version's approvals.
func getLineage(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "model lineage")
	out := output{w: env.stdout}
	positional, err := parseCommand(fs, args, &out, 1, "model lineage VERSION_ID")
	if err != nil {
		return err
	}
	path, err := modelVersionPath(positional[0])
	if err != nil {
		return err
	}
	raw, err := client.call(ctx, "GET", path+"/lineage", nil)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Lineage{}, printLineage)
}

// modelVersionPath is the API path of the model version with id, once id is checked to be
// a UUID.
func modelVersionPath(id string) (string, error) {
	parsed, err := uuid.Parse(id)
	if err != nil {
		return "", usageError{fmt.Sprintf("invalid model version id %q: want a UUID such as "+
			"0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", id)}
	}
	return "/v1/model-versions/" + parsed.String(), nil
}

func printModelVersionList(tw *tabwriter.Writer, v any) {
	fmt.Fprintln(tw, "ID\tVERSION\tSTAGE\tJOB\tDATASET\tCODE COMMIT\tCREATED\tMETRICS")
	for _, m := range v.(*api.ModelVersionList).Versions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.VersionNumber, m.Stage, m.JobID,
			orDash(m.DatasetVersion, plain), orDash(m.CodeCommit, plain), showTime(m.CreatedAt),
			compactJSON(m.EvalMetrics))
	}
}

func printModelVersion(tw *tabwriter.Writer, v any) {
	m := v.(*api.ModelVersion)
	fmt.Fprintf(tw, "id\t%s\n", m.ID)
	fmt.Fprintf(tw, "model\t%s version %d of project %s\n", m.Model, m.VersionNumber, m.Project)
	fmt.Fprintf(tw, "stage\t%s\n", m.Stage)
	fmt.Fprintf(tw, "job\t%s\n", m.JobID)
	fmt.Fprintf(tw, "run\t%s\n", orDash(m.RunID, uuid.UUID.String))
	fmt.Fprintf(tw, "artifact\t%s\n", m.ArtifactURI)
	fmt.Fprintf(tw, "dataset version\t%s\n", orDash(m.DatasetVersion, plain))
	fmt.Fprintf(tw, "code commit\t%s\n", orDash(m.CodeCommit, plain))
	fmt.Fprintf(tw, "config hash\t%s\n", orDash(m.ConfigHash, plain))
	fmt.Fprintf(tw, "tracking run\t%s\n", orDash(m.TrackingRunID, plain))
	fmt.Fprintf(tw, "metrics\t%s\n", compactJSON(m.EvalMetrics))
	fmt.Fprintf(tw, "created\t%s\n", showTime(m.CreatedAt))
	promoted := "-"
	if m.PromotedAt != nil {
		promoted = showTime(*m.PromotedAt) + " by " + orDash(m.PromotedBy, plain)
	}
	fmt.Fprintf(tw, "promoted\t%s\n", promoted)
}

// printLineage prints the version as model get does, the job's status, and a table each of
// the job's runs, their artifacts and the version's approvals. Blank lines between the
// tables let each align on its own.
func printLineage(tw *tabwriter.Writer, v any) {
	l := v.(*api.Lineage)
	printModelVersion(tw, &l.Version)
	fmt.Fprintf(tw, "job status\t%s, %s job of project %s\n", l.Job.Status, l.Job.JobType, l.Job.Project)
	printLineageRuns(tw, l.Runs)
	printLineageArtifacts(tw, l.Artifacts, l.Runs)
	printLineageApprovals(tw, l.Approvals)
}

func printLineageRuns(tw *tabwriter.Writer, runs []api.LineageRun) {
	fmt.Fprintln(tw)
	if len(runs) == 0 {
		fmt.Fprintln(tw, "no runs")
		return
	}
	fmt.Fprintln(tw, "RUN\tID\tSTATUS\tSTARTED\tCOMPLETED\tGPU-HOURS\tNODE\tLAST CHECKPOINT")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", r.RunNumber, r.ID, r.Status,
			orDash(r.StartedAt, showTime), orDash(r.CompletedAt, showTime), r.GPUHoursUsed,
			orDash(r.WorkerNode, plain), orDash(r.LastCheckpointURI, plain))
	}
}

// printLineageArtifacts names each artifact's run by its number in the runs table.
func printLineageArtifacts(tw *tabwriter.Writer, artifacts []api.Artifact, runs []api.LineageRun) {
	fmt.Fprintln(tw)
	if len(artifacts) == 0 {
		fmt.Fprintln(tw, "no artifacts")
		return
	}
	runNumbers := make(map[uuid.UUID]string, len(runs))
	for _, r := range runs {
		runNumbers[r.ID] = strconv.Itoa(r.RunNumber)
	}
	fmt.Fprintln(tw, "RUN\tTYPE\tSTEP\tBYTES\tCREATED\tDELETED\tURI")
	for _, a := range artifacts {
		run, ok := runNumbers[a.RunID]
		if !ok {
			run = a.RunID.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", run, a.ArtifactType, metadataStep(a.Metadata), a.SizeBytes,
			showTime(a.CreatedAt), orDash(a.DeletedAt, showTime), a.StorageURI)
	}
}

func printLineageApprovals(tw *tabwriter.Writer, approvals []api.Approval) {
	fmt.Fprintln(tw)
	if len(approvals) == 0 {
		fmt.Fprintln(tw, "no approvals")
		return
	}
	fmt.Fprintln(tw, "APPROVAL\tTO STAGE\tSTATUS\tREQUESTED BY\tREQUESTED\tDECIDED BY\tREASON")
	for _, a := range approvals {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.TargetStage, a.Status, a.RequestedBy,
			showTime(a.RequestedAt), orDash(a.DecidedBy, plain), orDash(a.Reason, plain))
	}
}

// metadataStep returns the "step" of an artifact's metadata, where the store keeps a
// checkpoint's training step, or "-" when it has none.
func metadataStep(metadata json.RawMessage) string {
	var fields struct {
		Step *json.Number `json:"step"`
	}
	if err := json.Unmarshal(metadata, &fields); err != nil || fields.Step == nil {
		return "-"
	}
	return fields.Step.String()
}
