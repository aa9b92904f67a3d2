package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

func TestAuthentication(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	expired, expiredSecret := f.tokenAt("old", time.Now().Add(-2*time.Hour), time.Hour)
	revoked := f.token("leaked", store.RoleAdmin)
	revokedToken, err := f.store.TokenByHash(ctx, api.HashSecret(revoked), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RevokeToken(ctx, revokedToken.ID, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	if expired.ExpiresAt == nil {
		t.Fatal("the expired token has no expiry")
	}

	cases := []struct {
		name, header string
	}{
		{"no header", ""},
		{"unknown token", "Bearer sdt_not-a-real-token"},
		{"basic scheme", "Basic " + f.admin},
		{"bearer without token", "Bearer "},
		{"expired", "Bearer " + expiredSecret},
		{"revoked", "Bearer " + revoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var headers []string
			if c.header != "" {
				headers = []string{"Authorization", c.header}
			}
			resp := f.do("", "GET", "/v1/jobs", nil, headers...)
			resp.problem(401, api.TypeUnauthorized)
			if got := resp.header.Get("WWW-Authenticate"); got != `Bearer realm="schedulerd"` {
				t.Errorf("WWW-Authenticate %q", got)
			}
		})
	}
}

// tokenAt stores an admin token created at createdAt that lives for ttl.
func (f *fixture) tokenAt(name string, createdAt time.Time, ttl time.Duration) (store.Token, string) {
	f.t.Helper()
	token, secret, err := api.CreateToken(context.Background(), f.store,
		api.TokenRequest{Name: name, Role: store.RoleAdmin, TTL: ttl}, createdAt, store.Actor{Name: "test", Role: store.RoleAdmin})
	if err != nil {
		f.t.Fatal(err)
	}
	return token, secret
}

// A refused token and a role that falls short are logged at Info, the daemon's default
// level, with the reason and the client's address, and without the secret sent.
func TestRefusedRequestsLogged(t *testing.T) {
	f := setup(t)
	logs := f.withLog()
	f.do("sdt_guessed", "GET", "/v1/jobs", nil).problem(401, api.TypeUnauthorized)
	f.do(f.submitter, "GET", "/v1/audit", nil).problem(403, api.TypeForbidden)
	f.do(f.submitter, "GET", "/v1/jobs", nil).want(200)

	var refused []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, `msg="API request refused"`) {
			refused = append(refused, line)
		}
	}
	if len(refused) != 2 {
		t.Fatalf("%d refusals logged, want 2:\n%s", len(refused), logs)
	}
	want := []string{`level=INFO`, `status=401`, `reason="the bearer token is unknown, expired or revoked"`, `remote_addr=127.0.0.1:`}
	for _, w := range want {
		if !strings.Contains(refused[0], w) {
			t.Errorf("401 line %q, want %s", refused[0], w)
		}
	}
	if !strings.Contains(refused[1], `status=403`) || !strings.Contains(refused[1], `\"vision-ci\" has the submitter role`) {
		t.Errorf("403 line %q, want the status and the token's name and role", refused[1])
	}
	if strings.Contains(logs.String(), "sdt_guessed") {
		t.Error("the log holds the secret that was sent")
	}
}

func TestRolesAndProjects(t *testing.T) {
	f := setup(t)
	audioJob := f.submit(f.audioSubmitter, "audio", 5)
	quota := `{"gpu_hours_budget":10,"max_concurrent_jobs":2,"priority_tier":5,` +
		`"period_start":"2026-01-01","period_end":"2027-01-01"}`

	cases := []struct {
		name, token, method, path, body string
		status                          int
	}{
		{"submitter on another project", f.submitter, "POST", "/v1/projects/audio/jobs", validSubmission, 403},
		{"submitter reads a job of another project", f.submitter, "GET", "/v1/jobs/" + audioJob.ID.String(), "", 404},
		{"submitter cancels a job of another project", f.submitter, "POST", "/v1/jobs/" + audioJob.ID.String() + "/cancel", "", 404},
		{"submitter explains a job of another project", f.submitter, "GET", "/v1/jobs/" + audioJob.ID.String() + "/explain", "", 404},
		{"submitter reads the quota of another project", f.submitter, "GET", "/v1/projects/audio/quota", "", 403},
		{"submitter sets a quota", f.submitter, "PUT", "/v1/projects/vision/quota", quota, 403},
		{"submitter drains", f.submitter, "POST", "/v1/queues/vision/drain", "", 403},
		{"operator sets a quota", f.operator, "PUT", "/v1/projects/vision/quota", quota, 403},
		{"operator creates a project", f.operator, "POST", "/v1/projects", `{"id":"x","org":"acme"}`, 403},
		{"operator reads the audit log", f.operator, "GET", "/v1/audit", "", 403},
		{"submitter on its project", f.submitter, "POST", "/v1/projects/vision/jobs", validSubmission, 201},
		{"operator on any project", f.operator, "POST", "/v1/projects/audio/jobs", validSubmission, 201},
		{"operator drains", f.operator, "POST", "/v1/queues/audio/drain", "", 200},
		{"admin sets a quota", f.admin, "PUT", "/v1/projects/vision/quota", quota, 200},
		{"admin reads the audit log", f.admin, "GET", "/v1/audit", "", 200},
		{"anyone reads the OpenAPI document", "", "GET", "/openapi.json", "", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			var body any
			if c.body != "" {
				body = c.body
			}
			resp := f.do(c.token, c.method, c.path, body)
			switch c.status {
			case 403:
				resp.problem(403, api.TypeForbidden)
				return
			case 404:
				p := resp.problem(404, api.TypeNotFound)
				// The same message as for a job that does not exist, without the project name.
				if want := "job " + audioJob.ID.String() + " does not exist"; p.Detail != want {
					t.Errorf("detail %q, want %q", p.Detail, want)
				}
				return
			}
			resp.want(c.status)
		})
	}
}

const validSubmission = `{"job_type":"fine_tune","config":` + validConfig + `}`

func TestTokensStoredAsHashes(t *testing.T) {
	f := setup(t)
	if !strings.HasPrefix(f.admin, "sdt_") || len(f.admin) != 47 {
		t.Errorf("secret %q, want sdt_ and 43 base64 characters", f.admin)
	}
	var rows int
	err := f.store.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM api_tokens t WHERE t::text LIKE '%' || $1 || '%'`, f.admin[4:]).Scan(&rows)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 0 {
		t.Errorf("%d token rows contain the secret", rows)
	}
	if n := f.count(`SELECT count(*) FROM api_tokens WHERE token_sha256 = sha256($1::bytea)`, []byte(f.admin)); n != 1 {
		t.Errorf("%d rows hold the SHA-256 of the secret, want 1", n)
	}
}

func TestTokenRequestValidation(t *testing.T) {
	f := setup(t)
	cases := []struct {
		name string
		req  api.TokenRequest
	}{
		{"no name", api.TokenRequest{Role: store.RoleAdmin}},
		{"unknown role", api.TokenRequest{Name: "x", Role: "root"}},
		{"submitter without projects", api.TokenRequest{Name: "x", Role: store.RoleSubmitter}},
		{"operator with projects", api.TokenRequest{Name: "x", Role: store.RoleOperator, Projects: []string{"vision"}}},
		{"missing project", api.TokenRequest{Name: "x", Role: store.RoleSubmitter, Projects: []string{"nope"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := api.CreateToken(context.Background(), f.store, c.req, time.Now(), store.Actor{Name: "test", Role: store.RoleAdmin})
			if err == nil {
				t.Error("token created, want an error")
			}
		})
	}
}

// TestTokenCreationAuditExpiry: the audit record of a new token gives its expiry, so that
// the log distinguishes a token that expires from one that works until it is revoked.
func TestTokenCreationAuditExpiry(t *testing.T) {
	f := setup(t)
	createdAt := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.tokenAt("temporary", createdAt, 90*time.Minute)

	var list api.AuditList
	f.do(f.admin, "GET", "/v1/audit?limit=1", nil).want(200).decode(&list)
	if len(list.Records) != 1 {
		t.Fatalf("%d audit records, want 1", len(list.Records))
	}
	record := list.Records[0]
	if record.Action != "token.create" {
		t.Fatalf("newest audit action %q, want token.create", record.Action)
	}
	var after struct {
		Name      string     `json:"name"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(record.After, &after); err != nil {
		t.Fatal(err)
	}
	if after.Name != "temporary" {
		t.Errorf("audited token %q, want temporary", after.Name)
	}
	want := createdAt.Add(90 * time.Minute)
	if after.ExpiresAt == nil || !after.ExpiresAt.Equal(want) {
		t.Errorf("audited expiry %v, want %s", after.ExpiresAt, want)
	}
}

// A token's grant and revocation appear in the audit records of each project it names, so
// that `GET /v1/audit?project=P` shows who was given access to P, and not in another's.
func TestTokenGrantsInProjectAudit(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	actor := store.Actor{Name: "ana", Role: store.RoleAdmin}
	both, _, err := api.CreateToken(ctx, f.store, api.TokenRequest{Name: "shared-ci", Role: store.RoleSubmitter,
		Projects: []string{"vision", "audio"}}, time.Now(), actor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RevokeToken(ctx, both.ID, time.Now(), &store.Audit{Actor: actor, Action: "token.revoke", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	f.token("oncall-2", store.RoleOperator) // no project: in no project's records

	for _, project := range []string{"vision", "audio"} {
		var actions []string
		for _, r := range f.projectAudit(project).Records {
			actions = append(actions, r.Action+" by "+r.Actor)
		}
		if want := "[token.revoke by ana token.create by ana]"; fmt.Sprint(actions) != want {
			t.Errorf("%s audit %v, want %s", project, actions, want)
		}
	}
	f.project("speech")
	if records := f.projectAudit("speech").Records; len(records) != 0 {
		t.Errorf("speech audit has %d records, want none", len(records))
	}
}

// TestTokenNameRule checks the names that token create rejects before it connects: a
// newline in a name would forge a row of token list.
func TestTokenNameRule(t *testing.T) {
	rule := "want 1 to 200 characters of UTF-8, not all spaces, without control characters such as tab or newline"
	cases := map[string]string{
		"eve\nana admin": `invalid token name "eve\nana admin": ` + rule,
		"a\tb":           `invalid token name "a\tb": ` + rule,
		"   ":            `invalid token name "   ": ` + rule,
		"bad\xff":        `invalid token name "bad\xff": ` + rule,
		"":               `invalid token name "": ` + rule,
	}
	for name, want := range cases {
		err := api.TokenRequest{Name: name, Role: store.RoleOperator}.Validate()
		if err == nil || err.Error() != want {
			t.Errorf("name %q: error %v, want %s", name, err, want)
		}
	}
	long := strings.Repeat("é", 200)
	if err := (api.TokenRequest{Name: long, Role: store.RoleOperator}).Validate(); err != nil {
		t.Errorf("200-character name: %v", err)
	}
}

// An owner follows the rule of names, since token list prints it in a column too.
func TestTokenOwnerRule(t *testing.T) {
	rule := "want 1 to 200 characters of UTF-8, not all spaces, without control characters such as tab or newline"
	cases := map[string]string{
		"eve\nana":               `invalid token owner "eve\nana": ` + rule,
		"   ":                    `invalid token owner "   ": ` + rule,
		strings.Repeat("é", 201): `invalid token owner "` + strings.Repeat("é", 201) + `": ` + rule,
	}
	for owner, want := range cases {
		err := api.TokenRequest{Name: "ana-ci", Owner: owner, Role: store.RoleOperator}.Validate()
		if err == nil || err.Error() != want {
			t.Errorf("owner %q: error %v, want %s", owner, err, want)
		}
	}
	if err := (api.TokenRequest{Name: "ana-ci", Owner: "ana", Role: store.RoleOperator}).Validate(); err != nil {
		t.Errorf("owner ana: %v", err)
	}
}

func TestTokenProjectsGivenTwice(t *testing.T) {
	req := api.TokenRequest{Name: "bob", Role: store.RoleSubmitter, Projects: []string{"vision", "nlp", "vision"}}
	err := req.Validate()
	if err == nil || err.Error() != `project "vision" is given twice` {
		t.Errorf("error %v, want: project \"vision\" is given twice", err)
	}
}
