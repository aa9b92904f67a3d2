package sim

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitReady waits until at least want of the nodes that the label selector matches are
// Ready, or until ctx ends. It lists the nodes every half second: KWOK marks the nodes it
// simulates Ready within a few seconds, so a watch would save little.
func WaitReady(ctx context.Context, client kubernetes.Interface, selector string, want int) error {
	for {
		list, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		ready := 0
		for i := range list.Items {
			if NodeReady(&list.Items[i]) {
				ready++
			}
		}
		if ready >= want {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %d nodes to be Ready (%d are): %w", want, ready, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// NodeReady reports whether node has the condition Ready=True.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
