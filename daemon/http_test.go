package daemon_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/schedulerd/schedulerd/api"
	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// TestHTTPServerDropsStalledBody: a client that sends a request's headers and then stops
// sending its body loses the connection when the server's 30 s read timeout passes, so it
// cannot hold a connection and a goroutine of the daemon for ever.
func TestHTTPServerDropsStalledBody(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	daemontest.Start(t, daemontest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Listener = listener
		cfg.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}})

	conn, err := net.Dial("tcp", listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_, err = fmt.Fprint(conn, "POST /v1/projects/vision/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
		"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}

	// io.Copy returns nil once the server closes the connection, and a timeout error if the
	// connection is still open at the deadline.
	if err := conn.SetReadDeadline(start.Add(50 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(io.Discard, conn)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("connection still open after %s: %v", elapsed.Round(time.Second), err)
	}
	if elapsed < 25*time.Second {
		t.Errorf("connection closed after %s, want about the 30 s read timeout", elapsed.Round(time.Second))
	}
}

// TestMetricsGuard: with a guard from the API, /metrics serves only a token of the guard's
// role or a higher one, and /healthz still needs no token.
func TestMetricsGuard(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var apiServer *api.Server
	h := daemontest.Start(t, daemontest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Listener = listener
		cfg.Registry = prometheus.NewRegistry()
		apiServer = api.New(api.Config{Store: cfg.Store})
		cfg.Handler = apiServer
		cfg.MetricsGuard = func(next http.Handler) http.Handler {
			return apiServer.Guard(store.RoleOperator, "/metrics", next)
		}
	}})
	h.Project("vision", 100, 10)
	token := func(name string, role store.Role, projects ...string) string {
		_, secret, err := api.CreateToken(context.Background(), h.Store, api.TokenRequest{Name: name, Role: role,
			Projects: projects}, time.Now(), store.Actor{Name: "test", Role: store.RoleAdmin})
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	base := "http://" + listener.Addr().String()

	cases := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"submitter", token("vision-ci", store.RoleSubmitter, "vision"), http.StatusForbidden},
		{"operator", token("oncall", store.RoleOperator), http.StatusOK},
		{"admin", token("root", store.RoleAdmin), http.StatusOK},
	}
	for _, c := range cases {
		code, body := getWithToken(t, base+"/metrics", c.token)
		if code != c.want {
			t.Errorf("%s: /metrics = %d, want %d", c.name, code, c.want)
		}
		if served := strings.Contains(body, "schedulerd_leader"); served != (c.want == http.StatusOK) {
			t.Errorf("%s: metrics served %v with status %d", c.name, served, code)
		}
	}
	if code, _ := getWithToken(t, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz without a token = %d, want 200", code)
	}
}

func getWithToken(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// orderLog records the messages of the records it handles, in the order their Handle calls
// end. It takes slow seconds to handle a record with the message slow, as a logger may take
// when its output blocks.
type orderLog struct {
	slog.Handler
	slow     string
	mu       *sync.Mutex
	messages *[]string
}

func (l orderLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == l.slow {
		time.Sleep(time.Second)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.messages = append(*l.messages, r.Message)
	return nil
}

func (l orderLog) WithAttrs([]slog.Attr) slog.Handler { return l }

// TestStoppingLoggedBeforeStopped: the line that a stop began comes before the line that
// the daemon stopped, even when the logger is slow to write the first.
func TestStoppingLoggedBeforeStopped(t *testing.T) {
	log := orderLog{Handler: slog.NewTextHandler(io.Discard, nil), slow: "schedulerd stopping", mu: &sync.Mutex{}, messages: &[]string{}}
	h := daemontest.Start(t, daemontest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Logger = slog.New(log)
	}})
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}

	log.mu.Lock()
	defer log.mu.Unlock()
	stopping := slices.Index(*log.messages, "schedulerd stopping")
	stopped := slices.Index(*log.messages, "schedulerd stopped")
	if stopping < 0 || stopped < stopping {
		t.Errorf("log lines %q: want schedulerd stopping before schedulerd stopped", *log.messages)
	}
}
