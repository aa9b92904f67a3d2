package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/kubetest"
	"github.com/schedulerd/schedulerd/sim"
)

var cluster *kubetest.Env

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	env, err := kubetest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start cluster:", err)
		os.Exit(1)
	}
	cluster = env
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// runTool runs the command against the test cluster and returns its standard output.
func runTool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	getenv := func(k string) string {
		if k == "SCHEDULERD_KUBECONFIG" {
			return cluster.Kubeconfig
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, getenv, &stdout, &stderr)
	return stdout.String(), err
}

// uniqueName returns a node name no other test run on the same cluster has used.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

func TestGPUNodeCreatesReadyNodes(t *testing.T) {
	a, b := uniqueName("a10-a"), uniqueName("a10-b")
	out, err := runTool(t, "-model", "A10", "-gpus", "4", a, b)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Ready with 4 A10 GPUs each (2 created, 0 existed): " + a + " " + b + "\n"; out != want {
		t.Errorf("output %q, want %q", out, want)
	}
	for _, name := range []string{a, b} {
		node, err := cluster.Clientset.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := node.Labels[dispatcher.GPUModelLabel]; got != "A10" {
			t.Errorf("%s: GPU model label %q, want A10", name, got)
		}
		gpus := node.Status.Allocatable[dispatcher.GPUResource]
		if gpus.Value() != 4 {
			t.Errorf("%s: %d allocatable GPUs, want 4", name, gpus.Value())
		}
		if !sim.NodeReady(node) {
			t.Errorf("%s is not Ready", name)
		}
	}

	out, err = runTool(t, "-model", "A10", "-gpus", "4", a, b)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if want := "(0 created, 2 existed)"; !strings.Contains(out, want) {
		t.Errorf("second run output %q, want %q", out, want)
	}
}

func TestGPUNodeConflictCreatesNothing(t *testing.T) {
	existing, fresh := uniqueName("t4-a"), uniqueName("t4-b")
	if _, err := runTool(t, "-model", "T4", "-gpus", "1", existing); err != nil {
		t.Fatal(err)
	}

	_, err := runTool(t, "-model", "T4", "-gpus", "2", fresh, existing)
	if err == nil || !strings.Contains(err.Error(), existing+` has 1 "T4" GPUs`) {
		t.Fatalf("error %v, want one naming %s and its 1 T4 GPU", err, existing)
	}
	_, err = cluster.Clientset.CoreV1().Nodes().Get(context.Background(), fresh, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("node %s after the conflict: err %v, want NotFound", fresh, err)
	}

	_, err = runTool(t, "-model", "T4", "-gpus", "1", "-cpu-milli", "32000", existing)
	if err == nil || !strings.Contains(err.Error(), existing+" has 64000 CPU millicores") {
		t.Errorf("error %v, want one naming %s and its 64000 CPU millicores", err, existing)
	}
	_, err = runTool(t, "-model", "T4", "-gpus", "1", "-memory-mib", "1024", existing)
	if err == nil || !strings.Contains(err.Error(), existing+" has 262144 MiB of memory") {
		t.Errorf("error %v, want one naming %s and its 262144 MiB", err, existing)
	}
}

// TestGPUNodeOtherHostnameConflicts checks a node whose GPUs match but whose hostname label
// differs from its name: the wait selects nodes by that label, so it is a conflict.
func TestGPUNodeOtherHostnameConflicts(t *testing.T) {
	name := uniqueName("l4")
	node := sim.GPUNode(name, "L4", 2, 8000, 16384, map[string]string{corev1.LabelHostname: "elsewhere"})
	if _, err := cluster.Clientset.CoreV1().Nodes().Create(context.Background(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	_, err := runTool(t, "-model", "L4", "-gpus", "2", "-cpu-milli", "8000", "-memory-mib", "16384", name)
	if err == nil || !strings.Contains(err.Error(), name+` has the hostname label "elsewhere"`) {
		t.Errorf("error %v, want one naming %s and its hostname label", err, name)
	}
}

func TestGPUNodeInvalidRequestCreatesNothing(t *testing.T) {
	good := uniqueName("v100")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-model", "V100", good, "Bad_Name"}, `invalid node name "Bad_Name"`},
		{[]string{"-model", "Tesla V100", good}, `invalid -model "Tesla V100"`},
		{[]string{good}, "missing -model"},
		{[]string{"-model", "V100", "-gpus", "0", good}, "invalid resources -gpus 0"},
		{[]string{"-model", "V100"}, "no node names"},
		{[]string{good, "-model", "V100"}, "flag -model after the node names: put the flags first"},
		{[]string{"-model", "V100", good, good}, fmt.Sprintf("node name %q given twice", good)},
		{[]string{"-model", "V100", good, strings.Repeat("n", 64)}, "must be no more than 63 bytes"},
	}
	for _, c := range cases {
		_, err := runTool(t, c.args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want a usage error containing %q", c.args, err, c.want)
		}
	}
	_, err := cluster.Clientset.CoreV1().Nodes().Get(context.Background(), good, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("node %s after the rejected requests: err %v, want NotFound", good, err)
	}
}
