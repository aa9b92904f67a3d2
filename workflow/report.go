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
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/schedulerd/schedulerd/store"
)

// ObjectReader is the part of *s3.Client that reads eval reports.
type ObjectReader interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
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
	bucket, key, err := splitURI(report.URI)
	if err != nil {
		return nil, err.Error(), nil
	}
	if objects == nil {
		return nil, "", errors.New("no S3 client: set SCHEDULERD_S3_ENDPOINT or SCHEDULERD_S3_REGION to read eval reports")
	}
	out, err := objects.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	var noKey *types.NoSuchKey
	if errors.As(err, &noKey) {
		return nil, "the eval report " + report.URI + " does not exist", nil
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
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != report.Checksum {
		return nil, fmt.Sprintf("the eval report %s has checksum %s, not the recorded %s", report.URI, got, report.Checksum), nil
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

// splitURI splits s3://bucket/key.
func splitURI(uri string) (bucket, key string, err error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "s3" || u.Host == "" || strings.TrimPrefix(u.Path, "/") == "" {
		return "", "", fmt.Errorf("the eval report URI %q is not s3://bucket/key", uri)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}
