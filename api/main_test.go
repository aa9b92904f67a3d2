package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is the API on a fresh database, served by an httptest server, with two projects
// and a token of each kind:
//   - vision: budget 100 GPU-hours, 4 concurrent jobs, priority tier 50
//   - audio: budget 100 GPU-hours, 4 concurrent jobs, priority tier 50
//   - GPU model A10 on 2 nodes of 8 GPUs each, and T4 on 1 node of 4
type fixture struct {
	t      testing.TB
	store  *store.Store
	server *httptest.Server
	api    *api.Server

	admin, operator, submitter, audioSubmitter string
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, store: store.New(pgtest.NewPool(t))}
	f.api = api.New(api.Config{Store: f.store})
	f.server = httptest.NewServer(f.api)
	t.Cleanup(f.server.Close)

	f.project("vision")
	f.project("audio")
	f.capacity(
		store.ModelCapacity{Model: "A10", CapacityMilli: 16000, Nodes: 2, LargestNodeMilli: 8000,
			LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288},
		store.ModelCapacity{Model: "T4", CapacityMilli: 4000, Nodes: 1, LargestNodeMilli: 4000,
			LargestNodeCPUMilli: 64000, LargestNodeMemoryMiB: 524288},
	)
	f.admin = f.token("root", store.RoleAdmin)
	f.operator = f.token("oncall", store.RoleOperator)
	f.submitter = f.token("vision-ci", store.RoleSubmitter, "vision")
	f.audioSubmitter = f.token("audio-ci", store.RoleSubmitter, "audio")
	return f
}

func (f *fixture) project(id string) {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.store.UpsertProject(ctx, store.Project{ID: id, OrgID: "acme", K8sNamespace: "team-" + id}); err != nil {
		f.t.Fatal(err)
	}
	_, err := f.store.UpsertQuota(ctx, store.Quota{ProjectID: id, GPUHoursBudget: 100, MaxConcurrentJobs: 4,
		PriorityTier: 50, PeriodStart: date(2026, 1, 1), PeriodEnd: date(2100, 1, 1)})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) capacity(models ...store.ModelCapacity) {
	f.t.Helper()
	if err := f.store.SyncGPUCapacity(context.Background(), models); err != nil {
		f.t.Fatal(err)
	}
}

// fixtureActor creates the fixture's tokens.
const fixtureActor = "test"

func (f *fixture) token(name string, role store.Role, projects ...string) string {
	f.t.Helper()
	_, secret, err := api.CreateToken(context.Background(), f.store,
		api.TokenRequest{Name: name, Role: role, Projects: projects}, time.Now(), store.Actor{Name: fixtureActor, Role: store.RoleAdmin})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

// ownedToken creates a token of owner under another name and returns its secret.
func (f *fixture) ownedToken(name, owner string, role store.Role) string {
	f.t.Helper()
	_, secret, err := api.CreateToken(context.Background(), f.store,
		api.TokenRequest{Name: name, Owner: owner, Role: role}, time.Now(),
		store.Actor{Name: fixtureActor, Role: store.RoleAdmin})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// response is what a request got back.
type response struct {
	t      testing.TB
	status int
	header http.Header
	body   []byte
}

// do sends a request with token as its bearer token ("" for none). body is sent as is
// when it is a string or []byte, and encoded as JSON otherwise. headers are name, value
// pairs.
func (f *fixture) do(token, method, path string, body any, headers ...string) response {
	f.t.Helper()
	resp, err := f.send(token, method, path, body, headers...)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.t = f.t
	return resp
}

// send is do for goroutines other than the test's: it returns errors instead of failing.
func (f *fixture) send(token, method, path string, body any, headers ...string) (response, error) {
	var reader io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(b)
	case []byte:
		reader = bytes.NewReader(b)
	default:
		encoded, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		reader = bytes.NewReader(encoded)
	}
	req, err := http.NewRequest(method, f.server.URL+path, reader)
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// decode reads the body into v, failing the test when it is not JSON of that shape.
func (r response) decode(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		r.t.Fatalf("decode body %s: %v", r.body, err)
	}
}

// want fails the test unless the status is status.
func (r response) want(status int) response {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// problem checks that the response is a problem document of status and type, and
// returns it.
func (r response) problem(status int, typ string) api.Problem {
	r.t.Helper()
	r.want(status)
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		r.t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p api.Problem
	r.decode(&p)
	if p.Type != typ || p.Status != status {
		r.t.Errorf("problem type %q status %d, want %q and %d: %s", p.Type, p.Status, typ, status, r.body)
	}
	return p
}

// fineTune is a valid fine_tune config with gpus whole GPUs on A10.
func fineTune(gpus int) map[string]any {
	return map[string]any{
		"image":               "registry.example/trainer:1",
		"max_runtime_seconds": 3600,
		"resources":           map[string]any{"gpus": gpus, "gpu_models": []string{"A10"}, "cpu_milli": 4000, "memory_mib": 16384},
	}
}

func submitBody(priority int, config map[string]any) map[string]any {
	return map[string]any{"job_type": "fine_tune", "priority": priority, "config": config}
}

// submit submits a valid job to project and returns it.
func (f *fixture) submit(token, project string, priority int) api.Job {
	f.t.Helper()
	var job api.Job
	f.do(token, "POST", "/v1/projects/"+project+"/jobs", submitBody(priority, fineTune(1))).want(201).decode(&job)
	return job
}

func (f *fixture) job(id uuid.UUID) store.Job {
	f.t.Helper()
	job, err := f.store.GetJob(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return job
}

// count runs a count(*) query.
func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// wantJSON compares two JSON texts by value.
func wantJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	var gotValue, wantValue any
	if err := json.Unmarshal(got, &gotValue); err != nil {
		t.Errorf("%s: %s is not JSON: %v", what, got, err)
		return
	}
	if err := json.Unmarshal([]byte(want), &wantValue); err != nil {
		t.Fatalf("%s: the expected %s is not JSON: %v", what, want, err)
	}
	if !reflect.DeepEqual(gotValue, wantValue) {
		t.Errorf("%s %s, want %s", what, compact(got), want)
	}
}

func compact(raw []byte) string {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return string(raw)
	}
	return b.String()
}

// projectAudit reads the audit records of project without the grants of the fixture's own
// tokens, which every project's records include.
func (f *fixture) projectAudit(project string) api.AuditList {
	f.t.Helper()
	var audit api.AuditList
	f.do(f.admin, "GET", "/v1/audit?project="+project, nil).want(200).decode(&audit)
	audit.Records = slices.DeleteFunc(audit.Records, func(r api.AuditRecord) bool {
		return r.Action == "token.create" && r.Actor == fixtureActor
	})
	return audit
}
