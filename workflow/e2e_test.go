package workflow_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/internal/temporaltest"
	"github.com/schedulerd/schedulerd/store"
)

// The tests here run the whole system: `schedulerd run` as a child process (so it can be
// killed), PostgreSQL, the local Kubernetes API with KWOK GPU nodes, versitygw and the
// Temporal development server. A goroutine plays the training program: while a job's
// run is running it writes an eval report, a checkpoint and a model to S3 and reports
// them through the API, as a real trainer would.
func TestMain(m *testing.M) {
	s3test.Main(m, func(m *testing.M) int {
		return daemontest.Run(m, func(m *testing.M) int { return temporaltest.Run(m, withBinary) })
	})
}

// binary is schedulerd built once for the package's tests.
var binary string

func withBinary(m *testing.M) int {
	dir, err := os.MkdirTemp("", "schedulerd-workflow-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = daemontest.BuildBinaryIn(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return pgtest.Run(m)
}

// system is one schedulerd process with everything it talks to.
type system struct {
	t      *testing.T
	store  *store.Store
	proc   *daemontest.Process
	base   string
	model  string // the GPU model of the test's nodes
	s3     *s3.Client
	bucket string
	tokens map[string]string // token name to secret
}

func newSystem(t *testing.T) *system {
	t.Helper()
	url := pgtest.NewDatabase(t)
	db, err := store.Open(context.Background(), url, store.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	daemontest.CreateProject(t, db, "vision", 1000, 20)

	client, bucket := s3test.NewBucket(t)
	srv := s3test.Shared(t)
	addr := freeAddr(t)
	sys := &system{t: t, store: db, base: "http://" + addr, model: daemontest.GPUNodes(t, 2, 8),
		s3: client, bucket: bucket, tokens: map[string]string{}}
	sys.proc = &daemontest.Process{T: t, Bin: binary, LogPath: filepath.Join(t.TempDir(), "schedulerd.log"),
		Env: append(os.Environ(), "SCHEDULERD_DATABASE_URL="+url,
			"SCHEDULERD_KUBECONFIG="+daemontest.Kube.Kubeconfig, "SCHEDULERD_HTTP_ADDR="+addr,
			"SCHEDULERD_POLL_INTERVAL=200ms", "SCHEDULERD_LOG_LEVEL=info",
			"SCHEDULERD_TEMPORAL_ADDRESS="+temporaltest.Shared(t).Address,
			"SCHEDULERD_S3_ENDPOINT="+srv.Endpoint, "SCHEDULERD_S3_REGION="+srv.Region,
			"SCHEDULERD_S3_PATH_STYLE=true", "SCHEDULERD_CRON_RETENTION=off",
			"AWS_ACCESS_KEY_ID="+srv.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+srv.SecretAccessKey,
			"AWS_EC2_METADATA_DISABLED=true")}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(sys.proc.LogPath)
			t.Logf("daemon log (last 6000 bytes):\n%s", tail(log, 6000))
		}
	})

	sys.token("alice", store.RoleSubmitter, "vision") // submits jobs and plays the trainer
	sys.token("alice", store.RoleOperator)            // alice again, as an operator
	sys.ownedToken("alice-laptop", "alice", store.RoleOperator)
	sys.token("olga", store.RoleOperator) // the approver
	sys.start()
	sys.waitCapacity()
	return sys
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// token creates a token; the operator one of a name is stored under "NAME-operator".
func (s *system) token(name string, role store.Role, projects ...string) {
	s.t.Helper()
	_, secret, err := api.CreateToken(context.Background(), s.store,
		api.TokenRequest{Name: name, Role: role, Projects: projects}, time.Now(),
		store.Actor{Name: "test", Role: store.RoleAdmin})
	if err != nil {
		s.t.Fatal(err)
	}
	key := name
	if role != store.RoleSubmitter {
		key = name + "-" + string(role)
	}
	s.tokens[key] = secret
}

// ownedToken creates a token of owner under another name, stored under its name.
func (s *system) ownedToken(name, owner string, role store.Role) {
	s.t.Helper()
	_, secret, err := api.CreateToken(context.Background(), s.store,
		api.TokenRequest{Name: name, Owner: owner, Role: role}, time.Now(),
		store.Actor{Name: "test", Role: store.RoleAdmin})
	if err != nil {
		s.t.Fatal(err)
	}
	s.tokens[name] = secret
}

// start starts the daemon and waits until it serves.
func (s *system) start() {
	s.t.Helper()
	s.proc.Start()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatal("schedulerd did not become ready within a minute")
}

// waitCapacity waits until the daemon has counted the test's GPU nodes, since the API
// refuses jobs for a GPU model it has not seen.
func (s *system) waitCapacity() {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n int
		err := s.store.Pool().QueryRow(context.Background(),
			`SELECT count(*) FROM gpu_models WHERE model = $1 AND capacity_milli > 0`, s.model).Scan(&n)
		if err == nil && n == 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("the daemon did not count the nodes of GPU model %s within a minute", s.model)
}

// crash kills the daemon with SIGKILL and starts it again.
func (s *system) crash(when string) {
	s.t.Helper()
	s.proc.Kill()
	s.t.Logf("killed schedulerd %s", when)
	s.start()
}

// call sends a request with the named token and decodes a 2xx JSON response into out.
func (s *system) call(token, method, path string, body, out any) int {
	s.t.Helper()
	var reader *bytes.Reader
	if body != nil {
		encoded, _ := json.Marshal(body)
		reader = bytes.NewReader(encoded)
	} else {
		reader = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.base+path, reader)
	req.Header.Set("Authorization", "Bearer "+s.tokens[token])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	if resp.StatusCode/100 != 2 {
		s.t.Logf("%s %s as %s: %d %s", method, path, token, resp.StatusCode, raw)
	}
	return resp.StatusCode
}

// submit submits a job through the API as alice and returns its id.
func (s *system) submit(jobType string, config map[string]any) uuid.UUID {
	s.t.Helper()
	var job struct {
		ID uuid.UUID `json:"id"`
	}
	if code := s.call("alice", "POST", "/v1/projects/vision/jobs",
		map[string]any{"job_type": jobType, "config": config}, &job); code != http.StatusCreated {
		s.t.Fatalf("submit %s: status %d", jobType, code)
	}
	return job.ID
}

// trainConfig is a one-GPU job on the test's nodes whose simulated run takes runSeconds.
func (s *system) trainConfig(runSeconds int, extra map[string]any) map[string]any {
	config := map[string]any{
		"image": "trainer:1", "max_runtime_seconds": 600,
		"resources":  map[string]any{"gpus": 1, "gpu_models": []string{s.model}, "cpu_milli": 1000, "memory_mib": 1024},
		"simulation": map[string]any{"run_seconds": runSeconds},
	}
	for k, v := range extra {
		config[k] = v
	}
	return config
}

// trainer reports artifacts for every running run of the project's jobs, once per run,
// with the metrics metricsFor gives the run's job, until the test ends.
func (s *system) trainer(metricsFor func(store.Job) map[string]float64) {
	ctx, cancel := context.WithCancel(context.Background())
	s.t.Cleanup(cancel)
	done := map[uuid.UUID]bool{}
	go func() {
		for ctx.Err() == nil {
			runs, err := s.store.ListLiveRuns(ctx)
			if err == nil {
				for _, run := range runs {
					if run.Status == store.RunRunning && !done[run.ID] {
						done[run.ID] = s.report(ctx, run, metricsFor)
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
}

// report writes the run's checkpoint, model and eval report to S3 and records them.
func (s *system) report(ctx context.Context, run store.Run, metricsFor func(store.Job) map[string]float64) bool {
	job, err := s.store.GetJob(ctx, run.JobID)
	if err != nil {
		return false
	}
	eval, _ := json.Marshal(map[string]any{"metrics": metricsFor(job)})
	objects := []struct {
		kind string
		body []byte
		step int
	}{
		{"checkpoint", []byte("weights at step 500 of " + job.ID.String()), 500},
		{"model", []byte("final weights of " + job.ID.String()), 0},
		{"eval_report", eval, 0},
	}
	for _, o := range objects {
		key := fmt.Sprintf("jobs/%s/run-%d/%s", job.ID, run.RunNumber, o.kind)
		if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key,
			Body: bytes.NewReader(o.body)}); err != nil {
			return false
		}
		sum := sha256.Sum256(o.body)
		body := map[string]any{"artifact_type": o.kind, "storage_uri": "s3://" + s.bucket + "/" + key,
			"checksum_sha256": hex.EncodeToString(sum[:]), "size_bytes": len(o.body)}
		if o.kind == "checkpoint" {
			body["step"] = o.step
		}
		if code := s.call("alice", "POST", "/v1/runs/"+run.ID.String()+"/artifacts", body, nil); code/100 != 2 {
			return false
		}
	}
	return true
}

// waitJob polls the job until cond holds, for up to three minutes.
func (s *system) waitJob(id uuid.UUID, what string, cond func(store.Job) bool) store.Job {
	s.t.Helper()
	var job store.Job
	var err error
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		job, err = s.store.GetJob(context.Background(), id)
		if err == nil && cond(job) {
			return job
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("job %s: %s not reached within 3 minutes; last status %s, result %s, error %v",
		id, what, job.Status, job.Result, err)
	return job
}

// waitReported waits until the trainer has reported the job's eval report, so that a
// crash afterwards cannot cut the report short.
func (s *system) waitReported(id uuid.UUID) {
	s.t.Helper()
	job, err := s.store.GetJob(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := s.store.LatestArtifact(context.Background(), job.Ref(), "eval_report"); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("job %s: no eval report within 2 minutes", id)
}

// waitOutboxEmpty waits until the daemon has delivered every workflow event.
func (s *system) waitOutboxEmpty() {
	s.t.Helper()
	var n int
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := s.store.Pool().QueryRow(context.Background(), `SELECT count(*) FROM workflow_events`).Scan(&n); err == nil && n == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	rows, _ := s.store.Pool().Query(context.Background(), `SELECT workflow_id, kind, attempts, last_error FROM workflow_events`)
	defer rows.Close()
	for rows.Next() {
		var id, kind string
		var attempts int
		var lastError *string
		_ = rows.Scan(&id, &kind, &attempts, &lastError)
		s.t.Logf("undelivered: %s %s after %d attempts: %v", id, kind, attempts, lastError)
	}
	s.t.Fatalf("%d workflow events still undelivered after a minute", n)
}

// result decodes the job's result_json.
func result(t *testing.T, job store.Job) workflowResult {
	t.Helper()
	var r workflowResult
	if len(job.Result) > 0 {
		if err := json.Unmarshal(job.Result, &r); err != nil {
			t.Fatalf("result %s: %v", job.Result, err)
		}
	}
	return r
}

type workflowResult struct {
	Status     string `json:"status"`
	Evaluation *struct {
		Metrics map[string]float64 `json:"metrics"`
		Failure string             `json:"failure"`
	} `json:"evaluation"`
	ModelVersion *struct {
		ID     string `json:"id"`
		Number int    `json:"version_number"`
		Stage  string `json:"stage"`
	} `json:"model_version"`
	Approval *struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"approval"`
	HPO *struct {
		Created   int      `json:"created"`
		BestJobID string   `json:"best_job_id"`
		BestValue *float64 `json:"best_value"`
	} `json:"hpo"`
}
