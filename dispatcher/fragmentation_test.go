package dispatcher

import "testing"

func TestOnlyGPUsShort(t *testing.T) {
	cases := []struct {
		name    string
		message string
		want    bool
	}{
		// Written by kube-scheduler 1.37.2 in TestFragmentedJobWaitsForGPUs and
		// TestPodNoNodeCanHoldCounts.
		{"GPUs short on every node", "0/2 nodes are available: 2 Insufficient nvidia.com/gpu, " +
			"2 Insufficient schedulerd.io/gpu-milli. preemption: 0/2 nodes are available: " +
			"2 No preemption victims found for incoming pod.", true},
		{"GPUs short beside a node of another model", "0/3 nodes are available: 1 node(s) didn't " +
			"match Pod's node affinity/selector, 2 Insufficient nvidia.com/gpu, 2 Insufficient " +
			"schedulerd.io/gpu-milli. preemption: 0/3 nodes are available: 1 Preemption is not " +
			"helpful for scheduling, 2 No preemption victims found for incoming pod.", true},
		// Written by kube-scheduler 1.37.2 in TestUnschedulableJobFailsAtPreemptionLimit.
		{"CPU short", "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are " +
			"available: 1 No preemption victims found for incoming pod.", false},
		// Built from the reasons of kube-scheduler 1.37.2's plugins.
		{"GPUs short beside cordoned and tainted nodes", "0/4 nodes are available: 1 node(s) had " +
			"untolerated taint(s), 1 node(s) were unschedulable, 2 Insufficient nvidia.com/gpu.", true},
		{"GPU and CPU short", "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient nvidia.com/gpu.", false},
		{"only nodes the pod may not use", "0/2 nodes are available: 1 node(s) didn't match Pod's " +
			"node affinity/selector, 1 node(s) were unschedulable.", false},
		{"too many pods", "0/1 nodes are available: 1 Insufficient nvidia.com/gpu, 1 Too many pods.", false},
		{"PreFilter message", "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.", false},
		{"no message", "", false},
		{"another form", "Insufficient nvidia.com/gpu", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := onlyGPUsShort(c.message); got != c.want {
				t.Errorf("onlyGPUsShort(%q) = %t, want %t", c.message, got, c.want)
			}
		})
	}
}
