package daemon_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
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
