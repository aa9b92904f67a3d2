//go:build reliability

package reliability_test

import (
	"context"
	"testing"
	"time"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/kubetest"
	"github.com/schedulerd/schedulerd/jobspec"
)

// apiserverOutage is how long the apiserver stays down.
const apiserverOutage = time.Minute

// TestAPIServerOutageMissesNoPodEnd stops kube-apiserver for a minute while 30 pods run,
// then starts it again on the same port and etcd. Half of the pods reach their end during
// the outage (KWOK records it once the apiserver is back), half after. The daemon must
// keep running, resume its watches and record every end with the hours the pod reports.
//
// Leader election is off here: with it on, a replica that cannot renew its Lease for the
// renew deadline (10 s) exits by design, and its supervisor restarts it.
func TestAPIServerOutageMissesNoPodEnd(t *testing.T) {
	if daemontest.Kube.Dir == "" {
		t.Skipf("the cluster comes from %s, so this test cannot restart its apiserver", kubetest.KubeconfigEnv)
	}
	sc := newScenario(t, 5)
	model := daemontest.GPUNodes(t, 4, 8)
	project := daemontest.CreateProject(t, sc.store, "vision", 1e6, 100)
	d := sc.daemon("schedulerd", "SCHEDULERD_LEADER_ELECTION=false")
	d.Start()

	var jobs []simJob
	for i := range 30 {
		seconds := 90
		if i%2 == 0 {
			seconds = 10 + sc.rng.IntN(30)
		}
		job := daemontest.SubmitJob(t, sc.store, project.ID, 50, oneGPU(model, &jobspec.Simulation{RunSeconds: float64(seconds)}))
		jobs = append(jobs, simJob{job.ID, seconds})
	}
	sc.waitFor(time.Minute, "every job running", func() bool {
		return sc.count(`SELECT count(*) FROM runs WHERE status = 'running'`) == len(jobs)
	})

	args, err := daemontest.Kube.StopAPIServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver stopped for %s", apiserverOutage)
	time.Sleep(apiserverOutage)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := daemontest.Kube.StartAPIServer(ctx, args); err != nil {
		t.Fatal(err)
	}

	sc.waitFor(2*time.Minute, "every job completed", func() bool {
		return sc.count(`SELECT count(*) FROM jobs WHERE status = 'completed'`) == len(jobs)
	})
	select {
	case <-d.Exited():
		t.Errorf("the daemon exited: %v, want it to outlast the apiserver outage (seed %d)", d.ExitErr(), sc.seed)
	default:
	}
	if n := sc.count(`SELECT count(*) FROM runs`); n != len(jobs) {
		t.Errorf("%d runs for %d jobs, want one each (seed %d)", n, len(jobs), sc.seed)
	}
	if n := sc.pods.LiveDeletions(project.K8sNamespace); n != 0 {
		t.Errorf("%d running pods deleted, want none (seed %d)", n, sc.seed)
	}
	requireRunHours(t, sc, jobs)
	requireInvariants(t, sc.seed, sc.system())
}
