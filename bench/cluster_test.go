package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// deleteScript describes how a fake client handles collection deletes, because the local
// API server cannot be made to time out on cue. timeoutDeletes makes the first delete time
// out, and deletesOnTimeout makes that delete remove the pods anyway, as a loaded server
// does. Every other delete removes the pods unless never is set.
type deleteScript struct {
	timeoutDeletes, deletesOnTimeout, never bool
}

func (s deleteScript) client(t *testing.T) (*fake.Clientset, *int) {
	t.Helper()
	client := fake.NewClientset(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "b", Namespace: "ns"}})
	calls := 0
	deleteAll := func() {
		for _, name := range []string{"a", "b"} {
			_ = client.Tracker().Delete(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "ns", name)
		}
	}
	client.PrependReactor("delete-collection", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls++
		if calls == 1 && s.timeoutDeletes {
			if s.deletesOnTimeout {
				deleteAll()
			}
			return true, nil, apierrors.NewTimeoutError("deleting pods", 1)
		}
		if !s.never {
			deleteAll()
		}
		return true, nil, nil
	})
	return client, &calls
}

func TestDeletePodsThroughTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		script    deleteScript
		wantCalls int
		wantErr   string
	}{
		{"no timeout", deleteScript{}, 1, ""},
		{"deleted despite the timeout", deleteScript{timeoutDeletes: true, deletesOnTimeout: true}, 1, ""},
		{"timed out, sent again", deleteScript{timeoutDeletes: true}, 2, ""},
		{"pods never go", deleteScript{never: true}, 0, "pods still in namespace ns 200ms after their deletion"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, calls := tc.script.client(t)
			err := deletePodsWithin(context.Background(), client.CoreV1().Pods("ns"), "ns",
				20*time.Millisecond, 200*time.Millisecond)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *calls != tc.wantCalls {
				t.Errorf("%d collection deletes, want %d", *calls, tc.wantCalls)
			}
			left, err := client.CoreV1().Pods("ns").List(context.Background(), metav1.ListOptions{})
			if err != nil || len(left.Items) != 0 {
				t.Errorf("%d pods left (list error %v), want none", len(left.Items), err)
			}
		})
	}
}

// An error other than a timeout ends the deletion with the namespace and the cause.
func TestDeletePodsFailsOnRefusal(t *testing.T) {
	client := fake.NewClientset()
	client.PrependReactor("delete-collection", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", nil)
	})
	err := deletePodsWithin(context.Background(), client.CoreV1().Pods("ns"), "ns", 20*time.Millisecond, time.Second)
	if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "delete pods in ns") {
		t.Errorf("error %v, want the Forbidden answer wrapped with the namespace", err)
	}
}
