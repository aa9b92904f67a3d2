package dispatcher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/scheduler"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

const wait = 60 * time.Second

// uniqueModel returns a GPU model name no other test uses, so tests sharing the cluster
// never compete for nodes.
func uniqueModel() string { return "M" + strings.ToUpper(uuid.NewString()[:8]) }

// gpuNode creates a KWOK node and waits until it is Ready; it is deleted when the test ends.
func gpuNode(t *testing.T, model string, gpus int, cpuMilli int64) string {
	t.Helper()
	ctx := context.Background()
	name := "node-" + strings.ToLower(model) + "-" + uuid.NewString()[:4]
	if _, err := daemontest.Kube.CreateGPUNode(ctx, name, model, gpus, cpuMilli, 65536); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := daemontest.Kube.WaitNodesReady(waitCtx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

func gpuSpec(model string, gpus int, sim *jobspec.Simulation) jobspec.Spec {
	return jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 3600, Simulation: sim,
		Resources: jobspec.Resources{GPUs: gpus, GPUModels: []string{model}, CPUMilli: 1000, MemoryMiB: 1024}}
}

func podOf(t *testing.T, run store.Run) (*corev1.Pod, error) {
	t.Helper()
	return daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace).Get(context.Background(), run.PodName, metav1.GetOptions{})
}

// waitRun polls the job's run number n until cond holds.
func waitRun(t *testing.T, h *daemontest.Harness, job uuid.UUID, n int, what string, cond func(store.Run) bool) store.Run {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		runs := h.Runs(job)
		if len(runs) >= n && cond(runs[n-1]) {
			return runs[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %d of job %s: %s not reached within %s (runs: %d)", n, job, what, wait, len(runs))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func runStatus(want store.RunStatus) func(store.Run) bool {
	return func(r store.Run) bool { return r.Status == want }
}

func waitPodGone(t *testing.T, run store.Run) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		_, err := podOf(t, run)
		if apierrors.IsNotFound(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s still exists %s after its run ended (err %v)", run.PodName, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPodSucceeds(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)

	job := h.Submit("vision", 50, gpuSpec(model, 2, &jobspec.Simulation{RunSeconds: 2}))
	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))

	runs := h.Runs(job.ID)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	run := runs[0]
	if run.Status != store.RunCompleted || run.StartedAt == nil || run.WorkerNode == nil {
		t.Fatalf("run %+v, want completed with a start time and node", run)
	}
	// Two GPUs for 2 s: the simulated container ran exactly 2 s.
	if want := 2 * 2.0 / 3600; math.Abs(run.GPUHoursUsed-want) > 1e-6 {
		t.Errorf("run used %.6f GPU-hours, want %.6f", run.GPUHoursUsed, want)
	}
	quota, _ := h.Store.GetQuota(context.Background(), "vision")
	if quota.GPUHoursUsed < run.GPUHoursUsed-1e-4 || quota.GPUHoursUsed > run.GPUHoursUsed+1e-4 {
		t.Errorf("quota used %.4f, want the run's %.4f", quota.GPUHoursUsed, run.GPUHoursUsed)
	}
	if quota.CurrentConcurrent != 0 || quota.GPUHoursReserved != 0 {
		t.Errorf("quota still holds %d jobs and %.4f GPU-hours", quota.CurrentConcurrent, quota.GPUHoursReserved)
	}
	waitPodGone(t, run)
}

// A pod that finished while no dispatcher ran ends its run as it finished, although its
// job was paused before a dispatcher saw the end. The job is done, and the run's hours stop
// at the container's end rather than when the pause was seen.
func TestPauseAfterUnseenCompletion(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 2, &jobspec.Simulation{RunSeconds: 2}))
	run := waitRun(t, h, job.ID, 1, "running", runStatus(store.RunRunning))
	if err := h.Shutdown(); err != nil {
		t.Fatal(err)
	}

	waitPodPhase(t, run, corev1.PodSucceeded)
	ref := store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}
	if _, err := h.Store.SetJobStatus(context.Background(), ref, store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	again := daemontest.Start(t, daemontest.Options{Store: h.Store})
	again.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))

	ended := again.Runs(job.ID)[0]
	if ended.Status != store.RunCompleted {
		t.Errorf("run %s, want completed", ended.Status)
	}
	// Two GPUs for the simulated container's 2 s.
	if want := 2 * 2.0 / 3600; math.Abs(ended.GPUHoursUsed-want) > 1e-6 {
		t.Errorf("run used %.6f GPU-hours, want %.6f", ended.GPUHoursUsed, want)
	}
}

// waitPodPhase polls the run's pod until it reaches phase.
func waitPodPhase(t *testing.T, run store.Run, phase corev1.PodPhase) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pod, err := podOf(t, run)
		if err == nil && pod.Status.Phase == phase {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not %s within %s (err %v)", run.PodName, phase, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A project's namespace deleted after the dispatcher created it holds new pods back while
// it terminates, and is created again once it is gone. The job runs then: it neither
// fails for a Forbidden creation nor waits forever for a namespace the dispatcher thinks
// exists.
func TestDeletedNamespaceCreatedAgain(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	project := h.Project("vision", 100, 10)
	first := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))
	h.WaitJob(first.ID, wait, "completed", daemontest.Status(store.JobCompleted))

	ctx := context.Background()
	namespaces := daemontest.Kube.Clientset.CoreV1().Namespaces()
	if err := namespaces.Delete(ctx, project.K8sNamespace, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	second := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))
	run := waitRun(t, h, second.ID, 1, "admitted", func(store.Run) bool { return true })
	time.Sleep(2 * time.Second) // a few tries of the pod's creation, refused while terminating

	if got := h.Runs(second.ID)[0]; got.Status != store.RunPending {
		t.Fatalf("run %s while its namespace terminates, want pending", got.Status)
	}
	// No controller manager runs here, so the test removes the namespace's finalizer.
	ns, err := namespaces.Get(ctx, project.K8sNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Spec.Finalizers = nil
	if _, err := namespaces.Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.WaitJob(second.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	if got := h.Runs(second.ID); len(got) != 1 || got[0].ID != run.ID {
		t.Errorf("%d runs, want the one admitted while the namespace terminated", len(got))
	}
}

// A paused job's run stays live until its pod is gone: the checkpoint its program saves on
// SIGTERM is recorded and becomes the run's last, and the job cannot be resumed while the
// old container still stops. A finalizer holds the pod in its grace period here.
func TestStoppingRunKeepsCheckpoint(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	ctx := context.Background()
	pods := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace)
	hold := []byte(`{"metadata":{"finalizers":["test.schedulerd.io/hold"]}}`)
	if _, err := pods.Patch(ctx, run.PodName, types.MergePatchType, hold, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	ref := store.JobRef{ID: job.ID, CreatedAt: job.CreatedAt}
	if _, err := h.Store.SetJobStatus(ctx, ref, store.JobRunning, store.JobPaused, time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	waitPodDeleting(t, run)
	if got := h.Runs(job.ID)[0]; got.Status != store.RunRunning || got.StopStatus == nil || *got.StopStatus != store.RunCancelled {
		t.Fatalf("run %s with stop %v while its pod stops, want running with a cancelled stop", got.Status, got.StopStatus)
	}
	step := int64(500)
	_, err := h.Store.RecordArtifact(ctx, store.NewArtifact{RunID: run.ID, Type: "checkpoint",
		URI: "s3://ckpt/job/sigterm", Checksum: strings.Repeat("ab", 32), SizeBytes: 1, Step: &step})
	if err != nil {
		t.Fatalf("record the SIGTERM checkpoint: %v", err)
	}
	if _, err := h.Store.SetJobStatus(ctx, ref, store.JobPaused, store.JobQueued, time.Now(), nil); !errors.Is(err, store.ErrRunLive) {
		t.Errorf("resume while the pod stops: %v, want ErrRunLive", err)
	}

	release := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := pods.Patch(ctx, run.PodName, types.MergePatchType, release, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	ended := waitRun(t, h, job.ID, 1, "cancelled", runStatus(store.RunCancelled))
	if ended.LastCheckpointURI == nil || *ended.LastCheckpointURI != "s3://ckpt/job/sigterm" {
		t.Errorf("last checkpoint %v, want the one saved on SIGTERM", ended.LastCheckpointURI)
	}
	if _, err := h.Store.SetJobStatus(ctx, ref, store.JobPaused, store.JobQueued, time.Now(), nil); err != nil {
		t.Errorf("resume once the pod is gone: %v", err)
	}
}

// waitPodDeleting polls the run's pod until its deletion has been requested.
func waitPodDeleting(t *testing.T, run store.Run) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		pod, err := podOf(t, run)
		if err == nil && pod.DeletionTimestamp != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod %s not being deleted within %s (err %v)", run.PodName, wait, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestOOMKilledUsesAttempts(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)

	spec := gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1, ExitCode: 137, Reason: "OOMKilled"})
	spec.MaxAttempts = 2
	job := h.Submit("vision", 50, spec)
	got := h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))

	if got.Attempts != 2 || got.RunCount != 2 {
		t.Errorf("attempts %d, runs %d; want 2 and 2", got.Attempts, got.RunCount)
	}
	if got.ErrorMessage == nil || *got.ErrorMessage != "OOMKilled (exit code 137)" {
		t.Errorf("error message %v, want OOMKilled (exit code 137)", got.ErrorMessage)
	}
	for _, run := range h.Runs(job.ID) {
		if run.Status != store.RunFailed || run.ExitCode == nil || *run.ExitCode != 137 {
			t.Errorf("run %d: %s exit %v, want failed with 137", run.RunNumber, run.Status, run.ExitCode)
		}
	}
}

// runningJob submits a job that runs until stopped and waits for its first run to run.
func runningJob(t *testing.T, h *daemontest.Harness, model string) (store.Job, store.Run) {
	t.Helper()
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))
	run := waitRun(t, h, job.ID, 1, "running", runStatus(store.RunRunning))
	return job, run
}

func setCheckpoint(t *testing.T, h *daemontest.Harness, run store.Run, uri string) {
	t.Helper()
	_, err := h.Store.Pool().Exec(context.Background(),
		`UPDATE runs SET last_checkpoint_uri = $2, last_checkpoint_step = 100 WHERE id = $1`, run.ID, uri)
	if err != nil {
		t.Fatal(err)
	}
}

// expectResumed checks that the job's second run is running and was given the checkpoint,
// and that the job's preemption count is preemptions.
func expectResumed(t *testing.T, h *daemontest.Harness, job store.Job, checkpoint, reason string, preemptions int) {
	t.Helper()
	second := waitRun(t, h, job.ID, 2, "running", runStatus(store.RunRunning))
	first := h.Runs(job.ID)[0]
	if first.Status != store.RunPreempted || first.EndReason == nil || !strings.Contains(*first.EndReason, reason) {
		t.Errorf("first run %s with reason %v, want preempted with %q", first.Status, first.EndReason, reason)
	}
	got, _ := h.Store.GetJob(context.Background(), job.ID)
	if got.Attempts != 0 {
		t.Errorf("job used %d attempts, want 0 (preemption is free)", got.Attempts)
	}
	if got.Preemptions != preemptions {
		t.Errorf("job has %d preemptions, want %d", got.Preemptions, preemptions)
	}
	pod, err := podOf(t, second)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Annotations[dispatcher.AnnotationResumeFrom] != checkpoint {
		t.Errorf("second pod resumes from %q, want %q", pod.Annotations[dispatcher.AnnotationResumeFrom], checkpoint)
	}
}

func TestEvictionRequeuesFromCheckpoint(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	setCheckpoint(t, h, run, "s3://ckpt/job/step-100")

	evictPod(t, run)
	expectResumed(t, h, job, "s3://ckpt/job/step-100", "EvictionByEvictionAPI", 1)
}

func TestDeletedPodPreempts(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	setCheckpoint(t, h, run, "s3://ckpt/job/step-7")

	err := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace).Delete(context.Background(), run.PodName, metav1.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectResumed(t, h, job, "s3://ckpt/job/step-7", "pod deleted", 1)
}

// A run on a deleted node ends preempted, and the preemption does not count toward the
// job's max_preemptions, because the job did not cause the node's loss.
func TestLostNodePreempts(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	first := gpuNode(t, model, 8, 64000)
	job, run := runningJob(t, h, model)
	if *run.WorkerNode != first {
		t.Fatalf("run on %s, want %s", *run.WorkerNode, first)
	}
	setCheckpoint(t, h, run, "s3://ckpt/job/step-9")
	gpuNode(t, model, 8, 64000)

	if err := daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), first, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expectResumed(t, h, job, "s3://ckpt/job/step-9", "node "+first+" lost", 0)
}

// A job whose node is lost and that no other node can hold waits as too large: it is not
// admitted again on the lost node's GPUs before the capacity count drops them.
func TestLostNodeJobNoLongerFits(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	big := gpuNode(t, model, 16, 64000)
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 16, nil))
	waitRun(t, h, job.ID, 1, "running", runStatus(store.RunRunning))

	if err := daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), big, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := h.WaitJob(job.ID, wait, "queued as too large", func(j store.Job) bool {
		return j.Status == store.JobQueued && j.WaitReason != nil && *j.WaitReason == scheduler.ReasonTooLarge
	})
	time.Sleep(2 * time.Second) // a few dequeues
	if runs := h.Runs(job.ID); len(runs) != 1 {
		t.Errorf("%d runs, want 1: the job no longer fits any node", len(runs))
	}
	if got.RunCount != 1 {
		t.Errorf("run count %d, want 1", got.RunCount)
	}
}

// A node that the dispatcher's node watch has not delivered yet, as can happen for a node
// that has just joined, is not lost: ending its runs would force-delete live pods. This
// dispatcher never starts its informers, so its cache lacks every node.
func TestNodeMissingFromCacheConfirmedWithAPI(t *testing.T) {
	node := gpuNode(t, uniqueModel(), 8, 64000)
	d := dispatcher.New(daemontest.Kube.Clientset, nil, dispatcher.Config{})
	ctx := context.Background()

	cases := []struct {
		node string
		want bool
	}{{node, false}, {node + "-never-joined", true}, {"", false}}
	for _, c := range cases {
		gone, err := d.NodeGone(ctx, c.node)
		if err != nil {
			t.Errorf("NodeGone(%q): %v", c.node, err)
		}
		if gone != c.want {
			t.Errorf("NodeGone(%q) = %v, want %v", c.node, gone, c.want)
		}
	}
}

// A container in image pull back-off fails its run, without a retry, once it has waited the
// grace since the dispatcher saw it wait, and not before: the kubelet's own retries may pull
// the image meanwhile.
func TestImagePullFailureFailsAfterGrace(t *testing.T) {
	const grace = 5 * time.Second
	h := daemontest.Start(t, daemontest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Dispatcher.ImagePullGrace = grace
	}})
	model := uniqueModel()
	node := unmanagedNode(t, model)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))

	run := waitRun(t, h, job.ID, 1, "pod created", func(r store.Run) bool { return r.PodCreatedAt != nil })
	pod := waitBound(t, run, node)
	// This node has no kubelet, so the test writes the status one would. Pod times have
	// whole seconds.
	started := metav1.NewTime(time.Now().Truncate(time.Second))
	pod.Status.Phase = corev1.PodPending
	pod.Status.StartTime = &started
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "train", Image: "trainer:1",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "pull access denied"}}}}
	if _, err := daemontest.Kube.Clientset.CoreV1().Pods(run.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	got := h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))
	if got.RunCount != 1 {
		t.Errorf("%d runs, want 1: an image pull failure is not retried", got.RunCount)
	}
	ended := h.Runs(job.ID)[0]
	if ended.GPUHoursUsed != 0 {
		t.Errorf("run used %v GPU-hours, want 0", ended.GPUHoursUsed)
	}
	if ended.EndReason == nil {
		t.Error("run ended without a reason, want ImagePullBackOff for the time it waited")
	} else if !strings.HasPrefix(*ended.EndReason, "ImagePullBackOff for ") {
		t.Errorf("run ended with reason %q, want ImagePullBackOff for the time it waited", *ended.EndReason)
	}
	if ended.CompletedAt == nil || ended.CompletedAt.Sub(started.Time) < grace {
		t.Errorf("run ended at %v, want %s or more after the pod's start %s", ended.CompletedAt, grace, started.Time)
	}
}

// unmanagedNode creates a Ready GPU node that KWOK does not simulate, so that its pods stay
// as the test sets them.
func unmanagedNode(t *testing.T, model string) string {
	t.Helper()
	name := "manual-" + strings.ToLower(model)
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("64Gi"),
		corev1.ResourcePods: resource.MustParse("110"), dispatcher.GPUResource: resource.MustParse("8"),
		dispatcher.GPUMilliResource: resource.MustParse("8000"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{dispatcher.GPUModelLabel: model}},
		Status: corev1.NodeStatus{Capacity: res, Allocatable: res, Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}},
	}
	if _, err := daemontest.Kube.Clientset.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func waitBound(t *testing.T, run store.Run, node string) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pod, err := daemontest.Kube.WaitPod(ctx, run.Namespace, run.PodName, func(p *corev1.Pod) (bool, error) {
		return p.Spec.NodeName == node, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestUnschedulablePodRequeued(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: 2 * time.Second,
		Configure: func(cfg *daemon.Config) { cfg.Registry = reg }})
	model := uniqueModel()
	node := gpuNode(t, model, 8, 64000)
	// Another workload's pod holds all the node's CPU: admission counts the node's size, and
	// kube-scheduler can neither place the job's pod nor preempt a pod of higher priority. A
	// pod that lacks only GPUs in use would wait instead (TestFragmentedJobWaitsForGPUs).
	fillNodeCPU(t, node, 64000)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, nil))

	first := waitRun(t, h, job.ID, 1, "ended", runStatus(store.RunPreempted))
	if first.EndReason == nil || !strings.HasPrefix(*first.EndReason, "unschedulable for") {
		t.Errorf("first run ended with %v, want unschedulable", first.EndReason)
	}
	if first.GPUHoursUsed != 0 {
		t.Errorf("a pod that never ran used %v GPU-hours", first.GPUHoursUsed)
	}
	waitRun(t, h, job.ID, 2, "admitted again", func(store.Run) bool { return true })
	got, _ := h.Store.GetJob(context.Background(), job.ID)
	if got.Attempts != 0 {
		t.Errorf("job used %d attempts, want 0", got.Attempts)
	}
	waitPodGone(t, first)

	// Once the CPU is free a later run starts: the job's first start, whose wait counts.
	deletePodNow(t, metav1.NamespaceDefault, "filler-"+node)
	h.WaitJob(job.ID, wait, "started", func(j store.Job) bool { return j.StartedAt != nil })
	deadline := time.Now().Add(5 * time.Second)
	for submitToRunningCount(t, reg) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := submitToRunningCount(t, reg); got != 1 {
		t.Errorf("%d submit-to-running observations, want 1: the start of a later run is the job's first", got)
	}
}

// gpuBlocker creates a pod of another workload on node that requests gpus whole GPUs, with
// a system priority that no schedulerd pod may preempt. It is deleted when the test ends.
func gpuBlocker(t *testing.T, node string, gpus int64) *corev1.Pod {
	t.Helper()
	gpu := corev1.ResourceList{
		dispatcher.GPUResource:      *resource.NewQuantity(gpus, resource.DecimalSI),
		dispatcher.GPUMilliResource: *resource.NewQuantity(gpus*1000, resource.DecimalSI),
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "blocker-" + node, Namespace: metav1.NamespaceSystem},
		Spec: corev1.PodSpec{NodeName: node, PriorityClassName: "system-cluster-critical",
			Containers: []corev1.Container{{Name: "main", Image: "other:1",
				Resources: corev1.ResourceRequirements{Requests: gpu, Limits: gpu}}}},
	}
	pods := daemontest.Kube.Clientset.CoreV1().Pods(pod.Namespace)
	created, err := pods.Create(context.Background(), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = pods.Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	return created
}

// A pod that stays unschedulable counts as a preemption at each timeout, and the one that
// reaches max_preemptions fails the job, under its own cause in the runs-ended metric.
func TestUnschedulableJobFailsAtPreemptionLimit(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := daemontest.Start(t, daemontest.Options{UnschedulableTimeout: 2 * time.Second,
		Configure: func(cfg *daemon.Config) { cfg.Registry = reg }})
	model := uniqueModel()
	fillNodeCPU(t, gpuNode(t, model, 8, 64000), 64000)
	h.Project("vision", 100, 10)
	spec := gpuSpec(model, 1, nil)
	maxPreemptions := 2
	spec.MaxPreemptions = &maxPreemptions

	job := h.Submit("vision", 50, spec)
	got := h.WaitJob(job.ID, wait, "failed", daemontest.Status(store.JobFailed))

	if got.Preemptions != 2 || got.RunCount != 2 || got.Attempts != 0 {
		t.Errorf("preemptions %d, runs %d, attempts %d; want 2, 2 and 0", got.Preemptions, got.RunCount, got.Attempts)
	}
	wantPrefix := "preempted 2 times (max_preemptions 2): unschedulable for "
	if got.ErrorMessage == nil || !strings.HasPrefix(*got.ErrorMessage, wantPrefix) {
		t.Errorf("error message %v, want it to start with %q", got.ErrorMessage, wantPrefix)
	}
	if got.CompletedAt == nil {
		t.Error("completed_at not set on the failed job")
	}
	// The dispatcher counts the run's end just after it commits the job's failure.
	deadline := time.Now().Add(5 * time.Second)
	for runsEnded(t, reg, metrics.CausePreemptionLimit) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runsEnded(t, reg, metrics.CausePreemptionLimit); n != 1 {
		t.Errorf("%v runs ended with cause %s, want 1", n, metrics.CausePreemptionLimit)
	}
	if n := runsEnded(t, reg, metrics.CauseUnschedulable); n != 1 {
		t.Errorf("%v runs ended with cause %s, want 1: the first run only", n, metrics.CauseUnschedulable)
	}
}

// fillNodeCPU binds a pod that requests cpuMilli of the node's CPU to it, bypassing
// kube-scheduler, so that admission, which counts node sizes, still admits jobs there while
// kube-scheduler cannot place their pods. The pod's priority class is above every job's,
// so that kube-scheduler does not preempt it to make room. Both are deleted when the test
// ends.
func fillNodeCPU(t *testing.T, node string, cpuMilli int64) {
	t.Helper()
	ctx := context.Background()
	name := "filler-" + node
	classes := daemontest.Kube.Clientset.SchedulingV1().PriorityClasses()
	class := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: 1_000_000_000}
	if _, err := classes.Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = classes.Delete(context.Background(), name, metav1.DeleteOptions{}) })

	pods := daemontest.Kube.Clientset.CoreV1().Pods(metav1.NamespaceDefault)
	filler := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, PriorityClassName: name, Containers: []corev1.Container{{
			Name: "filler", Image: "filler:1", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: *resource.NewMilliQuantity(cpuMilli, resource.DecimalSI)}}}}},
	}
	// kube-apiserver's priority admission reads classes from its own informer, which may
	// not hold the class yet and then rejects the pod as Forbidden.
	deadline := time.Now().Add(10 * time.Second)
	_, err := pods.Create(ctx, filler, metav1.CreateOptions{})
	for apierrors.IsForbidden(err) && strings.Contains(err.Error(), "no PriorityClass") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		_, err = pods.Create(ctx, filler, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pods.Delete(context.Background(), name, *metav1.NewDeleteOptions(0)) })
}

// runsEnded returns schedulerd_runs_ended_total for cause.
func runsEnded(t *testing.T, reg *prometheus.Registry, cause string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "schedulerd_runs_ended_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, label := range m.GetLabel() {
				if label.GetName() == "cause" && label.GetValue() == cause {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// submitToRunningCount sums the observations of schedulerd_job_submit_to_running_seconds
// over its tiers.
func submitToRunningCount(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, f := range families {
		if f.GetName() == "schedulerd_job_submit_to_running_seconds" {
			for _, m := range f.GetMetric() {
				count += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return count
}

func TestCordonedModelWaitsForUncordon(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	node := gpuNode(t, model, 8, 64000)
	// The capacity admission reads is recounted from the informer's nodes: see the node
	// counted, then the cordon, before submitting, or the job is admitted on an old count.
	waitCapacity(t, h, model, 8000)
	setCordoned(t, node, true)
	waitCapacity(t, h, model, 0)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))

	waitNoModel(h, job.ID)
	if got, _ := h.Store.GetJob(context.Background(), job.ID); got.Status != store.JobQueued || got.RunCount != 0 {
		t.Fatalf("job %s with %d runs while its model is cordoned, want queued with none", got.Status, got.RunCount)
	}
	setCordoned(t, node, false)
	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))
}

// A model whose nodes all carry a taint the pods do not tolerate has no capacity, so its
// jobs wait in the queue instead of being admitted to wait unschedulable. The pods tolerate
// a nvidia.com/gpu:NoSchedule taint, which the node keeps throughout: the job then runs
// on the node.
func TestTaintedModelWaitsForUntaint(t *testing.T) {
	h := daemontest.Start(t, daemontest.Options{})
	model := uniqueModel()
	first := gpuNode(t, model, 8, 64000)
	second := gpuNode(t, model, 8, 64000)
	gpuTaint := corev1.Taint{Key: string(dispatcher.GPUResource), Value: "present", Effect: corev1.TaintEffectNoSchedule}
	reserved := corev1.Taint{Key: "example.com/reserved", Effect: corev1.TaintEffectNoExecute}
	setTaints(t, first, gpuTaint, reserved)
	setTaints(t, second, gpuTaint)
	waitCapacity(t, h, model, 8000)
	setTaints(t, second, gpuTaint, reserved)
	waitCapacity(t, h, model, 0)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))

	waitNoModel(h, job.ID)
	if got, _ := h.Store.GetJob(context.Background(), job.ID); got.Status != store.JobQueued || got.RunCount != 0 {
		t.Fatalf("job %s with %d runs while its model is tainted, want queued with none", got.Status, got.RunCount)
	}
	setTaints(t, second, gpuTaint)
	waitCapacity(t, h, model, 8000)
	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	if run := h.Runs(job.ID)[0]; run.WorkerNode == nil || *run.WorkerNode != second {
		t.Errorf("run on node %v, want %s, the node with only the nvidia.com/gpu taint", run.WorkerNode, second)
	}
}

// With an extra toleration for dedicated=ml:NoSchedule, nodes tainted so count and take the
// pods. While the node also carries a taint the pods do not tolerate, the job waits in the
// queue. Once that taint goes, the node update makes capacity count again, and the job
// completes on the node with the dedicated taint.
func TestExtraTolerationCountsTaintedModel(t *testing.T) {
	dedicated := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml",
		Effect: corev1.TaintEffectNoSchedule}
	h := daemontest.Start(t, daemontest.Options{Configure: func(c *daemon.Config) {
		c.Dispatcher.PodTolerations = []corev1.Toleration{dedicated}
	}})
	model := uniqueModel()
	node := gpuNode(t, model, 8, 64000)
	// The model gets its capacity row before the taints, so that it can read 0 after them.
	waitCapacity(t, h, model, 8000)
	dedicatedTaint := corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}
	reserved := corev1.Taint{Key: "example.com/reserved", Effect: corev1.TaintEffectNoSchedule}
	setTaints(t, node, dedicatedTaint, reserved)
	waitCapacity(t, h, model, 0)
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))
	waitNoModel(h, job.ID)

	setTaints(t, node, dedicatedTaint)
	waitCapacity(t, h, model, 8000)
	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	run := h.Runs(job.ID)[0]
	if run.WorkerNode == nil || *run.WorkerNode != node {
		t.Errorf("run on node %v, want %s, the node tainted dedicated=ml:NoSchedule", run.WorkerNode, node)
	}
}

// setTaints replaces the taints of node.
func setTaints(t *testing.T, node string, taints ...corev1.Taint) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"taints": taints}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemontest.Kube.Clientset.CoreV1().Nodes().Patch(context.Background(), node,
		types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func setCordoned(t *testing.T, node string, cordoned bool) {
	t.Helper()
	patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, cordoned)
	_, err := daemontest.Kube.Clientset.CoreV1().Nodes().Patch(context.Background(), node,
		types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// waitNoModel waits until the job waits because no allowed GPU model can take it.
func waitNoModel(h *daemontest.Harness, jobID uuid.UUID) {
	h.WaitJob(jobID, wait, "wait reason", func(j store.Job) bool {
		return j.WaitReason != nil && *j.WaitReason == scheduler.ReasonNoModel
	})
}

func waitCapacity(t *testing.T, h *daemontest.Harness, model string, milli int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		models, err := h.Store.ListGPUModels(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range models {
			if m.Model == model && m.CapacityMilli == milli {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("capacity of %s never became %d milli: %+v", model, milli, models)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// While the fence fails, as it does for a replica whose Lease may have passed to another,
// the dispatcher creates no pod and leaves the run pending and unmarked. Once the fence
// passes again, the pod is created and the job completes.
func TestFailingFenceHoldsPodCreation(t *testing.T) {
	var open atomic.Bool
	h := daemontest.Start(t, daemontest.Options{Configure: func(c *daemon.Config) {
		c.Dispatcher.Fence = func() error {
			if open.Load() {
				return nil
			}
			return errors.New("lease not renewed")
		}
	}})
	model := uniqueModel()
	gpuNode(t, model, 8, 64000)
	h.Project("vision", 100, 10)

	job := h.Submit("vision", 50, gpuSpec(model, 1, &jobspec.Simulation{RunSeconds: 1}))
	run := waitRun(t, h, job.ID, 1, "created", func(store.Run) bool { return true })
	// The harness resyncs every second, so each of these reconciles meets the fence.
	time.Sleep(3 * time.Second)
	if _, err := podOf(t, run); !apierrors.IsNotFound(err) {
		t.Fatalf("pod %s exists or cannot be read while the fence fails: %v", run.PodName, err)
	}
	runs := h.Runs(job.ID)
	if len(runs) != 1 {
		t.Fatalf("%d runs while the fence fails, want 1", len(runs))
	}
	if runs[0].Status != store.RunPending {
		t.Errorf("run is %s while the fence fails, want pending", runs[0].Status)
	}
	if runs[0].PodCreatedAt != nil {
		t.Errorf("run has a pod mark (%v) while the fence fails, want none", runs[0].PodCreatedAt)
	}

	open.Store(true)
	h.WaitJob(job.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	if runs = h.Runs(job.ID); len(runs) != 1 {
		t.Errorf("%d runs after the fence passed, want 1", len(runs))
	}
}
