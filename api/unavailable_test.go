package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/store"
)

// TestDatabaseDownIs503: while the database cannot be reached, a request gets 503 with the
// unavailable problem type, as /readyz does, not a 500 that reads like a bug. Port 1 on
// loopback has no server, so every connection is refused.
func TestDatabaseDownIs503(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	server := httptest.NewServer(api.New(api.Config{Store: store.New(pool)}))
	t.Cleanup(server.Close)

	req, err := http.NewRequest("GET", server.URL+"/v1/jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sdt_anything")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p api.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if p.Type != api.TypeUnavailable {
		t.Errorf("problem type %q, want %q", p.Type, api.TypeUnavailable)
	}
	if p.RequestID == "" {
		t.Error("problem has no request id")
	}
}
