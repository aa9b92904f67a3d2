package dispatcher

import (
	"testing"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/workqueue"
)

// runningPod is a pod of run on node-1 whose container started at start, with the fields
// the informer receives from the API.
func runningPod(run uuid.UUID, start time.Time) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "job-x-r1", Namespace: "team", ResourceVersion: "7",
			Labels:        map[string]string{LabelRunID: run.String(), LabelManagedBy: ManagedByValue},
			Annotations:   map[string]string{"note": "a long annotation the dispatcher never reads"},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "train", Image: "trainer:1"}}},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: "10.0.0.1", HostIP: "192.168.0.1",
			Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "train", Image: "trainer:1", ImageID: "sha256:abc",
				ContainerID: "containerd://1",
				Resources:   &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("1")}},
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(start)}}}},
		},
	}
}

func TestStripPodKeepsWhatJudgeReads(t *testing.T) {
	run := uuid.New()
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	now := start.Add(time.Minute)
	pod := runningPod(run, start)
	want := Judge(pod.DeepCopy(), NodeFacts{}, now, testLimits, time.Time{})

	stripped, err := stripPod(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := stripped.(*corev1.Pod)
	if obs := Judge(got, NodeFacts{}, now, testLimits, time.Time{}); obs != want {
		t.Errorf("Judge of the stripped pod %+v, of the full pod %+v", obs, want)
	}
	if id, ok := runIDOf(got); !ok || id != run {
		t.Errorf("run id of the stripped pod %v (found %v), want %v", id, ok, run)
	}
	if len(got.Labels) != 1 || got.Annotations != nil || got.ManagedFields != nil {
		t.Errorf("stripped pod keeps labels %v, annotations %v, managed fields %v; want only the run id label",
			got.Labels, got.Annotations, got.ManagedFields)
	}
	if len(got.Spec.Containers) != 0 || got.Status.PodIP != "" || got.Status.ContainerStatuses[0].Resources != nil {
		t.Error("stripped pod keeps its containers, IP or container resources")
	}
}

func TestPodEventsQueueOnlyJudgedChanges(t *testing.T) {
	run := uuid.New()
	start := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	running := runningPod(run, start)
	fresh := &corev1.Pod{ObjectMeta: running.ObjectMeta, Status: corev1.PodStatus{Phase: corev1.PodPending}}
	relabeled := running.DeepCopy()
	relabeled.ResourceVersion = "8"
	deleted := running.DeepCopy()
	deleted.DeletionTimestamp = &metav1.Time{Time: start}
	ended := running.DeepCopy()
	ended.Status.Phase = corev1.PodSucceeded

	cases := []struct {
		name  string
		event func(d *Dispatcher)
		want  int
	}{
		{"add of a pod just created", func(d *Dispatcher) { d.onPodAdd(fresh) }, 0},
		{"add of a running pod", func(d *Dispatcher) { d.onPodAdd(running) }, 1},
		{"update of metadata only", func(d *Dispatcher) { d.onPodUpdate(running, relabeled) }, 0},
		{"update to deleting", func(d *Dispatcher) { d.onPodUpdate(running, deleted) }, 1},
		{"update to succeeded", func(d *Dispatcher) { d.onPodUpdate(running, ended) }, 1},
		{"update that binds a node", func(d *Dispatcher) { d.onPodUpdate(fresh, running) }, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &Dispatcher{queue: workqueue.NewTypedRateLimitingQueue(
				workqueue.DefaultTypedControllerRateLimiter[uuid.UUID]())}
			defer d.queue.ShutDown()
			c.event(d)
			if got := d.queue.Len(); got != c.want {
				t.Errorf("%d runs queued, want %d", got, c.want)
			}
		})
	}
}

func TestNodeCapacityChanged(t *testing.T) {
	gpuPod := podTolerations(true, nil)
	node := func(cores string) *corev1.Node {
		return &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{GPUModelLabel: "A10"}},
			Status: corev1.NodeStatus{
				Allocatable: corev1.ResourceList{GPUResource: resource.MustParse("8"), "cpu": resource.MustParse(cores),
					"memory": resource.MustParse("256Gi")},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
					LastHeartbeatTime: metav1.NewTime(time.Unix(100, 0))}},
			},
		}
	}
	heartbeat := node("64")
	heartbeat.Status.Conditions[0].LastHeartbeatTime = metav1.NewTime(time.Unix(200, 0))
	if nodeCapacityChanged(node("64"), heartbeat, gpuPod) {
		t.Error("a heartbeat changes capacity, want no recount")
	}
	if !nodeCapacityChanged(node("64"), node("8"), gpuPod) {
		t.Error("64 cores to 8 does not change capacity, want a recount")
	}
	if nodeCapacityChanged(node("64"), node("64000m"), gpuPod) {
		t.Error("64 cores written as 64000m changes capacity, want no recount")
	}
	memory := node("64")
	memory.Status.Allocatable["memory"] = resource.MustParse("128Gi")
	if !nodeCapacityChanged(node("64"), memory, gpuPod) {
		t.Error("256Gi to 128Gi of memory does not change capacity, want a recount")
	}

	reserved := node("64")
	reserved.Spec.Taints = []corev1.Taint{{Key: "example.com/reserved", Effect: corev1.TaintEffectNoSchedule}}
	if !nodeCapacityChanged(node("64"), reserved, gpuPod) {
		t.Error("a NoSchedule taint the pods do not tolerate does not change capacity, want a recount")
	}
	if !nodeCapacityChanged(reserved, node("64"), gpuPod) {
		t.Error("removing a NoSchedule taint the pods do not tolerate does not change capacity, want a recount")
	}
	gpuTaint := node("64")
	gpuTaint.Spec.Taints = []corev1.Taint{{Key: string(GPUResource), Effect: corev1.TaintEffectNoSchedule}}
	if nodeCapacityChanged(node("64"), gpuTaint, gpuPod) {
		t.Error("a NoSchedule taint the pods tolerate changes capacity, want no recount")
	}

	// With an extra toleration for dedicated=ml, a node that keeps that taint and loses an
	// untolerated one starts to count.
	dedicated := corev1.Taint{Key: "dedicated", Value: "ml", Effect: corev1.TaintEffectNoSchedule}
	withExtra := podTolerations(true, []corev1.Toleration{
		{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "ml", Effect: corev1.TaintEffectNoSchedule}})
	both := node("64")
	both.Spec.Taints = []corev1.Taint{dedicated, reserved.Spec.Taints[0]}
	onlyDedicated := node("64")
	onlyDedicated.Spec.Taints = []corev1.Taint{dedicated}
	if !nodeCapacityChanged(both, onlyDedicated, withExtra) {
		t.Error("removing the untolerated taint beside a tolerated dedicated=ml does not change capacity, want a recount")
	}
	if nodeCapacityChanged(node("64"), onlyDedicated, withExtra) {
		t.Error("a dedicated=ml taint the extra toleration tolerates changes capacity, want no recount")
	}
}
