package replay_test

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/tracetest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// TestCrashMidReplayLosesNothing kills the daemon with SIGKILL three times during a replay
// of 200 tasks and restarts it each time. At the end every job has ended as the trace
// says, and no job ever had a second run: a restart adopts the pods it finds instead of
// dispatching again.
func TestCrashMidReplayLosesNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	const limit, speedup, load = 200, 100_000, 20
	dir := tracetest.Dir(t)

	url := pgtest.NewDatabase(t)
	s := storeFor(t, url)
	d := &daemontest.Process{T: t, Bin: daemontest.BuildBinary(t),
		LogPath: filepath.Join(t.TempDir(), "schedulerd.log"), Env: append(os.Environ(),
			"SCHEDULERD_DATABASE_URL="+url, "SCHEDULERD_KUBECONFIG="+daemontest.Kube.Kubeconfig,
			"SCHEDULERD_HTTP_ADDR=127.0.0.1:0", "SCHEDULERD_POLL_INTERVAL=200ms")}
	d.Start()
	defer func() { _ = d.Stop(30 * time.Second) }()

	cfg := replay.Config{
		NodesFile: filepath.Join(dir, "openb_node_list_gpu_node.csv"),
		TasksFile: filepath.Join(dir, "openb_pod_list_default.csv"),
		Limit:     limit, Mode: trace.ModePaced, Speedup: speedup, Load: load,
		BudgetScale: 1000, MaxConcurrent: 1000, ReportDir: t.TempDir(), Timeout: 6 * time.Minute,
	}
	r, err := replay.New(cfg, s, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := r.Run(context.Background()); done <- err }()

	for i := range 3 {
		pause := time.Duration(3+rng.IntN(8)) * time.Second
		select {
		case err := <-done:
			t.Fatalf("replay ended before crash %d: %v", i+1, err)
		case <-time.After(pause):
		}
		d.Kill()
		t.Logf("crash %d after %s", i+1, pause)
		d.Start()
	}
	if err := <-done; err != nil {
		t.Fatalf("replay: %v (seed %d)", err, seed)
	}

	counts := jobCounts(t, s)
	tasks := firstGPUTasks(t, cfg.TasksFile, limit)
	wantFailed := 0
	for _, task := range tasks {
		if task.Phase == trace.PhaseFailed {
			wantFailed++
		}
	}
	if counts["completed"] != limit-wantFailed || counts["failed"] != wantFailed {
		t.Errorf("jobs by state %v, want %d completed and %d failed (seed %d)", counts, limit-wantFailed, wantFailed, seed)
	}
	var jobsWithSecondRun int
	if err := s.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM jobs WHERE run_count <> 1`).Scan(&jobsWithSecondRun); err != nil {
		t.Fatal(err)
	}
	if jobsWithSecondRun != 0 {
		t.Errorf("%d jobs were dispatched more than once (seed %d)", jobsWithSecondRun, seed)
	}
}

func storeFor(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, store.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
