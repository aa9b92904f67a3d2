package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// PodPhases lists the Kubernetes pod phases, the phase label of schedulerd_pods.
var PodPhases = []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}

// PodCounter returns the number of schedulerd's pods by phase, and false when it has no
// view of them (the dispatcher of a replica that does not lead has not synced its cache).
type PodCounter func() (map[string]int, bool)

type podCollector struct {
	count PodCounter
	desc  *prometheus.Desc
}

// CollectPods registers the collector of schedulerd_pods, which calls count on every scrape.
// Only the leading replica reports the series, so summing over replicas counts each pod once.
func (m *Metrics) CollectPods(count PodCounter) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&podCollector{count: count, desc: prometheus.NewDesc("schedulerd_pods",
		"Pods of schedulerd's runs in the dispatcher's informer cache of the leading replica, "+
			"by phase: "+labelList(PodPhases)+".",
		[]string{"phase"}, nil)})
}

func (c *podCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *podCollector) Collect(ch chan<- prometheus.Metric) {
	byPhase, ok := c.count()
	if !ok {
		return
	}
	for _, phase := range PodPhases {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(byPhase[phase]), phase)
	}
}

// CollectDispatcherSynced registers schedulerd_dispatcher_synced, which calls synced on every
// scrape. /readyz leaves the dispatcher out because the admin API does not need it, so a
// leader that cannot reach the cluster shows only here.
func (m *Metrics) CollectDispatcherSynced(synced func() bool) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "schedulerd_dispatcher_synced",
		Help: "1 while this replica leads and its dispatcher has filled its pod and node caches " +
			"from the Kubernetes API, else 0.",
	}, func() float64 {
		if synced() {
			return 1
		}
		return 0
	}))
}
