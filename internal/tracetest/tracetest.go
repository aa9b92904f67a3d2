// Package tracetest finds the Alibaba GPU cluster trace for tests that replay it.
package tracetest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
)

// DirEnv names a trace directory to use instead of the shared copy beside the repository.
const DirEnv = "SCHEDULERD_TRACE_DIR"

// Dir returns the trace directory: $SCHEDULERD_TRACE_DIR, or else
// shared/traces/alibaba-gpu-v2023 beside the repository. It fails the test when the
// directory has no task file.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(DirEnv)
	if dir == "" {
		root, err := pgtest.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "..", "shared", "traces", "alibaba-gpu-v2023")
	}
	if _, err := os.Stat(filepath.Join(dir, "openb_pod_list_default.csv")); err != nil {
		t.Fatalf("trace not found (set %s): %v", DirEnv, err)
	}
	return dir
}
