package retention_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	"github.com/google/uuid"
	"github.com/hashicorp/go-multierror"

	"github.com/schedulerd/schedulerd/retention"
)

// checkpointInBucket records a checkpoint row at uri without writing any object, for a
// bucket that S3 does not have.
func (f *fixture) checkpointInBucket(runID uuid.UUID, uri string, c ckpt) uuid.UUID {
	f.t.Helper()
	meta, err := json.Marshal(c.meta)
	if err != nil {
		f.t.Fatal(err)
	}
	var id uuid.UUID
	err = f.pool.QueryRow(f.ctx, `
		INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes, created_at, metadata_json)
		VALUES ($1, 'checkpoint', $2, repeat('0', 64), 1000, $3, $4) RETURNING id`,
		runID, uri, f.now.Add(-c.age), meta).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert artifact: %v", err)
	}
	return id
}

// TestRetentionGoesPastMissingBucket checks that checkpoints in a bucket S3 does not have,
// one a directory and one a file, do not stop the deletes in other buckets.
func TestRetentionGoesPastMissingBucket(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	run := f.run(f.job("vision", "completed"), 1)
	old := func(s float64) ckpt { return ckpt{meta: step(s, nil), age: 5 * day} }
	missing := "s3://missing-" + strings.ToLower(uuid.NewString()[:8])
	ids := map[string]uuid.UUID{
		"missing-directory": f.checkpointInBucket(run, missing+"/ckpt-100/", old(100)),
		"missing-file":      f.checkpointInBucket(run, missing+"/ckpt-150", old(150)),
	}
	ids["step-200"], _ = f.checkpoint(run, old(200))
	ids["step-300"], _ = f.checkpoint(run, old(300))
	ids["step-400"], _ = f.checkpoint(run, old(400))

	r := f.retainer(retention.Policy{KeepLatest: 1})
	for attempt := 1; attempt <= 2; attempt++ {
		report, err := r.Run(f.ctx, f.now, false)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(missing, "s3://")) {
			t.Errorf("run %d: error %v, want one naming the missing bucket", attempt, err)
		}
		if want := []int{2, 0}[attempt-1]; report.Deleted != want {
			t.Errorf("run %d deleted %d checkpoints, want %d", attempt, report.Deleted, want)
		}
	}

	for _, name := range []string{"step-200", "step-300"} {
		if _, deleted := f.rowState(ids[name]); !deleted || f.objectExists(uriOf(f, ids[name])) {
			t.Errorf("%s: want its row deleted and its object gone", name)
		}
	}
	for _, name := range []string{"missing-directory", "missing-file"} {
		if started, deleted := f.rowState(ids[name]); !started || deleted {
			t.Errorf("%s: delete started %v and finished %v, want started and not finished", name, started, deleted)
		}
	}
	if _, deleted := f.rowState(ids["step-400"]); deleted || !f.objectExists(uriOf(f, ids["step-400"])) {
		t.Error("step-400: the latest checkpoint was deleted")
	}
}

// TestRetentionCountsMissingBuckets checks the run's error when two buckets fail: one
// message that counts them, names each in bucket order and keeps each S3 error.
func TestRetentionCountsMissingBuckets(t *testing.T) {
	f := newFixture(t)
	f.project("vision")
	run := f.run(f.job("vision", "completed"), 1)
	old := func(s float64) ckpt { return ckpt{meta: step(s, nil), age: 5 * day} }
	suffix := strings.ToLower(uuid.NewString()[:8])
	buckets := []string{"missing-a-" + suffix, "missing-b-" + suffix}
	f.checkpointInBucket(run, "s3://"+buckets[1]+"/ckpt-100", old(100))
	f.checkpointInBucket(run, "s3://"+buckets[0]+"/ckpt-150", old(150))
	f.checkpoint(run, old(200))

	_, err := f.retainer(retention.Policy{KeepLatest: 1}).Run(f.ctx, f.now, false)
	shape := regexp.MustCompile(`^checkpoint retention: 2 errors: bucket ` + buckets[0] +
		` left for the next run: [^\n]+; bucket ` + buckets[1] + ` left for the next run: [^\n]+$`)
	if err == nil || !shape.MatchString(err.Error()) {
		t.Errorf("error %v, want one line that matches %s", err, shape)
	}

	var list *multierror.Error
	if !errors.As(err, &list) {
		t.Fatalf("error %v, want one that wraps a *multierror.Error", err)
	}
	if len(list.Errors) != 2 {
		t.Fatalf("%d errors, want 2: %v", len(list.Errors), err)
	}

	var causes [2]string
	for i, bucket := range buckets {
		var apiErr smithy.APIError
		if !errors.As(list.Errors[i], &apiErr) {
			t.Fatalf("error %d (%v) wraps no S3 API error", i, list.Errors[i])
		}
		if apiErr.ErrorCode() != "NoSuchBucket" {
			t.Errorf("bucket %s: S3 error code %q, want NoSuchBucket", bucket, apiErr.ErrorCode())
		}
		causes[i] = errors.Unwrap(list.Errors[i]).Error()
	}
	want := fmt.Sprintf("checkpoint retention: 2 errors: bucket %s left for the next run: %s; "+
		"bucket %s left for the next run: %s", buckets[0], causes[0], buckets[1], causes[1])
	if err.Error() != want {
		t.Errorf("error\n%s\nwant\n%s", err, want)
	}
}
