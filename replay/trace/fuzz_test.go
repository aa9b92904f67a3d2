package trace

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzReadTasks(f *testing.F) {
	f.Add([]byte(taskHeader + taskRow()))
	f.Add([]byte(taskHeader + taskRow("num_gpu", "8", "gpu_milli", "1000", "gpu_spec", "V100M16|G3", "scheduled_time", "")))
	f.Add([]byte(taskHeader + taskRow("num_gpu", "0", "gpu_milli", "0", "qos", "BE", "pod_phase", "Failed")))
	f.Add([]byte(taskHeader + taskRow() + taskRow()))
	f.Add([]byte("name,num_gpu\n\"a\nb\",1\n"))
	f.Add([]byte(""))

	f.Fuzz(func(t *testing.T, data []byte) {
		tasks, err := ReadTasksFrom(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			checkParseError(t, err, tasks == nil)
			return
		}

		names := map[string]bool{}
		previousLine := 0
		for _, task := range tasks {
			checkTaskInvariants(t, task)

			if names[task.Name] {
				t.Errorf("duplicate name %q accepted", task.Name)
			}
			names[task.Name] = true

			if task.Line <= previousLine {
				t.Errorf("task %q on line %d after line %d", task.Name, task.Line, previousLine)
			}
			previousLine = task.Line
		}
	})
}

func FuzzReadNodes(f *testing.F) {
	f.Add([]byte("sn,cpu_milli,memory_mib,gpu,model\nopenb-node-0000,64000,262144,2,P100\n"))
	f.Add([]byte("model,gpu,sn,memory_mib,cpu_milli\n,0,n1,1,1\nT4,4,n2,2,2\n"))
	f.Add([]byte("sn,cpu_milli,memory_mib,gpu,model\n"))
	f.Add([]byte("sn,cpu_milli,memory_mib,gpu,model\nn,1,1,65,T4\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := ReadNodesFrom(bytes.NewReader(data), "fuzz.csv")
		if err != nil {
			checkParseError(t, err, nodes == nil)
			return
		}

		if len(nodes) == 0 {
			t.Errorf("no nodes and no error")
		}

		serials := map[string]bool{}
		for _, node := range nodes {
			checkNodeInvariants(t, node)

			if serials[node.SerialNumber] {
				t.Errorf("duplicate sn %q accepted", node.SerialNumber)
			}
			serials[node.SerialNumber] = true
		}
	})
}

// checkParseError checks that a reader error from an in-memory input is a
// located *ParseError and that no partial result came with it.
func checkParseError(t *testing.T, err error, resultNil bool) {
	t.Helper()

	var parseErr *ParseError
	if !errors.As(err, &parseErr) {
		t.Fatalf("error %v (%T) is not a *ParseError", err, err)
	}
	if parseErr.File != "fuzz.csv" || !strings.HasPrefix(err.Error(), "fuzz.csv") {
		t.Errorf("error %q does not start with the file name", err)
	}
	if parseErr.Line < 0 || parseErr.Column < 0 || parseErr.Err == nil {
		t.Errorf("ParseError %+v has a negative position or no cause", parseErr)
	}
	if !resultNil {
		t.Errorf("partial result returned with error %v", err)
	}
}

// checkTaskInvariants restates the reader's rules without calling its code.
func checkTaskInvariants(t *testing.T, task Task) {
	t.Helper()

	const maxTime = 9_223_372_036 // seconds that fit in a time.Duration
	if task.Name == "" || task.Line < 2 || task.Source != "fuzz.csv" {
		t.Errorf("task %+v has no name, an impossible line or the wrong source", task)
	}
	if task.CPUMilli < 0 || task.MemoryMiB < 0 || task.NumGPU < 0 || task.NumGPU > 64 {
		t.Errorf("task %q resources out of range: %+v", task.Name, task)
	}

	validShare := (task.NumGPU == 0 && task.GPUShareMilli == 0) ||
		(task.NumGPU == 1 && task.GPUShareMilli >= 1 && task.GPUShareMilli <= 1000) ||
		(task.NumGPU > 1 && task.GPUShareMilli == 1000)
	if !validShare {
		t.Errorf("task %q has num_gpu %d with gpu_milli %d", task.Name, task.NumGPU, task.GPUShareMilli)
	}

	for _, model := range task.AllowedModels {
		if model == "" || strings.Contains(model, "|") {
			t.Errorf("task %q has model %q", task.Name, model)
		}
	}

	switch task.QoS {
	case "LS", "Guaranteed", "Burstable", "BE":
	default:
		t.Errorf("task %q has qos %q", task.Name, task.QoS)
	}
	switch task.Phase {
	case "Succeeded", "Running", "Pending", "Failed":
	default:
		t.Errorf("task %q has pod_phase %q", task.Name, task.Phase)
	}

	if task.CreationTime < 0 || task.DeletionTime < task.CreationTime || task.DeletionTime > maxTime {
		t.Errorf("task %q times out of order: %+v", task.Name, task)
	}
	if task.Scheduled && (task.ScheduledTime < task.CreationTime || task.ScheduledTime > task.DeletionTime) {
		t.Errorf("task %q scheduled outside its life: %+v", task.Name, task)
	}
	if !task.Scheduled && task.ScheduledTime != 0 {
		t.Errorf("task %q has ScheduledTime %d but Scheduled false", task.Name, task.ScheduledTime)
	}

	if task.RunLength() < 0 || GPUHours(task) < 0 || task.GPUMilli() > 64_000 {
		t.Errorf("task %q has run %v, GPU-hours %v, GPU milli %d", task.Name, task.RunLength(), GPUHours(task), task.GPUMilli())
	}
	if !strings.HasPrefix(task.IdempotencyKey(), "trace-"+task.Name+"-") {
		t.Errorf("task %q has key %q", task.Name, task.IdempotencyKey())
	}
}

func checkNodeInvariants(t *testing.T, node Node) {
	t.Helper()

	if node.SerialNumber == "" || node.Line < 2 {
		t.Errorf("node %+v has no sn or an impossible line", node)
	}
	if node.CPUMilli < 0 || node.MemoryMiB < 0 || node.GPUs < 0 || node.GPUs > 64 {
		t.Errorf("node %q resources out of range: %+v", node.SerialNumber, node)
	}
	if node.GPUs > 0 && node.Model == "" {
		t.Errorf("node %q has %d GPUs and no model", node.SerialNumber, node.GPUs)
	}
}
