package workflow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/schedulerd/schedulerd/internal/s3uri"
	"github.com/schedulerd/schedulerd/store"
)

// ObjectReader is the part of *s3.Client that reads eval reports and checks models.
type ObjectReader interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, opts ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
}

// maxReportBytes bounds an eval report: it holds metrics, not predictions.
const maxReportBytes = 1 << 20

// evalReport is the object a training or evaluation program writes.
type evalReport struct {
	Metrics map[string]float64 `json:"metrics"`
}

// readReport fetches an eval report and checks it against its artifact row. A problem with
// the report itself (missing, altered, malformed) is returned as a reason, so the gate
// rejects the job. Only a failure to reach S3 is an error.
func readReport(ctx context.Context, objects ObjectReader, report store.Artifact) (map[string]float64, string, error) {
	bucket, key, err := s3uri.Split(report.URI)
	if err != nil {
		return nil, err.Error(), nil
	}
	if objects == nil {
		return nil, "", errors.New("no S3 client: set SCHEDULERD_S3_ENDPOINT or SCHEDULERD_S3_REGION to read eval reports")
	}
	out, err := objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if problem, ok := missingObject(err, report.URI); ok {
		return nil, problem, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read eval report %s: %w", report.URI, err)
	}
	defer out.Body.Close()

	body, err := io.ReadAll(io.LimitReader(out.Body, maxReportBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read eval report %s: %w", report.URI, err)
	}
	return parseReport(report, body)
}

func parseReport(report store.Artifact, body []byte) (map[string]float64, string, error) {
	if len(body) > maxReportBytes {
		return nil, fmt.Sprintf("the eval report %s is larger than %d bytes", report.URI, maxReportBytes), nil
	}
	// The reason reaches the job's result, which the submitter reads. A report may name any
	// object that the daemon's S3 credentials reach, so the reason leaves out the object's
	// own checksum, which would let the submitter pass the gate with another project's report.
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != report.Checksum {
		return nil, fmt.Sprintf("the object at %s is not the recorded eval report: its SHA-256 differs from "+
			"the recorded %s", report.URI, report.Checksum), nil
	}
	var parsed evalReport
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&parsed); err != nil || parsed.Metrics == nil {
		return nil, fmt.Sprintf("the eval report %s is not a JSON object with metrics: %v", report.URI, err), nil
	}
	for name, v := range parsed.Metrics {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Sprintf("the eval report %s has a non-finite %s", report.URI, name), nil
		}
	}
	return parsed.Metrics, "", nil
}

// checkObject returns why an artifact's object is unusable: missing, or not the size its
// row records. The content is not read, since a model may be large.
func checkObject(ctx context.Context, objects ObjectReader, a store.Artifact) (string, error) {
	bucket, key, err := s3uri.Split(a.URI)
	if err != nil {
		return err.Error(), nil
	}
	if objects == nil {
		return "", errors.New("no S3 client: set SCHEDULERD_S3_ENDPOINT or SCHEDULERD_S3_REGION to check model artifacts")
	}
	out, err := objects.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &key})
	if problem, ok := missingObject(err, a.URI); ok {
		return problem, nil
	}
	if err != nil {
		return "", fmt.Errorf("check model artifact %s: %w", a.URI, err)
	}
	// As in parseReport, the reason leaves out the object's own size.
	if out.ContentLength != nil && *out.ContentLength != a.SizeBytes {
		return fmt.Sprintf("the object at %s is not the recorded model artifact: its size differs from the "+
			"recorded %d bytes", a.URI, a.SizeBytes), nil
	}
	return "", nil
}

// missingObject reports whether err means the object or its bucket does not exist, which
// no retry fixes, and returns the reason.
func missingObject(err error, uri string) (string, bool) {
	var noKey *types.NoSuchKey
	var notFound *types.NotFound
	var noBucket *types.NoSuchBucket
	var apiErr smithy.APIError
	switch {
	case errors.As(err, &noKey), errors.As(err, &notFound):
		return "the object " + uri + " does not exist", true
	case errors.As(err, &noBucket), errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket":
		return "the bucket of " + uri + " does not exist", true
	}
	return "", false
}
