//go:build reliability

package reliability_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/jobspec"
)

// Timing of the long outage. The daemon's Lease lasts 15 s (the default of `schedulerd
// run`), and the outage lasts well beyond it. Short jobs end during the outage, long ones
// after the restart.
const (
	outage          = 40 * time.Second
	shortRunSeconds = 10 // plus up to 10 at random
	longRunSeconds  = 60
)

// simJob is a submitted job with its simulated run time.
type simJob struct {
	id         uuid.UUID
	runSeconds int
}

// TestDaemonOutageAdoptsRunningPods kills the daemon (SIGKILL, so its Lease is not
// released) while 24 pods run, and keeps it down past its Lease. Meanwhile 10 pods
// succeed, 2 fail and 2 are deleted; 10 keep running. The restart must adopt the running
// pods, record the finished ones with the GPU-hours their pods report, retry the failed
// jobs, requeue the jobs whose pods were deleted, and delete no running pod.
func TestDaemonOutageAdoptsRunningPods(t *testing.T) {
	sc := newScenario(t, 2)
	model := daemontest.GPUNodes(t, 4, 8)
	project := daemontest.CreateProject(t, sc.store, "vision", 1e6, 100)
	d := sc.daemon("schedulerd")
	d.Start()

	var finishing, running, failing, deleted []simJob
	submit := func(seconds, exitCode int) simJob {
		spec := oneGPU(model, &jobspec.Simulation{RunSeconds: float64(seconds), ExitCode: exitCode})
		spec.MaxAttempts = 2
		return simJob{daemontest.SubmitJob(t, sc.store, project.ID, 50, spec).ID, seconds}
	}
	for range 10 {
		finishing = append(finishing, submit(shortRunSeconds+sc.rng.IntN(11), 0))
		running = append(running, submit(longRunSeconds, 0))
	}
	for range 2 {
		failing = append(failing, submit(5, 1))
		deleted = append(deleted, submit(25, 0))
	}
	const jobs = 24
	sc.waitFor(time.Minute, "every job running", func() bool {
		return sc.count(`SELECT count(*) FROM runs WHERE status = 'running'`) == jobs
	})

	d.Kill()
	t.Logf("daemon killed; down for %s", outage)
	for _, job := range deleted {
		sc.deletePod(project.K8sNamespace, job.id)
	}
	time.Sleep(outage)
	if n := sc.count(`SELECT count(*) FROM runs WHERE status <> 'running'`); n != 0 {
		t.Fatalf("%d runs changed while the daemon was down (seed %d)", n, sc.seed)
	}
	if got := countPods(t, project.K8sNamespace, corev1.PodSucceeded); got != len(finishing) {
		t.Fatalf("%d pods succeeded during the outage, want %d (seed %d)", got, len(finishing), sc.seed)
	}
	d.Start()

	sc.waitFor(2*time.Minute, "every job ended", func() bool {
		return sc.count(`SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed')`) == jobs
	})
	// The dispatcher deletes a pod once its run's end is recorded; a running pod it must
	// leave. The test deleted two itself.
	if n := sc.pods.LiveDeletions(project.K8sNamespace); n != len(deleted) {
		t.Errorf("%d running pods deleted, want only the %d the test deleted (seed %d)", n, len(deleted), sc.seed)
	}
	requireRunHours(t, sc, append(finishing, running...))
	sc.requireRuns(failing, "failed", "failed", "failed")
	sc.requireRuns(deleted, "completed", "preempted", "completed")
	requireInvariants(t, sc.seed, sc.system())
}

// requireRuns checks each job's status and the statuses of its runs, in order.
func (sc *scenario) requireRuns(jobs []simJob, jobStatus string, runStatuses ...string) {
	sc.t.Helper()
	for _, job := range jobs {
		var status string
		var runs []string
		err := sc.store.Pool().QueryRow(context.Background(), `
SELECT j.status::text, array_agg(r.status::text ORDER BY r.run_number)
FROM jobs j JOIN runs r ON r.job_id = j.id WHERE j.id = $1 GROUP BY j.status`, job.id).Scan(&status, &runs)
		if err != nil {
			sc.t.Fatalf("job %s: %v", job.id, err)
		}
		if status != jobStatus || strings.Join(runs, ",") != strings.Join(runStatuses, ",") {
			sc.t.Errorf("job %s is %s with runs %v, want %s with runs %v (seed %d)",
				job.id, status, runs, jobStatus, runStatuses, sc.seed)
		}
	}
}

// deletePod deletes the pod of a job's first run at once, as an eviction or an operator
// might while no daemon watches.
func (sc *scenario) deletePod(namespace string, job uuid.UUID) {
	sc.t.Helper()
	pods := daemontest.Kube.Clientset.CoreV1().Pods(namespace)
	list, err := pods.List(context.Background(), metav1.ListOptions{LabelSelector: dispatcher.LabelJobID + "=" + job.String()})
	if err != nil || len(list.Items) != 1 {
		sc.t.Fatalf("find the pod of job %s: %d pods, error %v", job, len(list.Items), err)
	}
	grace := int64(0)
	if err := pods.Delete(context.Background(), list.Items[0].Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		sc.t.Fatalf("delete the pod of job %s: %v", job, err)
	}
}

// requireRunHours checks that each job's one run used its simulated run time on one GPU.
func requireRunHours(t *testing.T, sc *scenario, jobs []simJob) {
	t.Helper()
	for _, job := range jobs {
		var used float64
		err := sc.store.Pool().QueryRow(context.Background(),
			`SELECT gpu_hours_used::float8 FROM runs WHERE job_id = $1`, job.id).Scan(&used)
		if err != nil {
			t.Fatalf("job %s: %v", job.id, err)
		}
		want := float64(job.runSeconds) / 3600
		if math.Abs(used-want) > 1e-6 {
			t.Errorf("job %s: %.6f GPU-hours, want %.6f (%d s on one GPU) (seed %d)",
				job.id, used, want, job.runSeconds, sc.seed)
		}
	}
}

// oneGPU is the spec of a job on one GPU of model.
func oneGPU(model string, sim *jobspec.Simulation) jobspec.Spec {
	return jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 3600, Simulation: sim,
		Resources: jobspec.Resources{GPUs: 1, GPUModels: []string{model}, CPUMilli: 100, MemoryMiB: 64}}
}

// countPods counts the pods of namespace in phase.
func countPods(t *testing.T, namespace string, phase corev1.PodPhase) int {
	t.Helper()
	list, err := daemontest.Kube.Clientset.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list pods of %s: %v", namespace, err)
	}
	n := 0
	for _, pod := range list.Items {
		if pod.Status.Phase == phase {
			n++
		}
	}
	return n
}
