// Command gpu-node creates simulated GPU nodes on a local cluster whose nodes KWOK runs,
// such as the one scripts/kube-up.sh starts, and waits until they are Ready. Jobs are
// admitted only for GPU models that a ready node has, so trying schedulerd out by hand
// starts here. Production clusters have real nodes and never need it.
//
//	go run ./sim/cmd/gpu-node -model A10 -gpus 8 gpu-a10-0 gpu-a10-1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/sim"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return
	}
	fmt.Fprintln(os.Stderr, "gpu-node:", err)
	if errors.Is(err, errUsage) {
		os.Exit(2)
	}
	os.Exit(1)
}

// errUsage marks a bad command line, which exits 2 rather than 1.
var errUsage = errors.New("invalid command line")

// request is one command line: the nodes to create and the shape they share.
type request struct {
	kubeconfig string
	names      []string
	model      string
	gpus       int
	cpuMilli   int64
	memoryMiB  int64
	timeout    time.Duration
}

// run creates the nodes that do not exist yet and waits until all of them are Ready. It
// checks the nodes that exist before it creates any, so that a conflict creates nothing.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	req, err := parseRequest(args, getenv, stderr)
	if err != nil {
		return err
	}
	client, err := newClient(req.kubeconfig)
	if err != nil {
		return err
	}

	missing, err := missingNodes(ctx, client, req)
	if err != nil {
		return err
	}
	for _, name := range missing {
		node := sim.GPUNode(name, req.model, req.gpus, req.cpuMilli, req.memoryMiB, nil)
		if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, req.timeout)
	defer cancel()
	selector := fmt.Sprintf("%s in (%s)", corev1.LabelHostname, strings.Join(req.names, ","))
	if err := sim.WaitReady(waitCtx, client, selector, len(req.names)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Ready with %d %s GPUs each (%d created, %d existed): %s\n",
		req.gpus, req.model, len(missing), len(req.names)-len(missing), strings.Join(req.names, " "))
	return nil
}

func parseRequest(args []string, getenv func(string) string, stderr io.Writer) (request, error) {
	fs := flag.NewFlagSet("gpu-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gpu-node -model MODEL [-gpus N] [flags] NAME...")
		fs.PrintDefaults()
	}
	req := request{}
	fs.StringVar(&req.kubeconfig, "kubeconfig", getenv("SCHEDULERD_KUBECONFIG"),
		"kubeconfig of the cluster; SCHEDULERD_KUBECONFIG sets the default")
	fs.StringVar(&req.model, "model", "", "GPU model of the nodes, as jobs name it in gpu_models (required)")
	fs.IntVar(&req.gpus, "gpus", 8, "GPUs per node")
	fs.Int64Var(&req.cpuMilli, "cpu-milli", 64_000, "CPU per node, in thousandths of a core")
	fs.Int64Var(&req.memoryMiB, "memory-mib", 256*1024, "memory per node, in MiB")
	fs.DurationVar(&req.timeout, "timeout", 2*time.Minute, "how long to wait for the nodes to be Ready")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return req, err
		}
		return req, fmt.Errorf("%w: %v", errUsage, err)
	}
	req.names = fs.Args()
	for _, name := range req.names {
		// The flag package stops at the first name, so a later flag would read as a name.
		if strings.HasPrefix(name, "-") {
			return req, fmt.Errorf("%w: flag %s after the node names: put the flags first", errUsage, name)
		}
	}
	return req, req.check()
}

// check rejects a request that the apiserver would reject halfway, or that would make a
// node no job can use.
func (r request) check() error {
	var problems []string
	if r.kubeconfig == "" {
		problems = append(problems, "no kubeconfig: set -kubeconfig or SCHEDULERD_KUBECONFIG (scripts/kube-up.sh prints its path)")
	}
	if len(r.names) == 0 {
		problems = append(problems, "no node names: name one or more after the flags")
	}
	seen := map[string]bool{}
	for _, name := range r.names {
		// The name is also the node's hostname label, so it must be a valid label value
		// (63 characters at most) as well as a valid node name.
		msgs := append(validation.IsDNS1123Subdomain(name), validation.IsValidLabelValue(name)...)
		for _, msg := range msgs {
			problems = append(problems, fmt.Sprintf("invalid node name %q: %s", name, msg))
		}
		if seen[name] {
			problems = append(problems, fmt.Sprintf("node name %q given twice", name))
		}
		seen[name] = true
	}
	if r.model == "" {
		problems = append(problems, "missing -model, such as -model A10")
	}
	for _, msg := range validation.IsValidLabelValue(r.model) {
		problems = append(problems, fmt.Sprintf("invalid -model %q: %s", r.model, msg))
	}
	if r.gpus < 1 || r.cpuMilli < 1 || r.memoryMiB < 1 {
		problems = append(problems, fmt.Sprintf("invalid resources -gpus %d -cpu-milli %d -memory-mib %d: each must be 1 or more",
			r.gpus, r.cpuMilli, r.memoryMiB))
	}
	if r.timeout <= 0 {
		problems = append(problems, fmt.Sprintf("invalid -timeout %s: must be positive", r.timeout))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", errUsage, strings.Join(problems, "; "))
	}
	return nil
}

func newClient(kubeconfig string) (kubernetes.Interface, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return client, nil
}

// missingNodes returns the requested nodes that do not exist yet. An existing node with the
// requested GPU model and count is kept. An existing node with other GPUs fails the
// request, because jobs would not find the GPUs that the caller expects there.
func missingNodes(ctx context.Context, client kubernetes.Interface, req request) ([]string, error) {
	var missing, conflicts []string
	for _, name := range req.names {
		node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read node %s: %w", name, err)
		}
		if conflict := compareNode(node, req); conflict != "" {
			conflicts = append(conflicts, name+" "+conflict)
		}
	}
	if len(conflicts) > 0 {
		return nil, fmt.Errorf("nodes exist that differ from the request, so none were created: %s; delete them or choose other names",
			strings.Join(conflicts, ", "))
	}
	return missing, nil
}

// compareNode returns how an existing node differs from the request, or "" when it matches.
func compareNode(node *corev1.Node, req request) string {
	model := node.Labels[dispatcher.GPUModelLabel]
	gpus := node.Status.Capacity[dispatcher.GPUResource]
	cpu := node.Status.Capacity[corev1.ResourceCPU]
	memory := node.Status.Capacity[corev1.ResourceMemory]
	switch {
	case model != req.model || gpus.Value() != int64(req.gpus):
		return fmt.Sprintf("has %d %q GPUs", gpus.Value(), model)
	case cpu.MilliValue() != req.cpuMilli:
		return fmt.Sprintf("has %d CPU millicores", cpu.MilliValue())
	case memory.Value() != req.memoryMiB<<20:
		return fmt.Sprintf("has %d MiB of memory", memory.Value()>>20)
	case node.Labels[corev1.LabelHostname] != node.Name:
		// The wait selects the nodes by hostname label, which would never find this one.
		return fmt.Sprintf("has the hostname label %q", node.Labels[corev1.LabelHostname])
	}
	return ""
}
