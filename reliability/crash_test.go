//go:build reliability

package reliability_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/tracetest"
	"github.com/schedulerd/schedulerd/replay"
	"github.com/schedulerd/schedulerd/replay/trace"
)

// The crash replay covers the first 2,000 GPU tasks of the trace. Trace time is compressed
// so that all arrive within seconds and the longest task (145 days, the first to arrive)
// runs 63 s. The replay lasts at least that long however fast the machine is, which leaves
// room for the 20 crashes, about 2 s apart.
const (
	crashTasks   = 2000
	crashSpeedup = 200_000
	crashLoad    = 20
	crashes      = 20
)

// TestKillNineDuringReplay kills the daemon with SIGKILL at 20 random moments of a replay
// of 2,000 trace tasks, restarting it each time. Every job must end as its trace task did,
// and a job may run again only after a preemption, never beside its earlier run.
func TestKillNineDuringReplay(t *testing.T) {
	sc := newScenario(t, 1)
	dir := tracetest.Dir(t)
	cfg := replay.Config{
		NodesFile: filepath.Join(dir, "openb_node_list_gpu_node.csv"),
		TasksFile: filepath.Join(dir, "openb_pod_list_default.csv"),
		Limit:     crashTasks, Mode: trace.ModePaced, Speedup: crashSpeedup, Load: crashLoad,
		BudgetScale: 1000, MaxConcurrent: crashTasks, ReportDir: t.TempDir(), Timeout: 8 * time.Minute,
	}
	r, err := replay.New(cfg, sc.store, daemontest.Kube.Clientset)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deleteReplayNodes)
	// A single replica: with leader election on, each restart would wait for the killed
	// process's Lease to expire.
	d := sc.daemon("schedulerd", "SCHEDULERD_LEADER_ELECTION=false")
	d.Start()

	started := time.Now()
	done := make(chan error, 1)
	go func() { _, err := r.Run(context.Background()); done <- err }()
	for i := range crashes {
		pause := time.Duration(500+sc.rng.IntN(3000)) * time.Millisecond
		select {
		case err := <-done:
			t.Fatalf("replay ended after %d of %d crashes: %v (seed %d)", i, crashes, err, sc.seed)
		case <-time.After(pause):
		}
		d.Kill()
		t.Logf("crash %d after %s; %d runs so far", i+1, pause, sc.count(`SELECT count(*) FROM runs`))
		// The database invariants hold at every commit, so also right after a crash. The
		// pods are not compared here: a pod may end while no daemon records it.
		requireInvariants(t, sc.seed, system{Pool: sc.store.Pool()})
		d.Start()
	}
	if err := <-done; err != nil {
		t.Fatalf("replay: %v (seed %d)", err, sc.seed)
	}
	t.Logf("replay with %d crashes took %s", crashes, time.Since(started).Round(time.Second))

	counts := sc.jobsByStatus()
	if counts["completed"]+counts["failed"] != crashTasks {
		t.Errorf("jobs by status %v, want all %d completed or failed (seed %d)", counts, crashTasks, sc.seed)
	}
	// The replay gives a job that failed in the trace a pod that exits 1, and one attempt.
	mismatched := sc.count(`SELECT count(*) FROM jobs WHERE status::text <>
		CASE WHEN COALESCE((config_json->'simulation'->>'exit_code')::int, 0) = 0 THEN 'completed' ELSE 'failed' END`)
	if mismatched != 0 {
		t.Errorf("%d jobs ended otherwise than the trace says (seed %d)", mismatched, sc.seed)
	}
	// kube-scheduler may preempt a low-priority pod for a higher one, which requeues its
	// job. Any other end of an earlier run means that the job ran twice.
	if n := sc.count(`SELECT count(*) FROM runs r WHERE r.status <> 'preempted'
		AND EXISTS (SELECT 1 FROM runs l WHERE l.job_id = r.job_id AND l.run_number > r.run_number)`); n != 0 {
		t.Errorf("%d runs were followed by another run of their job without a preemption (seed %d)", n, sc.seed)
	}
	t.Logf("%d runs preempted", sc.count(`SELECT count(*) FROM runs WHERE status = 'preempted'`))
	requireInvariants(t, sc.seed, sc.system())
}

// deleteReplayNodes deletes the replay's 1,213 KWOK nodes, so that later scenarios do not
// pay for their heartbeats.
func deleteReplayNodes() {
	_ = daemontest.Kube.Clientset.CoreV1().Nodes().DeleteCollection(context.Background(),
		metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "sim.schedulerd.io/replay=true"})
}
