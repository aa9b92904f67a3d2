package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// fuzzEndpoints are the endpoints that decode a body, chosen by the fuzzer's first input.
// {id} is the job that setupFuzz submits.
var fuzzEndpoints = []struct {
	method, path string
	submitter    bool // call with the vision submitter's token rather than the admin's
}{
	{"POST", "/v1/projects/vision/jobs", true},
	{"PATCH", "/v1/jobs/{id}/priority", true},
	{"PUT", "/v1/projects/vision/quota", false},
	{"POST", "/v1/queues/vision/drain", false},
	{"POST", "/v1/queues/vision/reprioritize", false},
	{"POST", "/v1/projects", false},
	{"PATCH", "/v1/projects/vision/quota", false},
}

// FuzzSubmit sends arbitrary bodies and idempotency keys to every endpoint that decodes a
// body. No input may cause a 5xx or a response that is not JSON, and a request that fails
// must leave the database as it was. Without -fuzz it runs the seeds below.
func FuzzSubmit(f *testing.F) {
	seeds := []struct {
		endpoint uint8
		body     string
		key      string
	}{
		{0, validSubmission, ""},
		{0, validSubmission, "seed-key"},
		{0, `{"job_type":"rlhf","priority":100,"config":{"image":"x","max_runtime_seconds":1,"resources":{"gpus":64}}}`, ""},
		{0, `{"job_type":"eval_only","config":{"image":"\u0000","max_runtime_seconds":2592001}}`, "k"},
		{0, `{"job_type":"hpo","config":` + validConfig + `,"parent_job_id":"00000000-0000-0000-0000-000000000000"}`, ""},
		{0, `{"job_type":"fine_tune","config":` + validConfig + `,"tags":{"` + string(rune(0x10FFFF)) + `":"v"}}`, ""},
		{0, "{\"job_type\":\"fine_tune\",\"config\":{\"image\":\"\xc3\x28\"}}", "\xff"},
		{0, `{"job_type":"fine_tune","priority":1e400,"config":{}}`, ""},
		{0, `{"job_type":"fine_tune","config":{"resources":{"gpu_models":["A10","A10","..","a/b"]}}}`, ""},
		{0, `null`, ""},
		{1, `{"priority": 50}`, ""},
		{1, `{"priority": -0}`, ""},
		{2, newQuota, ""},
		{2, `{"gpu_hours_budget":1e10,"max_concurrent_jobs":0,"priority_tier":0,"period_start":"2026-02-30","period_end":"2026-03-01"}`, ""},
		{3, ``, ""},
		{3, `{"deadline":"0001-01-01T00:00:00Z"}`, ""},
		{4, `{"delta":-100}`, ""},
		{5, `{"id":"a","org":"` + string(bytes.Repeat([]byte("o"), 64)) + `"}`, ""},
		{5, `{"id":"new-project","org":"acme","namespace":"ns"}`, ""},
		{6, `{"gpu_hours_budget":5}`, ""},
		{6, `{}`, ""},
		{6, `{"period_end":"2000-01-01","priority_tier":-1}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.endpoint, []byte(s.body), s.key)
	}

	fx := setup(f)
	job := fx.submit(fx.submitter, "vision", 5)
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte, key string) {
		fx.t = t
		e := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		path := e.path
		if path == "/v1/jobs/{id}/priority" {
			path = "/v1/jobs/" + job.ID.String() + "/priority"
		}
		token := fx.admin
		if e.submitter {
			token = fx.submitter
		}

		before := fx.digest()
		req := httptest.NewRequest(e.method, path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if key != "" {
			req.Header["Idempotency-Key"] = []string{key}
		}
		rec := httptest.NewRecorder()
		fx.api.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", e.method, path, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: status %d with a body that is not JSON: %q", e.method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 300 {
			if after := fx.digest(); after != before {
				t.Fatalf("%s %s failed with %d but changed the database:\nbefore %s\nafter  %s",
					e.method, path, rec.Code, before, after)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("error %d with Content-Type %q", rec.Code, ct)
			}
		}
		fx.checkInvariants()
	})
}

// digest summarises every row the endpoints may write, to detect any change.
func (f *fixture) digest() string {
	f.t.Helper()
	var digest string
	err := f.store.Pool().QueryRow(context.Background(), `SELECT concat_ws(' | ',
		(SELECT string_agg(j.id || ':' || j.status || ':' || j.priority, ',' ORDER BY j.id) FROM jobs j),
		(SELECT string_agg(k.idempotency_key, ',' ORDER BY k.idempotency_key) FROM job_idempotency_keys k),
		(SELECT string_agg(q::text, ',' ORDER BY q.project_id) FROM quotas q),
		(SELECT string_agg(p::text, ',' ORDER BY p.id) FROM projects p),
		(SELECT count(*) FROM runs),
		(SELECT count(*) FROM audit_log))`).Scan(&digest)
	if err != nil {
		f.t.Fatal(err)
	}
	return digest
}

// checkInvariants fails when a request left rows that do not belong together: a key
// without its job or the other way round, or a queue that disagrees with the jobs.
func (f *fixture) checkInvariants() {
	f.t.Helper()
	checks := []struct{ what, sql string }{
		{"keyed jobs without a key row", `SELECT count(*) FROM jobs j WHERE j.idempotency_key IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM job_idempotency_keys k WHERE k.job_id = j.id)`},
		{"key rows without their job", `SELECT count(*) FROM job_idempotency_keys k
			WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = k.job_id)`},
		{"queued jobs missing from job_queue", `SELECT count(*) FROM jobs j WHERE j.status = 'queued'
			AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.job_id = j.id AND q.priority = j.priority)`},
		{"job_queue rows of jobs not queued", `SELECT count(*) FROM job_queue q
			WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.id = q.job_id AND j.status = 'queued')`},
	}
	for _, c := range checks {
		if n := f.count(c.sql); n != 0 {
			f.t.Fatalf("%d %s", n, c.what)
		}
	}
}

// The request decoder rejects every malformed body before the database is touched, so a
// hostile client costs no writes.
func TestSubmitRejectsWithoutWrites(t *testing.T) {
	f := setup(t)
	before := f.digest()
	for _, c := range badSubmissions {
		resp := f.do(f.submitter, "POST", "/v1/projects/vision/jobs", c.body)
		if resp.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", c.name, resp.status)
		}
	}
	if after := f.digest(); after != before {
		t.Errorf("rejected submissions changed the database:\nbefore %s\nafter  %s", before, after)
	}
}
