package trace

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestReadTasksReorderedColumns(t *testing.T) {
	input := "scheduled_time,pod_phase,extra,qos,gpu_spec,gpu_milli,num_gpu,memory_mib,cpu_milli,name,deletion_time,creation_time\n" +
		"20,Failed,ignored,BE,V100M16|V100M32,1000,2,1024,500,pod-7,3620,10\n" +
		",Pending,,Burstable,,0,0,64,100,pod-8,50,40\n"

	tasks, err := ReadTasksFrom(strings.NewReader(input), "dir/sample.csv")
	if err != nil {
		t.Fatalf("ReadTasksFrom: %v", err)
	}
	if len(tasks) != 2 {
		t.Fatalf("tasks = %d, want 2", len(tasks))
	}

	want := Task{
		Source: "sample.csv", Line: 2, Name: "pod-7", CPUMilli: 500, MemoryMiB: 1024,
		NumGPU: 2, GPUShareMilli: 1000, QoS: QoSBestEffort, Phase: PhaseFailed,
		CreationTime: 10, DeletionTime: 3620, ScheduledTime: 20, Scheduled: true,
	}
	want.AllowedModels = []string{"V100M16", "V100M32"}
	if got := tasks[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("task = %+v\nwant   %+v", got, want)
	}

	if tasks[1].Scheduled || tasks[1].AllowedModels != nil || tasks[1].Line != 3 {
		t.Errorf("second task = %+v, want unscheduled, any model, line 3", tasks[1])
	}
}

func TestReadTasksFormats(t *testing.T) {
	tests := []struct {
		name  string
		input string
		count int
	}{
		{"header only", taskHeader, 0},
		{"byte order mark", "\ufeff" + taskHeader + taskRow(), 1},
		{"CRLF endings", strings.ReplaceAll(taskHeader+taskRow(), "\n", "\r\n"), 1},
		{"quoted fields", taskHeader + `"pod-1","6000",12288,1,460,"",LS,Running,10,100,20` + "\n", 1},
		{"no final newline", taskHeader + strings.TrimSuffix(taskRow(), "\n"), 1},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			tasks, err := ReadTasksFrom(strings.NewReader(test.input), "pods.csv")
			if err != nil {
				t.Fatalf("ReadTasksFrom: %v", err)
			}
			if len(tasks) != test.count {
				t.Errorf("tasks = %d, want %d", len(tasks), test.count)
			}
		})
	}
}

func TestReadNodesReorderedColumns(t *testing.T) {
	input := "model,gpu,sn,memory_mib,cpu_milli,rack\nT4,2,n-1,524288,104000,r7\n,0,n-2,1024,2000,r7\n"

	nodes, err := ReadNodesFrom(strings.NewReader(input), "nodes.csv")
	if err != nil {
		t.Fatalf("ReadNodesFrom: %v", err)
	}

	want := []Node{
		{Line: 2, SerialNumber: "n-1", CPUMilli: 104000, MemoryMiB: 524288, GPUs: 2, Model: "T4"},
		{Line: 3, SerialNumber: "n-2", CPUMilli: 2000, MemoryMiB: 1024},
	}
	if !slices.Equal(nodes, want) {
		t.Errorf("nodes = %+v\nwant    %+v", nodes, want)
	}
}
