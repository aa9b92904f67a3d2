//go:build reliability

package reliability_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/schedulerd/schedulerd/dispatcher"
)

// Rules that checkInvariants enforces, named in each violation.
const (
	ruleJobState       = "job state"        // terminal, queued, or running with one live run
	ruleQueue          = "queue table"      // job_queue holds exactly the queued jobs
	ruleRunCount       = "run count"        // jobs.run_count equals the job's runs
	ruleOverlappingRun = "overlapping runs" // a job's next run starts after its last ended
	ruleUsedHours      = "used hours"       // quota used equals the hours of ended runs
	ruleBudget         = "budget"           // used + reserved never passes the budget
	ruleReservation    = "reservation"      // reserved hours and slots equal the live runs'
	ruleModelAllocated = "model allocation" // allocated GPUs equal the live runs'
	ruleOrphanPod      = "orphan pod"       // a live pod belongs to a live run
	ruleMissingPod     = "missing pod"      // a running run has its pod
	ruleRunHours       = "run hours"        // an ended run's hours equal its pod's run time
	ruleTwoLivePods    = "two live pods"    // from the pod watch
	ruleArtifact       = "artifact"         // an artifact not marked for deletion has its object
)

// system is what checkInvariants inspects. Nil parts are skipped.
type system struct {
	Pool   *pgxpool.Pool
	Kube   kubernetes.Interface
	Pods   *podLog
	S3     *s3.Client
	Bucket string // only artifacts in this bucket are checked
}

type violation struct {
	Rule   string
	Detail string
}

func (v violation) String() string { return v.Rule + ": " + v.Detail }

// liveRun is the SQL condition of a run that holds its admission: GPUs, a concurrency slot
// and a reservation.
const liveRun = `r.status IN ('pending', 'running')`

// sqlChecks are the database invariants. Each query returns one text column per violation.
// They run in one repeatable-read transaction, so they see a single snapshot even while the
// daemon works.
var sqlChecks = []struct{ rule, sql string }{
	{ruleJobState, `
SELECT format('job %s is %s with %s live runs', j.id, j.status,
              count(r.id) FILTER (WHERE ` + liveRun + `))
FROM jobs j LEFT JOIN runs r ON r.job_id = j.id AND r.job_created_at = j.created_at
GROUP BY j.id, j.status
HAVING NOT ((j.status = 'running' AND count(r.id) FILTER (WHERE ` + liveRun + `) = 1)
         OR (j.status IN ('submitted', 'queued', 'completed', 'failed', 'eval_failed')
             AND count(r.id) FILTER (WHERE ` + liveRun + `) = 0)
         -- A paused or cancelled job's run stays live while the dispatcher stops its pod.
         OR (j.status IN ('paused', 'cancelled')
             AND count(r.id) FILTER (WHERE ` + liveRun + ` AND r.stop_status IS NULL) = 0
             AND count(r.id) FILTER (WHERE ` + liveRun + `) <= 1))`},
	{ruleQueue, `
SELECT format('job %s is queued but missing from job_queue', j.id)
FROM jobs j WHERE j.status = 'queued'
  AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.job_id = j.id AND q.job_created_at = j.created_at)
UNION ALL
SELECT format('job_queue lists job %s, whose status is %s', q.job_id, COALESCE(j.status::text, 'missing'))
FROM job_queue q LEFT JOIN jobs j ON j.id = q.job_id AND j.created_at = q.job_created_at
WHERE j.status IS DISTINCT FROM 'queued'`},
	{ruleRunCount, `
SELECT format('job %s has run_count %s but %s runs', j.id, j.run_count, count(r.id))
FROM jobs j LEFT JOIN runs r ON r.job_id = j.id AND r.job_created_at = j.created_at
GROUP BY j.id, j.run_count HAVING j.run_count <> count(r.id)`},
	{ruleOverlappingRun, `
SELECT format('job %s: run %s was created at %s, before run %s ended (%s, status %s)',
              a.job_id, b.run_number, b.created_at, a.run_number, a.completed_at, a.status)
FROM runs a JOIN runs b ON b.job_id = a.job_id AND b.run_number > a.run_number
WHERE b.created_at < COALESCE(a.completed_at, 'infinity')`},
	// The quota's numeric(14,4) rounds each run's numeric(14,6) hours once when it is
	// debited, so the totals may differ by half a unit of the fourth decimal per run.
	{ruleUsedHours, `
SELECT format('project %s: quota used %s GPU-hours, its %s ended runs %s', q.project_id,
              q.gpu_hours_used, COALESCE(e.runs, 0), COALESCE(e.hours, 0))
FROM quotas q LEFT JOIN (
    SELECT j.project_id, sum(r.gpu_hours_used) AS hours, count(*) AS runs
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE NOT (` + liveRun + `) GROUP BY j.project_id) e ON e.project_id = q.project_id
WHERE abs(q.gpu_hours_used - COALESCE(e.hours, 0)) > 0.00005 * COALESCE(e.runs, 0) + 0.000001`},
	{ruleBudget, `
SELECT format('project %s: used %s + reserved %s GPU-hours > budget %s', project_id,
              gpu_hours_used, gpu_hours_reserved, gpu_hours_budget)
FROM quotas WHERE gpu_hours_used + gpu_hours_reserved > gpu_hours_budget`},
	{ruleReservation, `
SELECT format('project %s: quota reserves %s GPU-hours and %s slots, its live runs %s and %s',
              q.project_id, q.gpu_hours_reserved, q.current_concurrent,
              COALESCE(l.hours, 0), COALESCE(l.runs, 0))
FROM quotas q LEFT JOIN (
    SELECT j.project_id, sum(r.gpu_hours_reserved - r.gpu_hours_charged) AS hours, count(*) AS runs
    FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
    WHERE ` + liveRun + ` GROUP BY j.project_id) l ON l.project_id = q.project_id
WHERE q.gpu_hours_reserved <> COALESCE(l.hours, 0) OR q.current_concurrent <> COALESCE(l.runs, 0)`},
	{ruleModelAllocated, `
SELECT format('model %s: %s thousandths allocated, its live runs hold %s', m.model,
              m.allocated_milli, COALESCE(l.milli, 0))
FROM gpu_models m LEFT JOIN (
    SELECT r.gpu_model, sum(r.gpu_milli) AS milli FROM runs r
    WHERE ` + liveRun + ` AND r.gpu_model IS NOT NULL GROUP BY r.gpu_model) l ON l.gpu_model = m.model
WHERE m.allocated_milli <> COALESCE(l.milli, 0)`},
}

// checkInvariants returns every broken invariant of sys. An error means the check itself
// could not run.
func checkInvariants(ctx context.Context, sys system) ([]violation, error) {
	tx, err := sys.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("begin the invariant check: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	var out []violation
	for _, check := range sqlChecks {
		details, err := queryStrings(ctx, tx, check.sql)
		if err != nil {
			return nil, fmt.Errorf("check %s: %w", check.rule, err)
		}
		for _, d := range details {
			out = append(out, violation{check.rule, d})
		}
	}
	if sys.Kube != nil {
		found, err := checkPods(ctx, tx, sys.Kube)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	if sys.Pods != nil {
		for _, d := range sys.Pods.Violations() {
			out = append(out, violation{ruleTwoLivePods, d})
		}
	}
	if sys.S3 != nil {
		found, err := checkArtifacts(ctx, tx, sys.S3, sys.Bucket)
		if err != nil {
			return nil, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func queryStrings(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// runRow is what checkPods needs of a run.
type runRow struct {
	ID        uuid.UUID  `db:"id"`
	Status    string     `db:"status"`
	GPUMilli  int        `db:"gpu_milli"`
	Used      float64    `db:"used"`
	Reserved  float64    `db:"reserved"`
	Namespace string     `db:"namespace"`
	PodName   string     `db:"pod_name"`
	StartedAt *time.Time `db:"started_at"`
}

// checkPods compares the runs with the pods of the database's project namespaces. No pod
// may run for a run that ended, and no running run may lack its pod. An ended run's hours
// must be its GPUs times the run time its pod reports.
func checkPods(ctx context.Context, tx pgx.Tx, kube kubernetes.Interface) ([]violation, error) {
	rows, err := tx.Query(ctx, `
SELECT r.id, r.status::text AS status, r.gpu_milli, r.gpu_hours_used::float8 AS used,
       r.gpu_hours_reserved::float8 AS reserved, p.k8s_namespace AS namespace, r.pod_name,
       r.started_at
FROM runs r JOIN jobs j ON j.id = r.job_id AND j.created_at = r.job_created_at
JOIN projects p ON p.id = j.project_id`)
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByName[runRow])
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	namespaces, err := queryStrings(ctx, tx, `SELECT k8s_namespace FROM projects`)
	if err != nil {
		return nil, fmt.Errorf("read project namespaces: %w", err)
	}
	pods := map[string]*corev1.Pod{} // run id -> pod
	for _, ns := range namespaces {
		list, err := kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{
			LabelSelector: dispatcher.LabelManagedBy + "=" + dispatcher.ManagedByValue})
		if err != nil {
			return nil, fmt.Errorf("list pods of namespace %s: %w", ns, err)
		}
		for i := range list.Items {
			pods[list.Items[i].Labels[dispatcher.LabelRunID]] = &list.Items[i]
		}
	}

	var out []violation
	byID := map[string]runRow{}
	for _, run := range runs {
		byID[run.ID.String()] = run
		out = append(out, comparePod(run, pods[run.ID.String()])...)
	}
	for runID, pod := range pods {
		run, ok := byID[runID]
		if podLive(pod) && (!ok || (run.Status != "pending" && run.Status != "running")) {
			out = append(out, violation{ruleOrphanPod, fmt.Sprintf("pod %s/%s runs, but its run %s is %q",
				pod.Namespace, pod.Name, runID, run.Status)})
		}
	}
	return out, nil
}

// comparePod checks one run against its pod, which may be nil.
func comparePod(run runRow, pod *corev1.Pod) []violation {
	if run.Status == "running" && (pod == nil || pod.DeletionTimestamp != nil) {
		return []violation{{ruleMissingPod, fmt.Sprintf("run %s is running, but its pod %s/%s is gone",
			run.ID, run.Namespace, run.PodName)}}
	}
	if pod == nil || (run.Status != "completed" && run.Status != "failed") {
		return nil
	}
	started, finished, ok := containerTimes(pod)
	if !ok {
		return nil
	}
	want := math.Min(run.Reserved, float64(run.GPUMilli)/1000*finished.Sub(started).Hours())
	if math.Abs(run.Used-want) > 0.000001 {
		return []violation{{ruleRunHours, fmt.Sprintf(
			"run %s (%s) used %.6f GPU-hours, its pod %s ran %s on %d thousandths of a GPU: want %.6f",
			run.ID, run.Status, run.Used, pod.Name, finished.Sub(started), run.GPUMilli, want)}}
	}
	return nil
}

// containerTimes returns when the pod's first container started and stopped, if it has.
func containerTimes(pod *corev1.Pod) (started, finished time.Time, ok bool) {
	if len(pod.Status.ContainerStatuses) == 0 {
		return started, finished, false
	}
	term := pod.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.StartedAt.IsZero() {
		return started, finished, false
	}
	return term.StartedAt.Time, term.FinishedAt.Time, true
}

func podLive(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil &&
		pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// checkArtifacts checks that every artifact of bucket that retention has not begun to
// delete has its object. Retention sets delete_started_at before it deletes the object and
// deleted_at after, so a crash between the two leaves a marked row without an object,
// which the next retention run finishes.
func checkArtifacts(ctx context.Context, tx pgx.Tx, client *s3.Client, bucket string) ([]violation, error) {
	uris, err := queryStrings(ctx, tx, `SELECT storage_uri FROM artifacts WHERE delete_started_at IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("read artifacts: %w", err)
	}
	var out []violation
	for _, uri := range uris {
		u, err := url.Parse(uri)
		if err != nil || u.Scheme != "s3" {
			out = append(out, violation{ruleArtifact, fmt.Sprintf("artifact %q is not an s3:// URI", uri)})
			continue
		}
		if u.Host != bucket {
			continue
		}
		_, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(u.Host),
			Key: aws.String(strings.TrimPrefix(u.Path, "/"))})
		var notFound *s3types.NotFound
		switch {
		case errors.As(err, &notFound):
			out = append(out, violation{ruleArtifact, fmt.Sprintf("artifact %s is not marked deleted, but its object is gone", uri)})
		case err != nil:
			return nil, fmt.Errorf("head %s: %w", uri, err)
		}
	}
	return out, nil
}

// requireInvariants fails the test for every broken invariant, naming the seed that
// reproduces the scenario.
func requireInvariants(t *testing.T, seed uint64, sys system) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	found, err := checkInvariants(ctx, sys)
	if err != nil {
		t.Fatalf("invariant check (seed %d): %v", seed, err)
	}
	for _, v := range found {
		t.Errorf("invariant broken (seed %d): %s", seed, v)
	}
}
