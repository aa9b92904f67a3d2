package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/internal/logtest"
	"github.com/schedulerd/schedulerd/store"
)

// TestNULCharacterRejectedWithField: a NUL character (\u0000), which PostgreSQL cannot store
// in text or jsonb, is a 400 naming the field. That holds in every string the API stores
// and in the query and path, where the database error was a generic 422 logged as an error.
func TestNULCharacterRejectedWithField(t *testing.T) {
	f := setup(t)
	logs := f.withLog()
	_, run := f.startedRun(f.submitter, "vision")
	job := `"job_type":"fine_tune","config":` + validConfig
	cases := []struct {
		name, method, path, body, field string
	}{
		{"tag value", "POST", "/v1/projects/vision/jobs", `{` + job + `,"tags":{"note":"a\u0000b"}}`, "tags.note"},
		{"config string", "POST", "/v1/projects/vision/jobs",
			`{"job_type":"fine_tune","config":{"image":"a\u0000b","max_runtime_seconds":60,"resources":{"gpus":1}}}`,
			"config"},
		{"project org", "POST", "/v1/projects", `{"id":"speech","org":"a\u0000b"}`, "org"},
		{"project display name", "POST", "/v1/projects", `{"id":"speech","org":"acme","display_name":"a\u0000b"}`,
			"display_name"},
		{"project owner", "POST", "/v1/projects", `{"id":"speech","org":"acme","owner":"\u0000"}`, "owner"},
		{"artifact metadata", "POST", artifactPath(run.RunID), `{"artifact_type":"log","storage_uri":"s3://logs/a",` +
			`"checksum_sha256":"` + checksumA + `","size_bytes":1,"metadata":{"note":"a\u0000b"}}`, "metadata"},
		{"query parameter", "GET", "/v1/jobs?project=a%00b", ``, "project"},
		{"path", "GET", "/v1/projects/a%00b/quota", ``, "path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var body any
			if c.body != "" {
				body = c.body
			}
			p := f.do(f.admin, c.method, c.path, body).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q (detail %q)", p.Field, c.field, p.Detail)
			}
			if !strings.Contains(p.Detail, "NUL") {
				t.Errorf("detail %q, want it to name the NUL character", p.Detail)
			}
		})
	}
	f.t = t
	if text := logs.String(); strings.Contains(text, "level=ERROR") {
		t.Errorf("rejected requests were logged as errors:\n%s", text)
	}
	if n := f.count(`SELECT count(*) FROM projects WHERE id = 'speech'`); n != 0 {
		t.Errorf("%d projects speech stored, want 0", n)
	}
}

// TestInvalidUTF8RejectedWithField: a path or query value that is not UTF-8 once
// percent-decoded gets a 400 that names it. Before, the database rejected it, and the API
// returned 422 and logged an error.
func TestInvalidUTF8RejectedWithField(t *testing.T) {
	f := setup(t)
	logs := f.withLog()
	cases := []struct {
		name, method, path, field string
	}{
		{"query parameter", "GET", "/v1/jobs?project=a%FFb", "project"},
		{"model in the path", "GET", "/v1/projects/vision/models/%FF/versions", "path"},
		{"project in the path", "POST", "/v1/queues/%FF/drain", "path"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			p := f.do(f.admin, c.method, c.path, nil).problem(400, api.TypeInvalidRequest)
			if p.Field != c.field {
				t.Errorf("field %q, want %q", p.Field, c.field)
			}
			if !strings.Contains(p.Detail, "UTF-8") {
				t.Errorf("detail %q, want it to name UTF-8", p.Detail)
			}
		})
	}
	f.t = t
	if text := logs.String(); strings.Contains(text, "level=ERROR") {
		t.Errorf("rejected requests were logged as errors:\n%s", text)
	}
}

// TestTokenNameWithNULRejected: token creation names the field instead of failing in the
// database.
func TestTokenNameWithNULRejected(t *testing.T) {
	f := setup(t)
	_, _, err := api.CreateToken(context.Background(), f.store, api.TokenRequest{Name: "a\x00b",
		Role: store.RoleAdmin}, time.Now(), store.Actor{Name: "test", Role: store.RoleAdmin})
	if err == nil {
		t.Fatal("token created, want an error")
	}
	if !strings.Contains(err.Error(), "token name") {
		t.Errorf("error %q, want it to name the token name", err)
	}
	if !strings.Contains(err.Error(), "NUL") {
		t.Errorf("error %q, want it to name the NUL character", err)
	}
}

// withLog serves the fixture's API again with a logger whose output it returns.
func (f *fixture) withLog() *logtest.Buffer {
	f.t.Helper()
	logs := &logtest.Buffer{}
	f.api = api.New(api.Config{Store: f.store, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f.server = httptest.NewServer(f.api)
	f.t.Cleanup(f.server.Close)
	return logs
}
