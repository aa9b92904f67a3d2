package bench

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/sim"
	"github.com/schedulerd/schedulerd/store"
)

// Simulated cluster of the Kubernetes measurements: enough 10-GPU KWOK nodes of one model
// for the memory measurement's 10,000 pods of a tenth of a GPU each, which also bounds
// them by the 110 pods a node admits.
const (
	benchNodeModel = "A100"
	benchNodeGPUs  = 10
)

// ensureNodes creates the KWOK GPU nodes bench-gpu-000 to bench-gpu-(count-1) that do not
// exist yet and waits until all are Ready.
func ensureNodes(ctx context.Context, client kubernetes.Interface, count int) error {
	for i := range count {
		name := fmt.Sprintf("bench-gpu-%03d", i)
		node := sim.GPUNode(name, benchNodeModel, benchNodeGPUs, 256_000, 1<<20, nil)
		_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	return sim.WaitReady(waitCtx, client, "", count)
}

// nodeCapacity returns the capacity the dispatcher would store for the bench nodes, so that
// admission places every job on the nodes' model before the dispatcher first counts them.
func nodeCapacity(nodes int) []store.ModelCapacity {
	return []store.ModelCapacity{{Model: benchNodeModel, CapacityMilli: int64(nodes * benchNodeGPUs * 1000),
		Nodes: nodes, LargestNodeMilli: benchNodeGPUs * 1000}}
}

// ensureNamespace creates namespace if it does not exist.
func ensureNamespace(ctx context.Context, client kubernetes.Interface, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name,
		Labels: map[string]string{dispatcher.LabelManagedBy: dispatcher.ManagedByValue}}}
	_, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// deletePods deletes every pod in namespace at once (no grace period) and waits until the
// API server has none left there, for up to 5 minutes.
func deletePods(ctx context.Context, client kubernetes.Interface, namespace string) error {
	return deletePodsWithin(ctx, client.CoreV1().Pods(namespace), namespace, 30*time.Second, 5*time.Minute)
}

// deletePodsWithin deletes the pods and waits for them until limit passes. A loaded API
// server may return a timeout for a delete of thousands of pods while it goes on deleting
// them, so a timeout is not an error. The delete is sent again every resend while pods remain.
func deletePodsWithin(ctx context.Context, pods typedcorev1.PodInterface, namespace string,
	resend, limit time.Duration) error {
	grace := int64(0)
	deadline := time.Now().Add(limit)
	for {
		err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &grace}, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsTimeout(err) && !apierrors.IsServerTimeout(err) {
			return fmt.Errorf("delete pods in %s: %w", namespace, err)
		}
		gone, err := podsGone(ctx, pods, min(resend, time.Until(deadline)))
		if err != nil {
			return fmt.Errorf("list pods in %s: %w", namespace, err)
		}
		if gone {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pods still in namespace %s %s after their deletion", namespace, limit)
		}
	}
}

// podsGone lists the pods every 500 ms, or every wait if shorter, until none is left, and reports
// false if some still are once wait passes.
func podsGone(ctx context.Context, pods typedcorev1.PodInterface, wait time.Duration) (bool, error) {
	until := time.Now().Add(wait)
	for {
		list, err := pods.List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return false, err
		}
		if len(list.Items) == 0 {
			return true, nil
		}
		if time.Now().After(until) {
			return false, nil
		}
		time.Sleep(min(500*time.Millisecond, wait))
	}
}
