package replay_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
	"github.com/schedulerd/schedulerd/store"
)

// daemonProcess is a schedulerd run by the test as a separate process, so that it can be
// killed with SIGKILL.
type daemonProcess struct {
	t   *testing.T
	bin string
	env []string
	cmd *exec.Cmd
	log *os.File
}

func buildSchedulerd(t *testing.T) string {
	t.Helper()
	root, err := pgtest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "schedulerd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/schedulerd")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build schedulerd: %v\n%s", err, out)
	}
	return bin
}

func (d *daemonProcess) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.bin, "run")
	d.cmd.Env = d.env
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
}

func (d *daemonProcess) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	_ = d.cmd.Wait()
}

func (d *daemonProcess) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	_ = d.cmd.Wait()
}

// TestCrashMidReplayLosesNothing kills the daemon with SIGKILL three times during a replay
// of 200 tasks and restarts it each time. At the end every job has ended as the trace
// says, and no job ever had a second run: a restart adopts the pods it finds instead of
// dispatching again.
func TestCrashMidReplayLosesNothing(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	const limit, speedup, load = 200, 100_000, 20
	dir := traceDir(t)

	url := pgtest.NewDatabase(t)
	s := storeFor(t, url)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "schedulerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d := &daemonProcess{t: t, bin: buildSchedulerd(t), log: logFile, env: append(os.Environ(),
		"SCHEDULERD_DATABASE_URL="+url, "SCHEDULERD_KUBECONFIG="+daemontest.Kube.Kubeconfig,
		"SCHEDULERD_HTTP_ADDR=127.0.0.1:0", "SCHEDULERD_POLL_INTERVAL=200ms")}
	d.start()
	defer d.stop()

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
		d.kill()
		t.Logf("crash %d after %s", i+1, pause)
		d.start()
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
