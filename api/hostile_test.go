package api_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// hostileText is made of SQL metacharacters: quotes, a statement terminator, a comment, a
// backslash, LIKE wildcards and a placeholder.
const hostileText = `x'); DROP TABLE jobs; -- "\ %_ $1`

// TestSQLMetacharactersInFreeTextFields sends hostileText in every free-text field that the
// API and token creation store, and checks that each is stored verbatim and that no table
// was harmed.
func TestSQLMetacharactersInFreeTextFields(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.do(f.admin, "POST", "/v1/projects", map[string]any{"id": "hostile", "org": hostileText,
		"display_name": hostileText, "owner": hostileText}).want(201)
	config := map[string]any{"image": "trainer:1", "command": []string{hostileText}, "max_runtime_seconds": 600,
		"resources": map[string]any{"gpus": 1, "gpu_models": []string{"A10"}}}
	var job api.Job
	f.do(f.admin, "POST", "/v1/projects/vision/jobs", map[string]any{"job_type": "fine_tune",
		"config": config, "tags": map[string]string{"note": hostileText}}).want(201).decode(&job)
	_, _, err := api.CreateToken(ctx, f.store, api.TokenRequest{Name: hostileText, Role: store.RoleSubmitter,
		Projects: []string{"vision"}}, time.Now(), store.Actor{Name: hostileText, Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}

	stored := map[string]string{}
	row := f.store.Pool().QueryRow(ctx, `SELECT org_id, display_name, owner FROM projects WHERE id = 'hostile'`)
	var org, display, owner string
	if err := row.Scan(&org, &display, &owner); err != nil {
		t.Fatal(err)
	}
	stored["project org"], stored["project display_name"], stored["project owner"] = org, display, owner
	saved := f.job(job.ID)
	var savedConfig struct{ Command []string }
	if err := json.Unmarshal(saved.ConfigJSON, &savedConfig); err != nil {
		t.Fatal(err)
	}
	if len(savedConfig.Command) != 1 {
		t.Fatalf("stored command %q, want one argument", savedConfig.Command)
	}
	stored["job config command"] = savedConfig.Command[0]
	var tags map[string]string
	if err := json.Unmarshal(saved.Tags, &tags); err != nil {
		t.Fatal(err)
	}
	stored["job tag"] = tags["note"]
	stored["token name"] = f.queryText(`SELECT name FROM api_tokens WHERE name LIKE 'x%'`)
	for field, got := range stored {
		if got != hostileText {
			t.Errorf("%s stored as %q, want %q", field, got, hostileText)
		}
	}
	if n := f.count(`SELECT count(*) FROM jobs`); n != 1 {
		t.Errorf("%d jobs, want the 1 submitted", n)
	}
}

// queryText runs a query that returns one text value.
func (f *fixture) queryText(sql string) string {
	f.t.Helper()
	var s string
	if err := f.store.Pool().QueryRow(context.Background(), sql).Scan(&s); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return s
}
