//go:build reliability

package reliability_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/schedulerd/schedulerd/internal/daemontest"
	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/internal/s3test"
	"github.com/schedulerd/schedulerd/store"
)

// seedEnv overrides every scenario's fixed random seed.
const seedEnv = "SCHEDULERD_RELIABILITY_SEED"

// daemonAppName is the application_name of the daemon's database connections, so that a
// scenario can cut them and leave its own.
const daemonAppName = "schedulerd-under-test"

func TestMain(m *testing.M) {
	// The pod watch retries once a second while the apiserver is down, and client-go logs
	// each retry through klog. The scenarios log what happened themselves.
	klog.SetLogger(logr.Discard())
	s3test.Main(m, func(m *testing.M) int { return daemontest.Run(m, pgtest.Run) })
}

// scenario is one test's database, store, pod watch and random source.
type scenario struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	url   string
	store *store.Store
	pods  *podLog
	bin   string
	// leaseNamespace is this scenario's own namespace for the daemons' Lease, so that a
	// Lease a killed daemon of another scenario left behind never delays this one.
	leaseNamespace string
}

// newScenario starts a scenario with seed, or the seed in seedEnv.
func newScenario(t *testing.T, seed uint64) *scenario {
	t.Helper()
	if v := os.Getenv(seedEnv); v != "" {
		parsed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("invalid %s %q: want an unsigned integer", seedEnv, v)
		}
		seed = parsed
	}
	t.Logf("random seed %d (set %s to change it)", seed, seedEnv)
	url := pgtest.NewDatabase(t)
	s, err := store.Open(context.Background(), url, store.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	sc := &scenario{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 1)), url: url, store: s,
		pods: watchPods(t, daemontest.Kube.Clientset), bin: daemontest.BuildBinary(t)}
	sc.leaseNamespace = sc.createNamespace("lease")
	return sc
}

// createNamespace creates a namespace with a unique name, deleted when the test ends.
func (sc *scenario) createNamespace(prefix string) string {
	sc.t.Helper()
	name := prefix + "-" + uuid.NewString()[:8]
	namespaces := daemontest.Kube.Clientset.CoreV1().Namespaces()
	_, err := namespaces.Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		sc.t.Fatalf("create namespace %s: %v", name, err)
	}
	sc.t.Cleanup(func() { _ = namespaces.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

// daemon returns a daemon process on the scenario's database, not yet started. extraEnv
// adds or overrides settings. Its log is kept in the test's temporary directory and
// printed when the test fails.
func (sc *scenario) daemon(name string, extraEnv ...string) *daemontest.Process {
	sc.t.Helper()
	dbURL := sc.url + "&application_name=" + daemonAppName
	if !strings.Contains(sc.url, "?") {
		dbURL = sc.url + "?application_name=" + daemonAppName
	}
	env := append(os.Environ(),
		"SCHEDULERD_DATABASE_URL="+dbURL,
		"SCHEDULERD_KUBECONFIG="+daemontest.Kube.Kubeconfig,
		"SCHEDULERD_HTTP_ADDR=127.0.0.1:0",
		"SCHEDULERD_POLL_INTERVAL=200ms",
		"SCHEDULERD_LOG_LEVEL=debug",
		"SCHEDULERD_LEADER_ELECTION_NAMESPACE="+sc.leaseNamespace)
	p := &daemontest.Process{T: sc.t, Bin: sc.bin, Env: append(env, extraEnv...),
		LogPath: filepath.Join(sc.t.TempDir(), name+".log")}
	sc.t.Cleanup(func() {
		if sc.t.Failed() {
			sc.t.Logf("log of %s: %s", name, tail(p.LogPath, 40))
		}
	})
	return p
}

// system returns what the invariant check inspects for this scenario.
func (sc *scenario) system() system {
	return system{Pool: sc.store.Pool(), Kube: daemontest.Kube.Clientset, Pods: sc.pods}
}

// waitFor polls cond every 200 ms until it holds, failing the test after timeout.
func (sc *scenario) waitFor(timeout time.Duration, what string, cond func() bool) {
	sc.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			sc.t.Fatalf("%s not reached within %s; jobs by status %v (seed %d)", what, timeout,
				sc.jobsByStatus(), sc.seed)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// count runs a query that returns one integer, retrying while the database is away.
func (sc *scenario) count(sql string, args ...any) int {
	sc.t.Helper()
	var n int
	var err error
	for range 50 {
		if err = sc.store.Pool().QueryRow(context.Background(), sql, args...).Scan(&n); err == nil {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
	sc.t.Fatalf("%s: %v", sql, err)
	return 0
}

// jobsByStatus counts the scenario's jobs by status.
func (sc *scenario) jobsByStatus() map[string]int {
	sc.t.Helper()
	rows, err := sc.store.Pool().Query(context.Background(), `SELECT status::text, count(*)::int FROM jobs GROUP BY 1`)
	if err != nil {
		sc.t.Fatal(err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			sc.t.Fatal(err)
		}
		counts[status] = n
	}
	if err := rows.Err(); err != nil {
		sc.t.Fatal(err)
	}
	return counts
}

// tail returns the last n lines of a daemon log above debug level, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(line, `"level":"DEBUG`) {
			lines = append(lines, line)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}
