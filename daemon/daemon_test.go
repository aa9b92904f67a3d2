package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/promtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

const wait = 60 * time.Second

// replica describes one daemon of a test: its name is its Lease identity and the user
// agent of its Kubernetes client, which the apiserver records as the manager of the pods it
// creates.
type replica struct {
	name   string
	lease  string // Lease name, unique per test
	store  *store.Store
	listen bool
}

// start runs the replica's daemon with leader election on the test's Lease.
func (r replica) start(t *testing.T, timing daemon.LeaderElection) (*daemontest.Harness, string) {
	t.Helper()
	var addr string
	h := daemontest.Start(t, daemontest.Options{Store: r.store, Configure: func(cfg *daemon.Config) {
		cfg.Kube = clientAs(t, r.name)
		timing.Namespace, timing.Name, timing.Identity = "default", r.lease, r.name
		cfg.LeaderElection = &timing
		if r.listen {
			listener, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr = listener.Addr().String()
			cfg.Listener = listener
			cfg.Registry = prometheus.NewRegistry()
			cfg.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		}
	}})
	return h, addr
}

// fastElection keeps the defaults' proportions but hands over within a second of a release.
var fastElection = daemon.LeaderElection{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second,
	RetryPeriod: 500 * time.Millisecond}

func clientAs(t *testing.T, userAgent string) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(daemontest.Kube.Config)
	cfg.UserAgent = userAgent
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func uniqueName(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s not reached within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// gpuNodes creates n Ready KWOK nodes of a model no other test uses, deleted when the test
// ends, and returns the model.
func gpuNodes(t *testing.T, n, gpus int) string {
	t.Helper()
	ctx := context.Background()
	model := strings.ToUpper(uniqueName("M"))
	var names []string
	for i := range n {
		name := fmt.Sprintf("node-%s-%d", strings.ToLower(model), i)
		if _, err := daemontest.Kube.CreateGPUNode(ctx, name, model, gpus, 64000, 262144); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	t.Cleanup(func() {
		for _, name := range names {
			_ = daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		}
	})
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := daemontest.Kube.WaitNodesReady(waitCtx, names...); err != nil {
		t.Fatal(err)
	}
	return model
}

func gpuSpec(model string, sim *jobspec.Simulation) jobspec.Spec {
	return jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 3600, Simulation: sim,
		Resources: jobspec.Resources{GPUs: 1, GPUModels: []string{model}, CPUMilli: 100, MemoryMiB: 64}}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	return getWithToken(t, url, "")
}

func lease(t *testing.T, name string) *coordinationv1.Lease {
	t.Helper()
	l, err := daemontest.Kube.Clientset.CoordinationV1().Leases("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func TestReadyzChecksSchemaVersion(t *testing.T) {
	r := replica{name: "ready-a", lease: uniqueName("lease"), listen: true}
	h, addr := r.start(t, fastElection)
	waitFor(t, wait, "leadership", h.Daemon.Leading)
	waitFor(t, wait, "ready", func() bool { code, _ := httpGet(t, "http://"+addr+"/readyz"); return code == 200 })

	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}

	// A schema one version behind the binary makes the replica unready.
	ctx := context.Background()
	var version int
	if err := h.Store.Pool().QueryRow(ctx, `SELECT version FROM schedulerd_schema_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.Pool().Exec(ctx, `UPDATE schedulerd_schema_version SET version = $1`, version-1); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(t, "http://"+addr+"/readyz")
	wantBody := fmt.Sprintf("database schema is at version %d, this binary needs %d\n", version-1, version)
	if code != http.StatusServiceUnavailable || body != wantBody {
		t.Errorf("/readyz with an old schema = %d %q, want 503 %q", code, body, wantBody)
	}
	if _, err := h.Store.Pool().Exec(ctx, `UPDATE schedulerd_schema_version SET version = $1`, version); err != nil {
		t.Fatal(err)
	}
	if code, _ := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz after the schema was restored = %d, want 200", code)
	}

	// A schema one version ahead, as a rolling upgrade leaves the old replicas, keeps them
	// ready.
	if _, err := h.Store.Pool().Exec(ctx, `UPDATE schedulerd_schema_version SET version = $1`, version+1); err != nil {
		t.Fatal(err)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
		t.Errorf("/readyz with a newer schema = %d %q, want 200", code, body)
	}
	if _, err := h.Store.Pool().Exec(ctx, `UPDATE schedulerd_schema_version SET version = $1`, version); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsScrapePassesPromtool(t *testing.T) {
	r := replica{name: "metrics-a", lease: uniqueName("lease"), listen: true}
	h, addr := r.start(t, fastElection)
	model := gpuNodes(t, 1, 8)
	h.Project("vision", 100, 10)

	done := h.Submit("vision", 90, gpuSpec(model, &jobspec.Simulation{RunSeconds: 1}))
	oom := gpuSpec(model, &jobspec.Simulation{RunSeconds: 1, ExitCode: 137, Reason: "OOMKilled"})
	oom.MaxAttempts = 1
	failed := h.Submit("vision", 10, oom)
	h.WaitJob(done.ID, wait, "completed", daemontest.Status(store.JobCompleted))
	h.WaitJob(failed.ID, wait, "failed", daemontest.Status(store.JobFailed))

	httpGet(t, "http://"+addr+"/healthz")
	code, scrape := httpGet(t, "http://"+addr+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	promtest.CheckMetrics(t, []byte(scrape))

	for _, line := range []string{
		`schedulerd_runs_ended_total{cause="completed"} 1`,
		`schedulerd_runs_ended_total{cause="oom_killed"} 1`,
		`schedulerd_admission_decisions_total{result="admitted"} 2`,
		`schedulerd_leader 1`,
		`schedulerd_dispatcher_synced 1`,
		`schedulerd_database_up 1`,
		`schedulerd_dispatch_duration_seconds_count 2`,
		`schedulerd_job_submit_to_running_seconds_count{tier="critical"} 1`,
		`schedulerd_job_submit_to_running_seconds_count{tier="low"} 1`,
		`schedulerd_jobs{project="vision",status="queued",tier="critical"} 0`,
		`schedulerd_project_max_concurrent_jobs{project="vision"} 10`,
		`schedulerd_gpu_model_capacity_gpus{model="` + model + `"} 8`,
		`schedulerd_http_requests_total{code="200",route="GET /healthz"} 1`,
	} {
		if !strings.Contains(scrape, line) {
			t.Errorf("scrape lacks %s", line)
		}
	}
	if !strings.Contains(scrape, `schedulerd_pods{phase="Running"}`) {
		t.Error("scrape lacks the pod phase gauge of the leading replica")
	}
}

func TestLostLeaseStopsLoops(t *testing.T) {
	name := uniqueName("lease")
	r := replica{name: "lost-a", lease: name}
	timing := daemon.LeaderElection{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second,
		RetryPeriod: 200 * time.Millisecond}
	h, _ := r.start(t, timing)
	waitFor(t, wait, "leadership", h.Daemon.Leading)
	if err := h.Daemon.CheckLease(); err != nil {
		t.Errorf("CheckLease while leading: %v, want nil", err)
	}

	// Another holder takes the Lease over, as after a network partition: renewals fail
	// from now on.
	l := lease(t, name)
	thief, now, seconds := "thief", metav1.NewMicroTime(time.Now()), int32(60)
	l.Spec.HolderIdentity, l.Spec.RenewTime, l.Spec.LeaseDurationSeconds = &thief, &now, &seconds
	if _, err := daemontest.Kube.Clientset.CoordinationV1().Leases("default").Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	taken := time.Now()

	select {
	case <-h.Exited():
	case <-time.After(timing.RenewDeadline + 5*time.Second):
		t.Fatalf("daemon still running %s after its Lease was taken", time.Since(taken))
	}
	if err := h.Err(); !errors.Is(err, daemon.ErrLeaseLost) {
		t.Errorf("Run returned %v, want ErrLeaseLost", err)
	}
	if h.Daemon.Leading() {
		t.Error("daemon still reports leading after it lost the Lease")
	}
	if err := h.Daemon.CheckLease(); err == nil {
		t.Error("CheckLease passed after the Lease was taken, want an error")
	}
	if got := holder(lease(t, name)); got != thief {
		t.Errorf("Lease held by %q after the loss, want %q untouched", got, thief)
	}
	t.Logf("loops stopped %s after the Lease was taken", time.Since(taken).Round(time.Millisecond))
}
