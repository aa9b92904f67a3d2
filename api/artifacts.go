package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/schedulerd/schedulerd/store"
)

// ArtifactRequest is the body of POST /v1/runs/{run}/artifacts: an object the run's
// program wrote to storage.
type ArtifactRequest struct {
	ArtifactType   string          `json:"artifact_type"`
	StorageURI     string          `json:"storage_uri"`
	ChecksumSHA256 string          `json:"checksum_sha256"`
	SizeBytes      *int64          `json:"size_bytes"`
	Metadata       json.RawMessage `json:"metadata,omitempty"`
	// Step is a checkpoint's training step, from which a resumed run starts.
	Step *int64 `json:"step,omitempty"`
}

// maxStorageURILength is the length of the storage_uri and last_checkpoint_uri columns.
const maxStorageURILength = 1024

var (
	sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// s3Bucket accepts 3 to 63 lowercase letters, digits, dots and hyphens, starting and
	// ending with a letter or digit. NOTE: some names S3 also rejects, such as ones with
	// adjacent dots or in IP address form, pass this check.
	s3Bucket = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// recordArtifact serves POST /v1/runs/{run}/artifacts. A report of the same run, type and
// URI returns the first record, so the program may retry. A retry with another checksum or
// size gets 409, because the first record stays. The exception is a checkpoint reported
// again with a step above the run's last checkpoint step, which replaces the record
// (store.RecordArtifact), so a trainer may rotate between checkpoint slots.
func (s *Server) recordArtifact(w http.ResponseWriter, r *http.Request, caller *principal) error {
	runID, err := pathUUID(r, "run", "run")
	if err != nil {
		return err
	}
	project, err := s.store.RunProject(r.Context(), runID)
	err = caller.hideOtherProject(err, project)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("run %s does not exist", runID)
	}
	if err != nil {
		return err
	}
	var req ArtifactRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if err := req.Validate(); err != nil {
		return err
	}
	if err := s.checkArtifactPrefix(project, req.StorageURI); err != nil {
		return err
	}

	artifact, err := s.store.RecordArtifact(r.Context(), store.NewArtifact{RunID: runID, Type: req.ArtifactType,
		URI: req.StorageURI, Checksum: req.ChecksumSHA256, SizeBytes: *req.SizeBytes, Metadata: nullToAbsent(req.Metadata),
		Step: req.Step})
	if errors.Is(err, store.ErrRunEnded) {
		return conflict("run %s has ended and accepts no more artifacts", runID)
	}
	if err != nil {
		return err
	}
	if artifact.Checksum != req.ChecksumSHA256 || artifact.SizeBytes != *req.SizeBytes {
		return conflict("run %s already recorded %s %s with checksum %s and %d bytes; write a changed object "+
			"under a new URI", runID, artifact.Type, artifact.URI, artifact.Checksum, artifact.SizeBytes)
	}
	s.cfg.Logger.Info("artifact recorded", "run", runID, "project", project, "artifact_type", artifact.Type,
		"storage_uri", artifact.URI, "actor", caller.token.Name)
	writeJSON(w, http.StatusCreated, "application/json", artifactView(artifact))
	return nil
}

// checkArtifactPrefix rejects a storage URI outside the project's ArtifactURIPrefix.
func (s *Server) checkArtifactPrefix(project, uri string) error {
	if s.cfg.ArtifactURIPrefix == "" {
		return nil
	}
	want := strings.ReplaceAll(s.cfg.ArtifactURIPrefix, "{project}", project)
	if !strings.HasPrefix(uri, want) {
		return unprocessable("storage_uri", "%q is outside the storage of project %q: its artifacts must be under %s",
			uri, project, want)
	}
	return nil
}

// Validate checks the form of every field of the request, in order, and returns a *Problem
// that names the first invalid one. The CLI calls it too, so that it rejects a malformed
// report by the server's rules before any request. It reads no state: whether the run is
// live and the URI is inside the project's prefix is checked when the report is recorded.
func (req ArtifactRequest) Validate() error {
	if !slices.Contains(store.ArtifactTypes, req.ArtifactType) {
		return invalid("artifact_type", "%q is not an artifact type; want one of %s",
			req.ArtifactType, strings.Join(store.ArtifactTypes, ", "))
	}
	if err := validateStorageURI(req.StorageURI); err != nil {
		return err
	}
	if !sha256Hex.MatchString(req.ChecksumSHA256) {
		return invalid("checksum_sha256", "must be the SHA-256 of the object as 64 lowercase hex digits")
	}
	if req.SizeBytes == nil {
		return invalid("size_bytes", "required: the object's size in bytes")
	}
	if *req.SizeBytes < 0 {
		return invalid("size_bytes", "must be 0 or more, got %d", *req.SizeBytes)
	}
	if metadata := nullToAbsent(req.Metadata); len(metadata) > 0 && !bytes.HasPrefix(bytes.TrimSpace(metadata), []byte("{")) {
		return invalid("metadata", "must be a JSON object")
	}
	if req.Step == nil {
		return nil
	}
	if req.ArtifactType != "checkpoint" {
		return invalid("step", "only a checkpoint has a training step")
	}
	if *req.Step < 0 || *req.Step > math.MaxInt32 {
		return invalid("step", "must be from 0 to %d, got %d", math.MaxInt32, *req.Step)
	}
	return checkMetadataStep(nullToAbsent(req.Metadata), *req.Step)
}

// checkMetadataStep rejects a metadata "step" that differs from the request's step. The
// store writes the request's step over that key, because retention orders checkpoints by
// it, so a different value there would be dropped without notice. A number equal as a
// float64, such as 100.0 or 1e2 for 100, passes.
func checkMetadataStep(metadata json.RawMessage, step int64) error {
	if len(metadata) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(metadata, &fields); err != nil {
		return invalid("metadata", "must be a JSON object")
	}
	raw, ok := fields["step"]
	if !ok {
		return nil
	}

	const fix = "send the step once, or the same number in both"
	var value any
	if err := json.Unmarshal(raw, &value); err != nil {
		return invalid("metadata.step", "invalid number: %v", err)
	}
	number, isNumber := value.(float64)
	switch {
	case !isNumber:
		return invalid("metadata.step", "is not a number but step is %d; %s", step, fix)
	case number != float64(step):
		return invalid("metadata.step", "is %s but step is %d; %s", raw, step, fix)
	}
	return nil
}

// validateStorageURI accepts s3://BUCKET/KEY with a valid bucket name and a key of printable
// characters without "." or ".." segments. The key is taken as written (internal/s3uri).
func validateStorageURI(uri string) error {
	if uri == "" {
		return invalid("storage_uri", "required, as s3://BUCKET/KEY")
	}
	if n := utf8.RuneCountInString(uri); n > maxStorageURILength {
		return invalid("storage_uri", "longer than %d characters (%d)", maxStorageURILength, n)
	}
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return invalid("storage_uri", "%q is not an s3:// URI; want s3://BUCKET/KEY", uri)
	}
	bucket, key, _ := strings.Cut(rest, "/")
	if !s3Bucket.MatchString(bucket) {
		return invalid("storage_uri", "%q is not an S3 bucket name: use 3 to 63 lowercase letters, digits, "+
			"'.' or '-', starting and ending with a letter or digit", bucket)
	}
	if key == "" {
		return invalid("storage_uri", "%q has no object key; want s3://BUCKET/KEY", uri)
	}
	if strings.ContainsFunc(key, unicode.IsControl) {
		return invalid("storage_uri", "the object key contains a control character")
	}
	// S3 takes "." and ".." literally, but S3-compatible servers that store objects as
	// files may resolve them, and so reach outside the URI's prefix.
	for segment := range strings.SplitSeq(key, "/") {
		if segment == "." || segment == ".." {
			return invalid("storage_uri", "the object key %q has a %q path segment", key, segment)
		}
	}
	return nil
}
