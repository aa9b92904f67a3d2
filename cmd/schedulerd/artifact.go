package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// runIDVariable is the environment variable in which the dispatcher gives a training pod
// the id of its run.
const runIDVariable = "SCHEDULERD_RUN_ID"

const artifactRecordUsage = "artifact record [RUN_ID] -type T -uri s3://BUCKET/KEY -sha256 HEX -size BYTES " +
	"[-step N] [-metadata JSON]"

// artifactFlags maps each field of api.ArtifactRequest to the flag that sets it, so that a
// rejection by ArtifactRequest.Validate names the flag the user typed.
var artifactFlags = map[string]string{
	"artifact_type":   "-type",
	"storage_uri":     "-uri",
	"checksum_sha256": "-sha256",
	"size_bytes":      "-size",
	"metadata":        "-metadata",
	"step":            "-step",
}

// runArtifact is `schedulerd artifact record`: a training program reports an object its run
// wrote to storage, as POST /v1/runs/{run}/artifacts.
func runArtifact(ctx context.Context, env *environment, args []string) error {
	_, rest, err := subcommand(args, "artifact", "record")
	if err != nil {
		return err
	}
	return recordArtifact(ctx, env, newAPIClient(env), rest)
}

// recordArtifact checks the form of every field by the API's own rules, so that a
// malformed report exits 2 before any request, and then records the artifact.
func recordArtifact(ctx context.Context, env *environment, client *apiClient, args []string) error {
	fs := newFlagSet(env, "artifact record")
	artifactType := fs.String("type", "", "artifact type: "+strings.Join(store.ArtifactTypes, ", ")+" (required)")
	uri := fs.String("uri", "", "where the object is stored, as s3://BUCKET/KEY (required)")
	checksum := fs.String("sha256", "",
		"SHA-256 of the object as 64 lowercase hex digits, as sha256sum prints it (required)")
	size := fs.Int64("size", 0, "size of the object in bytes (required)")
	step := fs.Int64("step", 0, "training step of a checkpoint, from which a resumed run starts; checkpoints only")
	metadata := fs.String("metadata", "", `JSON object stored with the artifact, such as '{"epoch": 3}'`)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage of artifact record: schedulerd %s\n"+
			"RUN_ID defaults to $%s, which schedulerd sets in the pod of each run.\n", artifactRecordUsage, runIDVariable)
		fs.PrintDefaults()
	}
	out := output{w: env.stdout}
	addOutputFlag(fs, &out)
	positional, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if err := out.check(); err != nil {
		return err
	}
	if err := checkArtifactFlags(fs, positional); err != nil {
		return err
	}
	path, err := artifactsPath(positional, env.getenv(runIDVariable))
	if err != nil {
		return err
	}
	req, err := artifactRequest(fs, *artifactType, *uri, *checksum, *size, *step, *metadata)
	if err != nil {
		return err
	}

	raw, err := client.call(ctx, "POST", path, req)
	if err != nil {
		return err
	}
	return out.print(raw, &api.Artifact{}, printArtifact)
}

// checkArtifactFlags rejects a command line that lacks a required flag or gives more than
// one argument. -size counts as given by isSet, because 0 bytes is a valid size.
func checkArtifactFlags(fs *flag.FlagSet, positional []string) error {
	var missing []string
	for _, name := range []string{"type", "uri", "sha256", "size"} {
		if !isSet(fs, name) {
			missing = append(missing, "-"+name)
		}
	}
	switch {
	case len(missing) > 0:
		return usageError{"missing " + strings.Join(missing, ", ") + "; usage: schedulerd " + artifactRecordUsage}
	case len(positional) > 1:
		return usageError{fmt.Sprintf("unexpected arguments %q after the run id; usage: schedulerd %s",
			positional[1:], artifactRecordUsage)}
	}
	return nil
}

// artifactsPath returns the API path of a run's artifacts. The run id is the argument or,
// without one, runIDFromEnv, the value of SCHEDULERD_RUN_ID, and must be a UUID.
func artifactsPath(positional []string, runIDFromEnv string) (string, error) {
	id, source := runIDFromEnv, " in "+runIDVariable
	if len(positional) == 1 {
		id, source = positional[0], ""
	}
	if id == "" {
		return "", usageError{fmt.Sprintf("missing RUN_ID: give the run's id, or set %s, as schedulerd does in "+
			"the run's pod; usage: schedulerd %s", runIDVariable, artifactRecordUsage)}
	}
	parsed, err := uuid.Parse(id)
	if err != nil {
		return "", usageError{fmt.Sprintf("invalid run id %q%s: want a UUID such as "+
			"0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d", id, source)}
	}
	return "/v1/runs/" + parsed.String() + "/artifacts", nil
}

// artifactRequest builds the request body from the flags and checks it with the API's
// ArtifactRequest.Validate. The step is sent only when -step is given, because the API
// rejects a step for any artifact but a checkpoint, 0 included.
func artifactRequest(fs *flag.FlagSet, artifactType, uri, checksum string, size, step int64,
	metadata string) (api.ArtifactRequest, error) {
	req := api.ArtifactRequest{ArtifactType: artifactType, StorageURI: uri, ChecksumSHA256: checksum,
		SizeBytes: &size}
	if isSet(fs, "step") {
		req.Step = &step
	}
	if isSet(fs, "metadata") {
		object, err := metadataObject(metadata)
		if err != nil {
			return api.ArtifactRequest{}, err
		}
		req.Metadata = object
	}
	if err := req.Validate(); err != nil {
		return api.ArtifactRequest{}, artifactFieldError(err)
	}
	return req, nil
}

// metadataObject checks that -metadata is a JSON object. ArtifactRequest.Validate checks
// only its first character, because the server has decoded the body by then. Invalid JSON
// would fail in the CLI's JSON encoder instead, with a message that names no flag.
func metadataObject(text string) (json.RawMessage, error) {
	data := []byte(text)
	var value any
	if err := json.Unmarshal(data, &value); err != nil {
		return nil, usageError{fmt.Sprintf("invalid -metadata: not valid JSON: %s", jsonErrorPosition(data, err))}
	}
	if _, ok := value.(map[string]any); !ok {
		return nil, usageError{fmt.Sprintf(`invalid -metadata %s: want a JSON object such as '{"epoch": 3}'`, text)}
	}
	return data, nil
}

// artifactFieldError turns a rejection by ArtifactRequest.Validate into a usage error that
// names the flag of the field, with the field's JSON path when it is inside the flag's
// value, such as metadata.step.
func artifactFieldError(err error) error {
	var problem *api.Problem
	if !errors.As(err, &problem) {
		return err
	}
	field, _, _ := strings.Cut(problem.Field, ".")
	name, ok := artifactFlags[field]
	if !ok {
		return usageError{fmt.Sprintf("invalid %s: %s", problem.Field, problem.Detail)}
	}
	if field != problem.Field {
		return usageError{fmt.Sprintf("invalid %s (%s): %s", name, problem.Field, problem.Detail)}
	}
	return usageError{fmt.Sprintf("invalid %s: %s", name, problem.Detail)}
}

func printArtifact(tw *tabwriter.Writer, v any) {
	a := v.(*api.Artifact)
	fmt.Fprintf(tw, "id\t%s\n", a.ID)
	fmt.Fprintf(tw, "run\t%s\n", a.RunID)
	fmt.Fprintf(tw, "type\t%s\n", a.ArtifactType)
	fmt.Fprintf(tw, "uri\t%s\n", a.StorageURI)
	fmt.Fprintf(tw, "sha256\t%s\n", a.ChecksumSHA256)
	fmt.Fprintf(tw, "size\t%d bytes\n", a.SizeBytes)
	fmt.Fprintf(tw, "metadata\t%s\n", compactJSON(a.Metadata))
	fmt.Fprintf(tw, "created\t%s\n", showTime(a.CreatedAt))
	fmt.Fprintf(tw, "deleted\t%s\n", orDash(a.DeletedAt, showTime))
}
