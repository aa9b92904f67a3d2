package retention_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/retention"
)

func TestMain(m *testing.M) { s3test.Main(m, pgtest.Run) }

// fixture is a fresh database and bucket with helpers that build run histories.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	pool   *pgxpool.Pool
	s3     *s3.Client
	bucket string
	now    time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	client, bucket := s3test.NewBucket(t)
	return &fixture{
		t: t, ctx: context.Background(), pool: pgtest.NewPool(t), s3: client, bucket: bucket,
		now: time.Now().UTC().Truncate(time.Microsecond),
	}
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", strings.Fields(sql)[0:3], err)
	}
}

func (f *fixture) project(id string) {
	f.t.Helper()
	f.exec("INSERT INTO projects (id, org_id, k8s_namespace) VALUES ($1, 'acme', $1)", id)
}

// statusPath is how a new queued job reaches each status through legal transitions.
var statusPath = map[string][]string{
	"queued":      nil,
	"running":     {"running"},
	"paused":      {"paused"},
	"completed":   {"running", "completed"},
	"failed":      {"failed"},
	"cancelled":   {"cancelled"},
	"eval_failed": {"running", "completed", "eval_failed"},
}

// job is a job's composite key.
type job struct {
	id        uuid.UUID
	createdAt time.Time
}

func (f *fixture) job(project, status string) job {
	f.t.Helper()
	var j job
	err := f.pool.QueryRow(f.ctx, `
		INSERT INTO jobs (project_id, org_id, job_type, config_json, max_runtime_seconds)
		VALUES ($1, 'acme', 'fine_tune', '{}', 3600) RETURNING id, created_at`, project).Scan(&j.id, &j.createdAt)
	if err != nil {
		f.t.Fatalf("insert job: %v", err)
	}
	for _, s := range statusPath[status] {
		f.exec("UPDATE jobs SET status = $3 WHERE id = $1 AND created_at = $2", j.id, j.createdAt, s)
	}
	return j
}

func (f *fixture) run(j job, number int) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	err := f.pool.QueryRow(f.ctx, `
		INSERT INTO runs (job_id, job_created_at, run_number, gpu_milli, pod_name)
		VALUES ($1, $2, $3, 1000, 'pod') RETURNING id`, j.id, j.createdAt, number).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert run: %v", err)
	}
	return id
}

// ckpt describes a checkpoint to create.
type ckpt struct {
	meta   map[string]any // metadata_json
	age    time.Duration  // created_at = now - age
	shards int            // 0: one object; n: a directory URI with n objects
	size   int64
	kind   string // artifact_type; default checkpoint
}

// checkpoint writes the checkpoint's objects to S3 and its artifacts row, and returns the
// row id and the URI.
func (f *fixture) checkpoint(runID uuid.UUID, c ckpt) (uuid.UUID, string) {
	f.t.Helper()
	return f.checkpointAt(runID, fmt.Sprintf("runs/%s/%s", runID, uuid.NewString()[:8]), c)
}

// checkpointAt is checkpoint with a chosen object key, or directory prefix without its
// trailing "/", so that rows can name the same objects.
func (f *fixture) checkpointAt(runID uuid.UUID, name string, c ckpt) (uuid.UUID, string) {
	f.t.Helper()
	uri := fmt.Sprintf("s3://%s/%s", f.bucket, name)
	if c.shards == 0 {
		f.put(name)
	} else {
		uri += "/"
		for i := range c.shards {
			f.put(fmt.Sprintf("%s/shard-%d", name, i))
		}
	}

	meta, err := json.Marshal(c.meta)
	if err != nil {
		f.t.Fatal(err)
	}
	kind := c.kind
	if kind == "" {
		kind = "checkpoint"
	}
	sum := sha256.Sum256([]byte(uri))
	var id uuid.UUID
	err = f.pool.QueryRow(f.ctx, `
		INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes, created_at, metadata_json)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		runID, kind, uri, hex.EncodeToString(sum[:]), c.size, f.now.Add(-c.age), meta).Scan(&id)
	if err != nil {
		f.t.Fatalf("insert artifact: %v", err)
	}
	return id, uri
}

func (f *fixture) put(key string) {
	f.t.Helper()
	_, err := f.s3.PutObject(f.ctx, &s3.PutObjectInput{
		Bucket: aws.String(f.bucket), Key: aws.String(key), Body: strings.NewReader("checkpoint"),
	})
	if err != nil {
		f.t.Fatalf("put %s: %v", key, err)
	}
}

// modelVersion registers a model version whose artifact_uri is uri. A job registers at most
// one version, so a second version for j is recorded under a completed job of its own
// without runs, which holds no checkpoint of its own.
func (f *fixture) modelVersion(project string, j job, uri string) {
	f.t.Helper()
	var taken bool
	if err := f.pool.QueryRow(f.ctx, `SELECT EXISTS (SELECT 1 FROM model_versions WHERE job_id = $1)`, j.id).Scan(&taken); err != nil {
		f.t.Fatal(err)
	}
	if taken {
		j = f.job(project, "completed")
	}
	var model uuid.UUID
	err := f.pool.QueryRow(f.ctx, `
		INSERT INTO models (project_id, model_name) VALUES ($1, $2) RETURNING id`,
		project, "model-"+uuid.NewString()[:8]).Scan(&model)
	if err != nil {
		f.t.Fatalf("insert model: %v", err)
	}
	f.exec(`INSERT INTO model_versions (model_id, version_number, job_id, job_created_at, artifact_uri)
		VALUES ($1, 1, $2, $3, $4)`, model, j.id, j.createdAt, uri)
}

// objectExists reports whether the object, or any object under a directory URI, exists.
func (f *fixture) objectExists(uri string) bool {
	f.t.Helper()
	key := strings.TrimPrefix(uri, "s3://"+f.bucket+"/")
	if strings.HasSuffix(key, "/") {
		out, err := f.s3.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String(f.bucket), Prefix: aws.String(key)})
		if err != nil {
			f.t.Fatalf("list %s: %v", uri, err)
		}
		return len(out.Contents) > 0
	}

	_, err := f.s3.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(f.bucket), Key: aws.String(key)})
	var notFound *types.NotFound
	if errors.As(err, &notFound) {
		return false
	}
	if err != nil {
		f.t.Fatalf("head %s: %v", uri, err)
	}
	return true
}

// rowState returns whether the artifact row is marked as being deleted and as deleted.
func (f *fixture) rowState(id uuid.UUID) (started, deleted bool) {
	f.t.Helper()
	err := f.pool.QueryRow(f.ctx,
		"SELECT delete_started_at IS NOT NULL, deleted_at IS NOT NULL FROM artifacts WHERE id = $1", id).Scan(&started, &deleted)
	if err != nil {
		f.t.Fatalf("read artifact %s: %v", id, err)
	}
	return started, deleted
}

func (f *fixture) retainer(policy retention.Policy) *retention.Retainer {
	f.t.Helper()
	r, err := retention.New(f.pool, f.s3, retention.Config{Policy: policy, BatchSize: 7})
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func step(n float64, metrics map[string]any) map[string]any {
	m := map[string]any{"step": n}
	if metrics != nil {
		m["metrics"] = metrics
	}
	return m
}
