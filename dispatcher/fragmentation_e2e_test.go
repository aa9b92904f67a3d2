package dispatcher_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/store"
)

// fragmentedTimeout is the unschedulable timeout of the fragmentation tests, short enough
// that several timeouts pass while a test waits.
const fragmentedTimeout = time.Second

// A 4-GPU job on two 4-GPU nodes that each have 2 GPUs in use by another workload's pod
// fits the sum of free GPUs but no node. Its pod waits past the unschedulable timeout
// without a counted preemption, a new run or a new pod, and starts once one node's GPUs
// are free. A free node of another model, which the pod may not use, changes nothing.
func TestFragmentedJobWaitsForGPUs(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: fragmentedTimeout,
		Configure: func(cfg *daemon.Config) { cfg.Registry = reg }})
	model := uniqueModel()
	first, second := gpuNode(t, model, 4, 64000), gpuNode(t, model, 4, 64000)
	blocker := gpuBlocker(t, first, 2)
	gpuBlocker(t, second, 2)
	gpuNode(t, uniqueModel(), 8, 64000)
	h.Project("vision", 100, 10)
	spec := gpuSpec(model, 4, nil)
	maxPreemptions := 1
	spec.MaxPreemptions = &maxPreemptions

	job := h.Submit("vision", 50, spec)
	waiting := waitGPUWaitReason(t, h, job.ID)
	run := h.Runs(job.ID)[0]
	pod, err := podOf(t, run)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wait reason: %s", *waiting.WaitReason)
	// Several timeouts and resyncs pass, each of which would have requeued the job before.
	time.Sleep(5 * fragmentedTimeout)

	got, _ := h.Store.GetJob(context.Background(), job.ID)
	if got.Status != store.JobRunning {
		t.Errorf("job %s (error %v), want running while its pod waits", got.Status, got.ErrorMessage)
	}
	if got.Preemptions != 0 {
		t.Errorf("job has %d preemptions, want 0", got.Preemptions)
	}
	if got.RunCount != 1 {
		t.Errorf("job has %d runs, want 1: the pod waits instead of being deleted", got.RunCount)
	}
	again, err := podOf(t, run)
	if err != nil {
		t.Fatalf("the waiting pod is gone: %v", err)
	}
	if again.UID != pod.UID {
		t.Errorf("pod %s was created again", run.PodName)
	}
	if n := gpuFragmentationWaits(t, reg); n != 1 {
		t.Errorf("%v fragmentation waits counted, want 1 for the one run", n)
	}

	deletePodNow(t, blocker.Namespace, blocker.Name)
	started := waitRun(t, h, job.ID, 1, "running", runStatus(store.RunRunning))
	if started.WorkerNode == nil || *started.WorkerNode != first {
		t.Errorf("run started on %v, want %s, the node whose GPUs were freed", started.WorkerNode, first)
	}
	got, _ = h.Store.GetJob(context.Background(), job.ID)
	if got.WaitReason != nil {
		t.Errorf("running job keeps the wait reason %q after its start", *got.WaitReason)
	}
}

// A pod that waits for GPUs in use ends at the unschedulable timeout, counted, once no node
// could hold it: here the only 4-GPU node of the model is cordoned and the other has 2 GPUs.
// kube-scheduler still reports only GPU shortages and a cordoned node, so the node cache
// makes the difference.
func TestPodNoNodeCanHoldCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: fragmentedTimeout,
		Configure: func(cfg *daemon.Config) { cfg.Registry = reg }})
	model := uniqueModel()
	large := gpuNode(t, model, 4, 64000)
	gpuNode(t, model, 2, 64000)
	gpuBlocker(t, large, 2)
	h.Project("vision", 100, 10)
	spec := gpuSpec(model, 4, nil)
	maxPreemptions := 1
	spec.MaxPreemptions = &maxPreemptions

	job := h.Submit("vision", 50, spec)
	waitGPUWaitReason(t, h, job.ID)
	time.Sleep(3 * fragmentedTimeout)
	if got, _ := h.Store.GetJob(context.Background(), job.ID); got.Status != store.JobRunning {
		t.Fatalf("job %s (error %v) while the 4-GPU node could hold its pod, want running",
			got.Status, got.ErrorMessage)
	}

	setCordoned(t, large, true)
	got := h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))
	if got.Preemptions != 1 || got.RunCount != 1 {
		t.Errorf("preemptions %d, runs %d; want 1 and 1", got.Preemptions, got.RunCount)
	}
	wantPrefix := "preempted 1 times (max_preemptions 1): unschedulable for "
	if got.ErrorMessage == nil || !strings.HasPrefix(*got.ErrorMessage, wantPrefix) {
		t.Errorf("error message %v, want it to start with %q", got.ErrorMessage, wantPrefix)
	}
	wantNote := "; counted: no node of model " + model + " that takes new pods is large enough for the pod"
	if got.ErrorMessage == nil || !strings.HasSuffix(*got.ErrorMessage, wantNote) {
		t.Errorf("error message %v, want it to end with %q", got.ErrorMessage, wantNote)
	}
	if n := gpuFragmentationWaits(t, reg); n != 1 {
		t.Errorf("%v fragmentation waits counted, want 1 from before the cordon", n)
	}
}

// A pod that waits for GPUs in use ends, counted, once it has been unschedulable for the GPU
// wait timeout, although a node could still hold it.
func TestGPUWaitEndsAtTimeout(t *testing.T) {
	reg := prometheus.NewRegistry()
	const gpuWaitTimeout = 4 * time.Second
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: fragmentedTimeout,
		Configure: func(cfg *daemon.Config) {
			cfg.Registry = reg
			cfg.Dispatcher.GPUWaitTimeout = gpuWaitTimeout
		}})
	model := uniqueModel()
	node := gpuNode(t, model, 4, 64000)
	gpuBlocker(t, node, 2)
	h.Project("vision", 100, 10)
	spec := gpuSpec(model, 4, nil)
	maxPreemptions := 1
	spec.MaxPreemptions = &maxPreemptions

	job := h.Submit("vision", 50, spec)
	waitGPUWaitReason(t, h, job.ID)
	got := h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))

	if got.Preemptions != 1 {
		t.Errorf("job has %d preemptions, want 1", got.Preemptions)
	}
	if got.RunCount != 1 {
		t.Errorf("job has %d runs, want 1", got.RunCount)
	}
	wantPrefix := "preempted 1 times (max_preemptions 1): unschedulable for "
	if got.ErrorMessage == nil || !strings.HasPrefix(*got.ErrorMessage, wantPrefix) {
		t.Errorf("error message %v, want it to start with %q", got.ErrorMessage, wantPrefix)
	}
	wantNote := "for GPUs that other pods use, the GPU wait timeout (4s)"
	if got.ErrorMessage == nil || !strings.HasSuffix(*got.ErrorMessage, wantNote) {
		t.Errorf("error message %v, want it to end with %q", got.ErrorMessage, wantNote)
	}
	if n := gpuFragmentationWaits(t, reg); n != 1 {
		t.Errorf("%v fragmentation waits counted, want 1 before the timeout", n)
	}
}

// waitGPUWaitReason waits until the running job's pod waits for GPUs that other pods use.
func waitGPUWaitReason(t *testing.T, h *daemontest.Harness, jobID uuid.UUID) store.Job {
	t.Helper()
	return h.WaitJob(jobID, wait, "pod waits for GPUs", func(j store.Job) bool {
		return j.Status == store.JobRunning && j.WaitReason != nil &&
			strings.HasPrefix(*j.WaitReason, store.ReasonPodWaitsForGPUs+": ")
	})
}

func deletePodNow(t *testing.T, namespace, name string) {
	t.Helper()
	zero := int64(0)
	err := daemontest.Kube.Clientset.CoreV1().Pods(namespace).Delete(context.Background(), name,
		metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil {
		t.Fatal(err)
	}
}

// gpuFragmentationWaits returns schedulerd_gpu_fragmentation_waits_total, and fails the test
// when the series is missing.
func gpuFragmentationWaits(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "schedulerd_gpu_fragmentation_waits_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatal("schedulerd_gpu_fragmentation_waits_total is not registered")
	return 0
}
