// Package temporaltest gives tests a real Temporal server: the Temporal CLI's development
// server on 127.0.0.1, started with scripts/temporal-up.sh (which builds the CLI once into
// the tools cache) and stopped by its PID when the test binary ends. SCHEDULERD_TEST_TEMPORAL_DIR
// names a server to use instead.
package temporaltest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// EnvDir names the directory of a server that scripts/temporal-up.sh already runs, to use
// instead of starting one. The tests never stop it.
const EnvDir = "SCHEDULERD_TEST_TEMPORAL_DIR"

// Server is a Temporal server for one test binary.
type Server struct {
	Address string // 127.0.0.1:PORT, the gRPC frontend
	dir     string
	owned   bool
}

var (
	shared    *Server
	sharedErr error
)

// Run starts the server, runs the tests with run, stops the server and returns the exit
// code, so that a TestMain can nest it with the other servers' Run functions.
func Run(m *testing.M, run func(*testing.M) int) int {
	shared, sharedErr = Start()
	code := run(m)
	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "temporaltest:", err)
		}
	}
	return code
}

// Start uses the server in EnvDir or starts one in a new temporary directory.
func Start() (*Server, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		return load(dir, false)
	}
	dir, err := os.MkdirTemp("", "schedulerd-temporaltest-")
	if err != nil {
		return nil, fmt.Errorf("create Temporal server directory: %w", err)
	}
	// --watch-pid stops the server even if this binary dies without calling Stop: on a
	// panic, a go test timeout or SIGINT.
	err = pgtest.RunScript("temporal-up.sh", "--watch-pid", strconv.Itoa(os.Getpid()), dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return load(dir, true)
}

// Stop stops a server this package started, by its PID, and deletes its data. A server
// named by EnvDir is left running.
func (s *Server) Stop() error {
	if !s.owned {
		return nil
	}
	return pgtest.RunScript("temporal-down.sh", s.dir, "--purge")
}

// Shared returns the server Run started, failing the test if it could not start.
func Shared(t testing.TB) *Server {
	t.Helper()
	if sharedErr != nil {
		t.Fatalf("Temporal server for tests: %v", sharedErr)
	}
	if shared == nil {
		t.Fatal("temporaltest: call temporaltest.Run from TestMain before using the shared server")
	}
	return shared
}

func load(dir string, owned bool) (*Server, error) {
	port, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		return nil, fmt.Errorf("read the port of the Temporal server in %s: %w", dir, err)
	}
	return &Server{Address: "127.0.0.1:" + strings.TrimSpace(string(port)), dir: dir, owned: owned}, nil
}
