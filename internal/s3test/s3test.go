// Package s3test gives tests a real S3-compatible server, versitygw on 127.0.0.1. It starts
// one with scripts/s3-up.sh, which builds versitygw once into the tools cache, and stops it
// by its PID when the test binary ends. SCHEDULERD_TEST_S3_DIR names a server to use
// instead. Each test makes its own bucket.
package s3test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// EnvDir names the directory of a server that scripts/s3-up.sh already runs, to use
// instead of starting one. The tests never stop it, except for outage tests that call Halt.
const EnvDir = "SCHEDULERD_TEST_S3_DIR"

// Server is an S3-compatible server for one test binary.
type Server struct {
	Endpoint        string // http://127.0.0.1:PORT
	Region          string
	AccessKeyID     string
	SecretAccessKey string

	dir   string // directory of the server's pid, env file and objects
	owned bool   // started by this package, so Stop deletes dir
}

var (
	shared    *Server
	sharedErr error
)

// Main starts the server, runs the tests with run and stops the server. run is m.Run when
// nil; pass pgtest.Run to have PostgreSQL too:
//
//	func TestMain(m *testing.M) { s3test.Main(m, pgtest.Run) }
func Main(m *testing.M, run func(*testing.M) int) {
	if run == nil {
		run = func(m *testing.M) int { return m.Run() }
	}
	shared, sharedErr = Start()
	code := run(m)

	if shared != nil {
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "s3test:", err)
		}
	}
	os.Exit(code)
}

// Start uses the server in EnvDir or starts one in a new temporary directory.
func Start() (*Server, error) {
	if dir := os.Getenv(EnvDir); dir != "" {
		return load(dir, false)
	}

	dir, err := os.MkdirTemp("", "schedulerd-s3test-")
	if err != nil {
		return nil, fmt.Errorf("create S3 server directory: %w", err)
	}
	if err := pgtest.RunScript("s3-up.sh", watchArgs(dir)...); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	return load(dir, true)
}

// Stop stops a server this package started, by its PID, and deletes its objects. A server
// named by EnvDir is left running.
func (s *Server) Stop() error {
	if !s.owned {
		return nil
	}
	return pgtest.RunScript("s3-down.sh", s.dir, "--purge")
}

// Halt stops the server but keeps its objects and port, to test an outage. Restart brings
// it back.
func (s *Server) Halt() error { return pgtest.RunScript("s3-down.sh", s.dir) }

// Restart starts a halted server again on the same port, with the same objects.
func (s *Server) Restart() error {
	if !s.owned {
		return pgtest.RunScript("s3-up.sh", s.dir)
	}
	return pgtest.RunScript("s3-up.sh", watchArgs(s.dir)...)
}

// watchArgs returns the s3-up.sh arguments that start a server in dir with a watchdog,
// which stops it even if this binary dies without calling Stop: on a panic, a go test
// timeout or SIGINT.
func watchArgs(dir string) []string {
	return []string{"--watch-pid", strconv.Itoa(os.Getpid()), dir}
}

// Shared returns the server Main started, failing the test if it could not start.
func Shared(t testing.TB) *Server {
	t.Helper()
	if sharedErr != nil {
		t.Fatalf("S3 server for tests: %v", sharedErr)
	}
	if shared == nil {
		t.Fatal("s3test: call s3test.Main from TestMain before using the shared server")
	}
	return shared
}

// Client returns an S3 client for the server, with path-style addressing as local servers
// need.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKeyID, s.SecretAccessKey, ""),
	})
}

// NewBucket creates an empty bucket with a random name on the shared server and returns a
// client and the name. The bucket goes with the server's directory when the binary ends.
func NewBucket(t testing.TB) (*s3.Client, string) {
	t.Helper()
	client := Shared(t).Client()
	name := "test-" + randomSuffix()

	_, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return client, name
}

// load reads the env file s3-up.sh wrote in dir.
func load(dir string, owned bool) (*Server, error) {
	data, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil {
		return nil, fmt.Errorf("read settings of the S3 server in %s: %w", dir, err)
	}

	values := make(map[string]string)
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		if key, value, ok := strings.Cut(scanner.Text(), "="); ok {
			values[key] = value
		}
	}
	s := &Server{
		Endpoint:        values["AWS_ENDPOINT_URL_S3"],
		Region:          values["AWS_REGION"],
		AccessKeyID:     values["AWS_ACCESS_KEY_ID"],
		SecretAccessKey: values["AWS_SECRET_ACCESS_KEY"],
		dir:             dir,
		owned:           owned,
	}
	if s.Endpoint == "" || s.AccessKeyID == "" || s.SecretAccessKey == "" {
		return nil, fmt.Errorf("%s/env lacks the endpoint or the credentials; rerun scripts/s3-up.sh %s", dir, dir)
	}
	return s, nil
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
