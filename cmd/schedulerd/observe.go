package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/klog/v2"

	"github.com/schedulerd/schedulerd/config"
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

// leaderElection returns the Lease settings of `schedulerd run`, or nil when leader
// election is off. An empty namespace means the pod's own, or "default" outside a cluster.
func leaderElection(cfg config.Config) *daemon.LeaderElection {
	if !cfg.LeaderElection {
		return nil
	}
	namespace := cfg.LeaderElectionNamespace
	if namespace == "" {
		if b, err := os.ReadFile(serviceAccountNamespaceFile); err == nil {
			namespace = strings.TrimSpace(string(b))
		}
	}
	if namespace == "" {
		namespace = "default"
	}
	return &daemon.LeaderElection{Namespace: namespace, Name: "schedulerd", Identity: daemon.DefaultIdentity()}
}
