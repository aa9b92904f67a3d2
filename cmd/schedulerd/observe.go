package main

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"

	"github.com/schedulerd/schedulerd/daemon"
)

// serviceAccountNamespaceFile contains the namespace of a pod's service account.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// newRegistry returns the registry of `schedulerd run`: schedulerd's own series, which
// daemon.New adds, and the Go runtime and process series.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// routeKlog sends the log lines of client-go (leader election, informers) to log, so that
// every line of the daemon has the same format.
func routeKlog(log *slog.Logger) {
	klog.SetSlogLogger(log.With("component", "client-go"))
}

// leaderElection reads the leader election settings. NOTE: they are environment variables
// only, read with getenv, because the config package does not list them yet:
//
//   - SCHEDULERD_LEADER_ELECTION: true (default) or false. Turn it off only for a single
//     replica: two replicas without it would both run the scheduler and dispatcher.
//   - SCHEDULERD_LEADER_ELECTION_NAMESPACE: namespace of the Lease named schedulerd; default
//     the pod's own namespace, or "default" outside a cluster.
func leaderElection(getenv func(string) string) (*daemon.LeaderElection, error) {
	enabled := true
	if v := getenv("SCHEDULERD_LEADER_ELECTION"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("invalid SCHEDULERD_LEADER_ELECTION %q: want true or false", v)
		}
		enabled = b
	}
	if !enabled {
		return nil, nil
	}

	namespace := getenv("SCHEDULERD_LEADER_ELECTION_NAMESPACE")
	if namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			namespace = strings.TrimSpace(string(b))
		}
	}
	if namespace == "" {
		namespace = "default"
	}
	return &daemon.LeaderElection{Namespace: namespace, Name: "schedulerd", Identity: daemon.DefaultIdentity()}, nil
}
