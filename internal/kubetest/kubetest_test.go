package kubetest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/schedulerd/schedulerd/internal/kubetest"
)

// waitTimeout bounds each wait for a pod or node. Binding and KWOK's stages
// take well under a second on an idle cluster, so this leaves room for a
// loaded CI machine.
const waitTimeout = 30 * time.Second

// stableWindow is how long a test watches a pod to show that its phase does
// not change. It exceeds the 1 s run time of the finishing pods, so a stage
// that wrongly matched would have shown its effect by then.
const stableWindow = 3 * time.Second

var (
	startOnce sync.Once
	sharedEnv *kubetest.Env
	startErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedEnv != nil {
		if err := sharedEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// clusterEnv starts one cluster for all tests in this package on first use.
func clusterEnv(t *testing.T) *kubetest.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a Kubernetes control plane; run without -short")
	}
	startOnce.Do(func() {
		// A first build of the tools took 11 minutes on 2 shared cores.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		sharedEnv, startErr = kubetest.Start(ctx)
	})
	if startErr != nil {
		t.Fatalf("start cluster: %v", startErr)
	}
	return sharedEnv
}

func TestServerVersionIsParsable(t *testing.T) {
	env := clusterEnv(t)
	version, err := env.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("get server version: %v", err)
	}
	// kube-tools.sh sets these with -ldflags. Without them the apiserver
	// reports v0.0.0-master and an empty major version.
	if version.Major != "1" {
		t.Errorf("major version is %q, expected 1", version.Major)
	}
	if !strings.HasPrefix(version.GitVersion, "v1.") {
		t.Errorf("git version is %q, expected v1.*", version.GitVersion)
	}
}

func TestGPUPodRunsOnGPUNode(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	pod := createPod(t, env, gpuPod(node, 1, nil))

	running := waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodRunning))

	if running.Spec.NodeName != node {
		t.Errorf("pod bound to node %q, expected %q", running.Spec.NodeName, node)
	}
	if running.Status.StartTime == nil {
		t.Errorf("status.startTime is not set")
	}
	if len(running.Status.ContainerStatuses) != 1 {
		t.Fatalf("got %d container statuses, expected 1", len(running.Status.ContainerStatuses))
	}
	status := running.Status.ContainerStatuses[0]
	if status.State.Running == nil {
		t.Errorf("container state is %+v, expected running", status.State)
	}
	if !status.Ready {
		t.Errorf("container is not ready")
	}
}

func TestNinthGPUPodUnschedulable(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	var pods []*corev1.Pod
	for range 8 {
		pods = append(pods, createPod(t, env, gpuPod(node, 1, nil)))
	}
	for _, pod := range pods {
		waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodRunning))
	}

	ninth := createPod(t, env, gpuPod(node, 1, nil))
	pending := waitPod(t, env, ninth, kubetest.PodUnschedulable)

	if pending.Spec.NodeName != "" {
		t.Errorf("ninth pod bound to node %q, expected no node", pending.Spec.NodeName)
	}
	if pending.Status.Phase != corev1.PodPending {
		t.Errorf("ninth pod phase is %s, expected Pending", pending.Status.Phase)
	}
	message := kubetest.PodCondition(pending, corev1.PodScheduled).Message
	if !strings.Contains(message, "Insufficient nvidia.com/gpu") {
		t.Errorf("PodScheduled message is %q, expected it to contain %q", message, "Insufficient nvidia.com/gpu")
	}
}

func TestRunSecondsPodSucceeds(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	pod := createPod(t, env, gpuPod(node, 1, map[string]string{
		kubetest.RunSecondsAnnotation: "1",
	}))

	succeeded := waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodSucceeded))

	terminated := terminatedState(t, succeeded)
	if terminated.ExitCode != 0 {
		t.Errorf("exit code is %d, expected 0", terminated.ExitCode)
	}
	if terminated.Reason != "Completed" {
		t.Errorf("reason is %q, expected Completed", terminated.Reason)
	}
	expectPhaseStays(t, env, succeeded, corev1.PodSucceeded)
}

func TestExitCodePodFails(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	tests := []struct {
		name       string
		exitCode   string
		reason     string
		wantCode   int32
		wantReason string
	}{
		{name: "OOMKilled", exitCode: "137", reason: "OOMKilled", wantCode: 137, wantReason: "OOMKilled"},
		{name: "DefaultReason", exitCode: "1", wantCode: 1, wantReason: "Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			annotations := map[string]string{
				kubetest.RunSecondsAnnotation: "1",
				kubetest.ExitCodeAnnotation:   tt.exitCode,
			}
			if tt.reason != "" {
				annotations[kubetest.ReasonAnnotation] = tt.reason
			}
			pod := createPod(t, env, gpuPod(node, 1, annotations))

			failed := waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodFailed))

			terminated := terminatedState(t, failed)
			if terminated.ExitCode != tt.wantCode {
				t.Errorf("exit code is %d, expected %d", terminated.ExitCode, tt.wantCode)
			}
			if terminated.Reason != tt.wantReason {
				t.Errorf("reason is %q, expected %q", terminated.Reason, tt.wantReason)
			}
			expectPhaseStays(t, env, failed, corev1.PodFailed)
		})
	}
}

func TestPodWithoutAnnotationsKeepsRunning(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	pod := createPod(t, env, gpuPod(node, 1, nil))

	running := waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodRunning))

	expectPhaseStays(t, env, running, corev1.PodRunning)
}

func TestDeletedPodIsRemoved(t *testing.T) {
	env := clusterEnv(t)
	node := createGPUNode(t, env, 8)
	foreground := metav1.DeletePropagationForeground
	tests := []struct {
		name    string
		options metav1.DeleteOptions
	}{
		{name: "DefaultGracePeriod", options: metav1.DeleteOptions{}},
		// A foreground delete adds a finalizer that only the garbage
		// collector would remove, and no garbage collector runs here.
		{name: "ForegroundPropagation", options: metav1.DeleteOptions{PropagationPolicy: &foreground}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := createPod(t, env, gpuPod(node, 1, nil))
			waitPod(t, env, pod, kubetest.PodPhaseIs(corev1.PodRunning))

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := env.Clientset.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, tt.options); err != nil {
				t.Fatalf("delete pod %s: %v", pod.Name, err)
			}
			// The default grace period is 30 s, so removal within
			// waitTimeout shows that KWOK deleted the pod. The pod is
			// read until it is gone: a watch started after its removal
			// would wait for a delete event that never comes.
			err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
				_, err := env.Clientset.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					return true, nil
				}
				return false, err
			})
			if err != nil {
				t.Errorf("pod %s was not removed: %v", pod.Name, err)
			}
		})
	}
}

// TestManyNodesBecomeReady creates $SCHEDULERD_TEST_SCALE_NODES nodes (for
// example 1213) and reports how long KWOK takes to make them all Ready. It
// is skipped when the variable is unset because it loads the machine.
func TestManyNodesBecomeReady(t *testing.T) {
	count, err := strconv.Atoi(os.Getenv("SCHEDULERD_TEST_SCALE_NODES"))
	if err != nil || count <= 0 {
		t.Skip("set SCHEDULERD_TEST_SCALE_NODES to a node count to run")
	}
	env := clusterEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	names := make([]string, count)
	for i := range names {
		names[i] = uniqueName(fmt.Sprintf("scale-%04d", i))
	}

	start := time.Now()
	createNodes(ctx, t, env, names)
	created := time.Since(start)
	if err := env.WaitNodesReady(ctx, names...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes: created in %s, all Ready %s after the first create", count, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// createNodes creates the named 8-GPU nodes with 16 concurrent requests and
// deletes them when the test ends.
func createNodes(ctx context.Context, t *testing.T, env *kubetest.Env, names []string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for _, name := range names {
			_ = env.Clientset.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{})
		}
	})
	work := make(chan string)
	errs := make(chan error, len(names))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for name := range work {
				_, err := env.CreateGPUNode(ctx, name, "NVIDIA-H100-80GB-HBM3", 8, 64000, 512*1024)
				errs <- err
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// uniqueName returns prefix with a random suffix, so that tests can run
// again against the same cluster from SCHEDULERD_TEST_KUBECONFIG.
func uniqueName(prefix string) string {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	return prefix + "-" + hex.EncodeToString(suffix)
}

// createGPUNode creates a Ready KWOK node with gpus H100 GPUs, 64 CPUs and
// 512 GiB of memory, and deletes it when the test ends.
func createGPUNode(t *testing.T, env *kubetest.Env, gpus int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	name := uniqueName("gpu-node")
	if _, err := env.CreateGPUNode(ctx, name, "NVIDIA-H100-80GB-HBM3", gpus, 64000, 512*1024); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := env.Clientset.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete node %s: %v", name, err)
		}
	})
	if err := env.WaitNodesReady(ctx, name); err != nil {
		t.Fatal(err)
	}
	return name
}

// gpuPod returns a pod that requests gpus GPUs and runs only on node.
func gpuPod(node string, gpus int64, annotations map[string]string) *corev1.Pod {
	gpuQuantity := *resource.NewQuantity(gpus, resource.DecimalSI)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        uniqueName("train"),
			Namespace:   metav1.NamespaceDefault,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{
				Name: "trainer",
				// KWOK runs no containers, so the image is never pulled.
				Image: "trainer.invalid/train:latest",
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{kubetest.GPUResource: gpuQuantity},
				},
			}},
		},
	}
}

// createPod creates pod and deletes it when the test ends, before the
// node cleanup that was registered earlier.
func createPod(t *testing.T, env *kubetest.Env, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	created, err := env.Clientset.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s: %v", pod.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		err := env.Clientset.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, *metav1.NewDeleteOptions(0))
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete pod %s: %v", pod.Name, err)
		}
	})
	return created
}

func waitPod(t *testing.T, env *kubetest.Env, pod *corev1.Pod, condition func(*corev1.Pod) (bool, error)) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	got, err := env.WaitPod(ctx, pod.Namespace, pod.Name, condition)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// expectPhaseStays watches pod for stableWindow and fails the test if its
// phase changes or it is deleted.
func expectPhaseStays(t *testing.T, env *kubetest.Env, pod *corev1.Pod, phase corev1.PodPhase) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stableWindow)
	defer cancel()
	_, err := env.WaitPod(ctx, pod.Namespace, pod.Name, func(p *corev1.Pod) (bool, error) {
		if p.Status.Phase != phase {
			return false, fmt.Errorf("phase changed from %s to %s", phase, p.Status.Phase)
		}
		return false, nil
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("pod %s did not stay %s for %s: %v", pod.Name, phase, stableWindow, err)
	}
}

func terminatedState(t *testing.T, pod *corev1.Pod) *corev1.ContainerStateTerminated {
	t.Helper()
	if len(pod.Status.ContainerStatuses) != 1 {
		t.Fatalf("got %d container statuses, expected 1", len(pod.Status.ContainerStatuses))
	}
	terminated := pod.Status.ContainerStatuses[0].State.Terminated
	if terminated == nil {
		t.Fatalf("container state is %+v, expected terminated", pod.Status.ContainerStatuses[0].State)
	}
	return terminated
}
