package daemon

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestNotReadyHidesErrors: /readyz, which needs no token, responds with the reasons only. The
// errors behind them, which may name the database's host and user, go to the log.
func TestNotReadyHidesErrors(t *testing.T) {
	var logs bytes.Buffer
	d := &Daemon{cfg: Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))}}
	dbErr := errors.New("failed to connect to `user=alice database=prod`: 10.0.0.5:5432 (db.internal): dial error")
	problems := []notReady{
		{reason: "database unreachable", err: dbErr},
		{reason: "dispatcher has not synced with the cluster yet"},
	}

	w := httptest.NewRecorder()
	d.writeNotReady(w, problems)

	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
	want := "database unreachable; dispatcher has not synced with the cluster yet\n"
	if body := w.Body.String(); body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if !strings.Contains(logs.String(), "user=alice") {
		t.Errorf("log %q lacks the database error", logs.String())
	}
}
