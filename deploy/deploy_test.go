// The tests of the kustomize base: every manifest passes the real apiserver's server-side
// dry run, and a daemon whose client has only the base's RBAC schedules a job.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/schedulerd/schedulerd/daemon"
	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

func TestMain(m *testing.M) { daemontest.Main(m) }

// namespace and serviceAccount are where the base runs schedulerd.
const namespace, serviceAccount = "schedulerd", "schedulerd"

// kustomizationResources returns the files kustomization.yaml lists. It fails the test if
// the kustomization uses anything but resources, because then applying each file would no
// longer give what kustomize renders.
func kustomizationResources(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := sigsyaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	var files []string
	for key, value := range k {
		switch key {
		case "apiVersion", "kind":
		case "resources":
			for _, f := range value.([]any) {
				files = append(files, f.(string))
			}
		default:
			t.Fatalf("kustomization.yaml sets %s; the test applies the listed files as they are, so keep transformers in overlays", key)
		}
	}
	return files
}

func TestKustomizationListsEveryManifest(t *testing.T) {
	listed := kustomizationResources(t)
	yamls, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range yamls {
		if f != "kustomization.yaml" && !slices.Contains(listed, f) {
			t.Errorf("%s is not in kustomization.yaml", f)
		}
	}
}

// objects decodes every document of a manifest file.
func objects(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	decoder := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var obj map[string]any
		err := decoder.Decode(&obj)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if obj != nil {
			objs = append(objs, &unstructured.Unstructured{Object: obj})
		}
	}
}

// applier applies objects with server-side apply, as `kubectl apply --server-side` does.
type applier struct {
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	dyn, err := dynamic.NewForConfig(daemontest.Kube.Config)
	if err != nil {
		t.Fatal(err)
	}
	discovery := memory.NewMemCacheClient(daemontest.Kube.Clientset.Discovery())
	return &applier{dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(discovery)}
}

func (a *applier) apply(ctx context.Context, obj *unstructured.Unstructured, dryRun bool) error {
	gvk := obj.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: "schedulerd-deploy-test", Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	_, err = a.dynamic.Resource(mapping.Resource).Namespace(obj.GetNamespace()).Apply(ctx, obj.GetName(), obj, opts)
	return err
}

// createNamespace creates the base's namespace for real: the apiserver rejects a namespaced
// object, dry run or not, in a namespace that does not exist.
func createNamespace(t *testing.T) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	_, err := daemontest.Kube.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func TestManifestsPassServerSideDryRun(t *testing.T) {
	createNamespace(t)
	a := newApplier(t)
	ctx := context.Background()
	kinds := map[string]bool{}
	for _, file := range kustomizationResources(t) {
		for _, obj := range objects(t, file) {
			kinds[obj.GetKind()] = true
			if err := a.apply(ctx, obj, true); err != nil {
				t.Errorf("%s: %s %s: %v", file, obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
		"RoleBinding", "Deployment", "Service", "PodDisruptionBudget"} {
		if !kinds[kind] {
			t.Errorf("the base has no %s", kind)
		}
	}
}

// serviceAccountClient returns a client that acts as the base's service account, by
// impersonation, so that the apiserver authorizes its requests with the base's RBAC only.
func serviceAccountClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	cfg := rest.CopyConfig(daemontest.Kube.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + namespace + ":" + serviceAccount}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestDaemonRunsWithManifestRBAC(t *testing.T) {
	createNamespace(t)
	a := newApplier(t)
	ctx := context.Background()
	for _, file := range []string{"serviceaccount.yaml", "rbac.yaml"} {
		for _, obj := range objects(t, file) {
			if err := a.apply(ctx, obj, false); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
		}
	}

	h := daemontest.Start(t, daemontest.Options{Configure: func(cfg *daemon.Config) {
		cfg.Kube = serviceAccountClient(t)
		cfg.LeaderElection = &daemon.LeaderElection{Namespace: namespace, Name: "schedulerd",
			Identity: "rbac-test", RetryPeriod: 200 * time.Millisecond}
	}})
	model := "RBAC-" + strings.ToUpper(t.Name()[:4])
	node := "node-rbac-test"
	if _, err := daemontest.Kube.CreateGPUNode(ctx, node, model, 8, 64000, 65536); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = daemontest.Kube.Clientset.CoreV1().Nodes().Delete(context.Background(), node, metav1.DeleteOptions{})
	})
	h.Project("vision", 100, 10)
	job := h.Submit("vision", 50, jobspec.Spec{Image: "trainer:1", MaxRuntimeSeconds: 3600,
		Simulation: &jobspec.Simulation{RunSeconds: 1},
		Resources:  jobspec.Resources{GPUs: 1, GPUModels: []string{model}, CPUMilli: 1000, MemoryMiB: 1024}})
	h.WaitJob(job.ID, 60*time.Second, "completed", daemontest.Status(store.JobCompleted))

	// Least privilege: what schedulerd never does stays denied.
	for _, denied := range []authorizationv1.ResourceAttributes{
		{Verb: "get", Resource: "secrets", Namespace: namespace},
		{Verb: "delete", Resource: "nodes"},
		{Verb: "delete", Resource: "namespaces"},
		{Verb: "update", Resource: "pods", Namespace: "vision"},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: "default"},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: namespace,
			Name: "another-controller"},
	} {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               "system:serviceaccount:" + namespace + ":" + serviceAccount,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
			ResourceAttributes: &denied,
		}}
		got, err := daemontest.Kube.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Allowed {
			t.Errorf("the service account may %s %s %q in %q, want denied", denied.Verb, denied.Resource, denied.Name,
				denied.Namespace)
		}
	}
}

// shutdownBounds is the sum of the daemon's shutdown steps' bounds: the loops (20 s), the
// Lease's release (10 s), the HTTP server (20 s) and the cron service (10 s).
// NOTE: the sum is copied by hand from the daemon and cmd/schedulerd, so a changed bound
// needs a change here too.
const shutdownBounds = 60

// TestGraceCoversPreStopAndShutdown: the Deployment sleeps before SIGTERM, so the pod
// leaves the Service's endpoints before the listener closes, and its grace period covers
// that sleep and every shutdown step.
func TestGraceCoversPreStopAndShutdown(t *testing.T) {
	data, err := os.ReadFile("deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var deployment appsv1.Deployment
	if err := sigsyaml.UnmarshalStrict(data, &deployment); err != nil {
		t.Fatal(err)
	}
	spec := deployment.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}

	lifecycle := spec.Containers[0].Lifecycle
	if lifecycle == nil || lifecycle.PreStop == nil || lifecycle.PreStop.Sleep == nil {
		t.Fatal("container has no preStop sleep")
	}
	sleep := lifecycle.PreStop.Sleep.Seconds
	if sleep < 1 {
		t.Errorf("preStop sleep %d s, want at least 1", sleep)
	}
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatal("no terminationGracePeriodSeconds")
	}
	if grace := *spec.TerminationGracePeriodSeconds; grace < sleep+shutdownBounds {
		t.Errorf("grace period %d s, want at least %d s (preStop %d s + shutdown steps %d s)",
			grace, sleep+shutdownBounds, sleep, shutdownBounds)
	}
}

// TestBudgetLetsUnreadyPodsBeEvicted: /readyz fails on both replicas while the database is
// unreachable. With the default unhealthy-pod policy (IfHealthyBudget)
// the budget then counts no healthy pod and rejects every eviction, so a node drain waits
// for the outage to end. AlwaysAllow lets a running but unready replica be evicted.
func TestBudgetLetsUnreadyPodsBeEvicted(t *testing.T) {
	data, err := os.ReadFile("poddisruptionbudget.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var budget policyv1.PodDisruptionBudget
	if err := sigsyaml.UnmarshalStrict(data, &budget); err != nil {
		t.Fatal(err)
	}
	if got := budget.Spec.MinAvailable; got == nil || got.IntValue() != 1 {
		t.Errorf("minAvailable %v, want 1", got)
	}
	var policy policyv1.UnhealthyPodEvictionPolicyType // empty: the default, IfHealthyBudget
	if budget.Spec.UnhealthyPodEvictionPolicy != nil {
		policy = *budget.Spec.UnhealthyPodEvictionPolicy
	}
	if policy != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy %q, want %q", policy, policyv1.AlwaysAllow)
	}
}
