//go:build reliability

package reliability_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/jobspec"
)

// The Lease timing of `schedulerd run` (client-go's defaults): a paused leader's Lease
// expires 15 s after its last renewal, and another replica takes it within a retry
// period of 2 s after that.
const (
	leaseDuration = 15 * time.Second
	leaderPause   = leaseDuration + 10*time.Second
)

// TestPausedLeaderStepsDown runs three daemons on one database and apiserver, and freezes
// the leader with SIGSTOP while jobs arrive, for longer than its Lease. Another replica
// must take over, the frozen one must step down (exit) once resumed instead of acting on
// its stale view, and no job may get a second run or pod.
func TestPausedLeaderStepsDown(t *testing.T) {
	sc := newScenario(t, 3)
	model := daemontest.GPUNodes(t, 8, 8)
	// Each job reserves one GPU-hour, so the budget, not the 64 GPUs, bounds admission and
	// the budget invariant is tested where it binds.
	project := daemontest.CreateProject(t, sc.store, "vision", 48, 1000)
	var replicas []*daemontest.Process
	for i := range 3 {
		d := sc.daemon(fmt.Sprintf("replica-%d", i))
		d.Start()
		replicas = append(replicas, d)
	}
	first := sc.waitLeader(replicas, "")

	// Jobs arrive before, during and after the pause, so the frozen leader holds work in
	// flight and the new one dispatches while it is frozen.
	const jobs = 300
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		for i := range jobs {
			spec := oneGPU(model, &jobspec.Simulation{RunSeconds: float64(1 + sc.rng.IntN(3))})
			if _, err := sc.store.SubmitJob(context.Background(), daemontest.NewSubmission(project.ID, 50, spec)); err != nil {
				t.Errorf("submit job %d: %v", i, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	sc.waitFor(time.Minute, "dispatch under way", func() bool { return sc.count(`SELECT count(*) FROM runs`) >= 50 })

	leader := replicas[first]
	if err := leader.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	t.Logf("paused replica-%d (pid %d) with %d runs created", first, leader.PID(), sc.count(`SELECT count(*) FROM runs`))
	second := sc.waitLeader(replicas, sc.identity(leader))
	t.Logf("replica-%d took over %s after the pause", second, time.Since(paused).Round(time.Millisecond))
	time.Sleep(time.Until(paused.Add(leaderPause)))
	if err := leader.Resume(); err != nil {
		t.Fatal(err)
	}

	select {
	case <-leader.Exited():
		t.Logf("replica-%d exited after the resume: %v", first, leader.ExitErr())
	case <-time.After(30 * time.Second):
		t.Errorf("replica-%d still runs 30s after its resume, want it to step down (seed %d)", first, sc.seed)
	}
	<-submitted
	sc.waitFor(2*time.Minute, "every job completed", func() bool {
		return sc.count(`SELECT count(*) FROM jobs WHERE status = 'completed'`) == jobs
	})

	if n := sc.count(`SELECT count(*) FROM runs`); n != jobs {
		t.Errorf("%d runs for %d jobs, want one each (seed %d)", n, jobs, sc.seed)
	}
	created := sc.pods.Created(project.K8sNamespace)
	if len(created) != jobs {
		t.Errorf("pods of %d jobs seen, want %d (seed %d)", len(created), jobs, sc.seed)
	}
	for job, n := range created {
		if n != 1 {
			t.Errorf("job %s: %d pods created, want 1 (seed %d)", job, n, sc.seed)
		}
	}
	requireInvariants(t, sc.seed, sc.system())
}

// waitLeader waits until a replica other than the one named not holds the scenario's
// Lease, and returns its index.
func (sc *scenario) waitLeader(replicas []*daemontest.Process, not string) int {
	sc.t.Helper()
	leader := -1
	sc.waitFor(time.Minute, "a new Lease holder", func() bool {
		holder := sc.leaseHolder()
		if holder == "" || holder == not {
			return false
		}
		for i, d := range replicas {
			if sc.identity(d) == holder {
				leader = i
				return true
			}
		}
		return false
	})
	return leader
}

// leaseHolder returns the holder of the scenario's Lease, or "" when it has none.
func (sc *scenario) leaseHolder() string {
	lease, err := daemontest.Kube.Clientset.CoordinationV1().Leases(sc.leaseNamespace).
		Get(context.Background(), "schedulerd", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return ""
	}
	if err != nil {
		sc.t.Fatalf("read the Lease: %v", err)
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

var identityPattern = regexp.MustCompile(`"identity":"([^"]+)"`)

// identity returns a daemon's Lease identity, which its log names at its first election
// line; "" before that line.
func (sc *scenario) identity(d *daemontest.Process) string {
	log, err := os.ReadFile(d.LogPath)
	if err != nil {
		sc.t.Fatalf("read the daemon log: %v", err)
	}
	match := identityPattern.FindStringSubmatch(string(log))
	if match == nil {
		return ""
	}
	return strings.TrimSpace(match[1])
}
