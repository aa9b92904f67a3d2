package daemontest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GPUNodes creates n Ready KWOK nodes with gpus GPUs each, of a model no other test uses,
// deletes them when the test ends, and returns the model.
func GPUNodes(t testing.TB, n, gpus int) string {
	t.Helper()
	ctx := context.Background()
	model := "M-" + strings.ToUpper(uuid.NewString()[:8])
	var names []string
	for i := range n {
		name := fmt.Sprintf("node-%s-%d", strings.ToLower(model), i)
		if _, err := Kube.CreateGPUNode(ctx, name, model, gpus, 64000, 262144); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	t.Cleanup(func() {
		for _, name := range names {
			_ = Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := Kube.WaitNodesReady(waitCtx, names...); err != nil {
		t.Fatal(err)
	}
	return model
}
