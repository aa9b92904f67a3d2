// Package kubetest gives tests a real Kubernetes control plane (etcd,
// kube-apiserver, kube-scheduler) with simulated GPU nodes run by KWOK.
//
// Start runs scripts/kube-up.sh into a temporary directory, which builds the
// pinned tools on first use (11 minutes on 2 shared cores when measured, then
// cached under $SCHEDULERD_CACHE or ~/.cache/schedulerd) and starts the
// cluster in about 5 seconds. Set SCHEDULERD_TEST_KUBECONFIG to use a running cluster instead,
// for example one started once with scripts/kube-up.sh for many test runs.
//
// Pods bound to KWOK nodes become Running. The annotations RunSecondsAnnotation,
// ExitCodeAnnotation and ReasonAnnotation make them finish, as described in
// scripts/kwok-stages.yaml.
package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// KubeconfigEnv names the environment variable that points Start at a
// running cluster instead of starting one.
const KubeconfigEnv = "SCHEDULERD_TEST_KUBECONFIG"

// Annotations that the KWOK stages in scripts/kwok-stages.yaml read.
const (
	// RunSecondsAnnotation makes a Running pod finish this many whole
	// seconds after its status.startTime. Without it the pod runs forever.
	RunSecondsAnnotation = "sim.schedulerd.io/run-seconds"
	// ExitCodeAnnotation (1-255) makes the finishing pod Failed with this
	// container exit code instead of Succeeded.
	ExitCodeAnnotation = "sim.schedulerd.io/exit-code"
	// ReasonAnnotation sets the terminated container's reason for a failed
	// pod, for example OOMKilled. The default is "Error".
	ReasonAnnotation = "sim.schedulerd.io/reason"
)

// Env is a Kubernetes cluster for tests.
type Env struct {
	// Kubeconfig is the path of a kubeconfig with admin credentials.
	Kubeconfig string
	// Config is the client configuration loaded from Kubeconfig.
	Config *rest.Config
	// Clientset is a client for Config.
	Clientset kubernetes.Interface
	// Dir contains the state and logs (Dir/log/*.log) of a cluster that
	// Start started. It is empty for a cluster from KubeconfigEnv.
	Dir string

	scriptDir string
}

// Start returns a cluster for tests. It connects to the cluster in
// $SCHEDULERD_TEST_KUBECONFIG when that is set, and otherwise starts one with
// scripts/kube-up.sh. The caller must call Stop.
//
// ctx bounds the start, including a first build of the tools, so give it
// 20 minutes or more when the tool cache may be empty.
func Start(ctx context.Context) (*Env, error) {
	if path := os.Getenv(KubeconfigEnv); path != "" {
		env, err := connect(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("connect to the cluster in %s=%s: %w", KubeconfigEnv, path, err)
		}
		return env, nil
	}

	scriptDir, err := findScriptDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "schedulerd-kube-")
	if err != nil {
		return nil, fmt.Errorf("create the cluster directory: %w", err)
	}
	kubeconfig, err := kubeUp(ctx, scriptDir, dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}

	env, err := connect(ctx, kubeconfig)
	if err != nil {
		stopErr := kubeDown(scriptDir, dir)
		return nil, errors.Join(fmt.Errorf("connect to the cluster in %s: %w", dir, err), stopErr)
	}
	env.Dir = dir
	env.scriptDir = scriptDir
	return env, nil
}

// Stop stops a cluster that Start started and deletes its directory. For a
// cluster from KubeconfigEnv it does nothing. Calling Stop twice is safe.
func (e *Env) Stop() error {
	if e.Dir == "" {
		return nil
	}
	if err := kubeDown(e.scriptDir, e.Dir); err != nil {
		return fmt.Errorf("stop the cluster in %s: %w", e.Dir, err)
	}
	if err := os.RemoveAll(e.Dir); err != nil {
		return fmt.Errorf("delete the cluster directory: %w", err)
	}
	e.Dir = ""
	return nil
}

// findScriptDir returns the scripts directory of the repository that
// contains the working directory. go test runs each test binary in its
// package directory, so the search walks up from there.
func findScriptDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get the working directory: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		script := filepath.Join(dir, "scripts", "kube-up.sh")
		if _, err := os.Stat(script); err == nil {
			return filepath.Dir(script), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("scripts/kube-up.sh not found in %s or its parents (run the test inside the schedulerd repository, or set %s)", wd, KubeconfigEnv)
		}
	}
}

// kubeUp runs kube-up.sh and returns the kubeconfig path that it prints.
// The script's progress goes to stderr, so a first build shows it, and the
// output is part of the error when the start fails.
func kubeUp(ctx context.Context, scriptDir, dir string) (string, error) {
	// --watch-pid stops the cluster if this test binary dies without
	// calling Stop, for example on a go test timeout.
	cmd := exec.CommandContext(ctx, filepath.Join(scriptDir, "kube-up.sh"),
		"--watch-pid", strconv.Itoa(os.Getpid()), dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = io.MultiWriter(&stderr, os.Stderr)
	// Without WaitDelay, a cancelled ctx kills only the shell, and Wait
	// blocks while a go build that it started still holds the output pipe.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		stopErr := kubeDown(scriptDir, dir)
		return "", errors.Join(fmt.Errorf("scripts/kube-up.sh %s failed: %w\n%s", dir, err, stderr.String()), stopErr)
	}
	kubeconfig := strings.TrimSpace(stdout.String())
	if kubeconfig == "" {
		return "", fmt.Errorf("scripts/kube-up.sh %s printed no kubeconfig path", dir)
	}
	return kubeconfig, nil
}

func kubeDown(scriptDir, dir string) error {
	cmd := exec.Command(filepath.Join(scriptDir, "kube-down.sh"), dir)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("scripts/kube-down.sh %s failed: %w\n%s", dir, err, output)
	}
	return nil
}

// connect loads a kubeconfig and waits until the apiserver is ready and the
// default namespace exists, which the apiserver creates shortly after start.
func connect(ctx context.Context, kubeconfig string) (*Env, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	// client-go's default limit of 5 requests/s would make tests that create
	// many pods or nodes wait on the client instead of the cluster.
	config.QPS = 500
	config.Burst = 1000
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("create clientset: %w", err)
	}
	if err := waitAPIReady(ctx, clientset); err != nil {
		return nil, err
	}
	return &Env{Kubeconfig: kubeconfig, Config: config, Clientset: clientset}, nil
}

func waitAPIReady(ctx context.Context, clientset kubernetes.Interface) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, lastErr = clientset.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
		if apierrors.IsNotFound(lastErr) {
			return false, nil
		}
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for namespace %q: %w (last error: %v)", metav1.NamespaceDefault, err, lastErr)
	}
	return nil
}
