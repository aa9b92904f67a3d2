//go:build reliability

package reliability_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"

	"github.com/schedulerd/schedulerd/dispatcher"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/s3test"
)

// TestInvariantsCatchForgedStates writes each kind of broken state straight into a
// database, a cluster and a bucket, and checks that checkInvariants names every rule, so
// that the scenarios' clean results mean something.
func TestInvariantsCatchForgedStates(t *testing.T) {
	sc := newScenario(t, 6)
	ctx := context.Background()
	project := daemontest.CreateProject(t, sc.store, "vision", 4, 10)
	spec := oneGPU("A100", nil)
	var jobs []uuid.UUID
	for range 4 {
		jobs = append(jobs, daemontest.SubmitJob(t, sc.store, project.ID, 50, spec).ID)
	}
	runs := map[string]uuid.UUID{}
	for _, name := range []string{"live-1", "live-2", "ended", "running", "hours"} {
		runs[name] = uuid.New()
	}
	client, bucket := s3test.NewBucket(t)
	_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("kept"),
		Body: strings.NewReader("x")})
	if err != nil {
		t.Fatal(err)
	}

	// Triggers and foreign keys are off for this connection, so the forged rows stay as
	// written.
	forge := []struct {
		sql  string
		args []any
	}{
		{`SET session_replication_role = replica`, nil},
		{`INSERT INTO gpu_models (model, capacity_milli) VALUES ('A100', 8000)`, nil},
		// Job 0 runs without a run.
		{`UPDATE jobs SET status = 'running' WHERE id = $1`, []any{jobs[0]}},
		// Job 1 has two live runs at once, which its run_count does not count.
		{`INSERT INTO runs (id, job_id, job_created_at, run_number, gpu_milli, gpu_model, pod_name,
		                    gpu_hours_reserved)
		  SELECT unnest($2::uuid[]), id, created_at, unnest('{1,2}'::int[]), 1000, 'A100', 'p', 1
		  FROM jobs WHERE id = $1`, []any{jobs[1], []uuid.UUID{runs["live-1"], runs["live-2"]}}},
		// Job 2 completed, yet its pod will run.
		{`INSERT INTO runs (id, job_id, job_created_at, run_number, gpu_milli, pod_name, status, completed_at)
		  SELECT $2, id, created_at, 1, 1000, 'ended', 'completed', now() FROM jobs WHERE id = $1`,
			[]any{jobs[2], runs["ended"]}},
		// Job 3 has a running run without a pod, and a completed run whose hours disagree
		// with its pod's run time.
		{`INSERT INTO runs (id, job_id, job_created_at, run_number, gpu_milli, pod_name, status, started_at)
		  SELECT $2, id, created_at, 2, 1000, 'gone', 'running', now() FROM jobs WHERE id = $1`,
			[]any{jobs[3], runs["running"]}},
		{`INSERT INTO runs (id, job_id, job_created_at, run_number, gpu_milli, pod_name, status, completed_at,
		                    gpu_hours_used, gpu_hours_reserved)
		  SELECT $2, id, created_at, 1, 1000, 'hours', 'completed', now(), 0.5, 10 FROM jobs WHERE id = $1`,
			[]any{jobs[3], runs["hours"]}},
		// The quota's used hours match none of its runs, and pass its budget of 4.
		{`UPDATE quotas SET gpu_hours_used = 5 WHERE project_id = $1`, []any{project.ID}},
		{`INSERT INTO artifacts (run_id, artifact_type, storage_uri, checksum_sha256, size_bytes)
		  VALUES ($1, 'checkpoint', $2, repeat('a', 64), 1), ($1, 'checkpoint', $3, repeat('a', 64), 1)`,
			[]any{runs["ended"], "s3://" + bucket + "/kept", "s3://" + bucket + "/missing"}},
	}
	conn, err := sc.store.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range forge {
		if _, err := conn.Exec(ctx, step.sql, step.args...); err != nil {
			t.Fatalf("forge step %d: %v\n%s", i, err, step.sql)
		}
	}
	// Close rather than return the connection, which still has triggers off.
	_ = conn.Hijack().Close(ctx)

	createForgedPod(t, project.K8sNamespace, "ended", runs["ended"], nil)
	started := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	createForgedPod(t, project.K8sNamespace, "hours", runs["hours"], &corev1.ContainerStateTerminated{
		StartedAt: started, FinishedAt: metav1.NewTime(started.Add(time.Hour))})
	pods := &podLog{seen: map[types.UID]bool{}, liveByJob: map[string]map[types.UID]string{},
		created: map[string]map[string]int{}, liveDeletions: map[string]int{}, deleting: map[types.UID]bool{}}
	for _, uid := range []types.UID{"a", "b"} {
		pods.observe(watch.Added, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid, Name: string(uid),
			Labels: map[string]string{dispatcher.LabelJobID: "job"}}})
	}

	sys := sc.system()
	sys.Pods, sys.S3, sys.Bucket = pods, client, bucket
	found, err := checkInvariants(ctx, sys)
	if err != nil {
		t.Fatal(err)
	}
	byRule := map[string][]string{}
	for _, v := range found {
		byRule[v.Rule] = append(byRule[v.Rule], v.Detail)
	}
	for _, rule := range []string{ruleJobState, ruleQueue, ruleRunCount, ruleOverlappingRun, ruleUsedHours,
		ruleBudget, ruleReservation, ruleModelAllocated, ruleOrphanPod, ruleMissingPod, ruleRunHours,
		ruleTwoLivePods, ruleArtifact} {
		if len(byRule[rule]) == 0 {
			t.Errorf("rule %q caught nothing; found %v", rule, found)
		}
	}
	if got := byRule[ruleArtifact]; len(got) != 1 || !strings.Contains(got[0], "/missing") {
		t.Errorf("artifact violations %q, want only the missing object", got)
	}
}

// createForgedPod creates a schedulerd pod for a run on no node, so nothing runs it, and
// gives it a terminated container when terminated is set.
func createForgedPod(t *testing.T, namespace, name string, run uuid.UUID, terminated *corev1.ContainerStateTerminated) {
	t.Helper()
	ctx := context.Background()
	namespaces := daemontest.Kube.Clientset.CoreV1().Namespaces()
	_, err := namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}

	pods := daemontest.Kube.Clientset.CoreV1().Pods(namespace)
	pod, err := pods.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			dispatcher.LabelManagedBy: dispatcher.ManagedByValue, dispatcher.LabelRunID: run.String()}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "trainer", Image: "trainer:1"}},
			NodeSelector: map[string]string{"schedulerd.io/no-such-node": "true"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The forged pod must not outlive the test, since later scenarios watch every pod. It
	// is bound to no node, so the apiserver deletes it at once.
	t.Cleanup(func() { _ = pods.Delete(context.Background(), name, metav1.DeleteOptions{}) })

	if terminated == nil {
		return
	}
	// kube-scheduler writes the pod's status too, so retry on a conflict.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Status.Phase = corev1.PodSucceeded
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "trainer", Image: "trainer:1",
			State: corev1.ContainerState{Terminated: terminated}}}
		_, err = pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
