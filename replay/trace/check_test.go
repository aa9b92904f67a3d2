package trace

import (
	"slices"
	"testing"
)

var checkNodes = []Node{
	{SerialNumber: "p1", Model: "P100", GPUs: 2, CPUMilli: 16000, MemoryMiB: 122880},
	{SerialNumber: "p2", Model: "P100", GPUs: 2, CPUMilli: 16000, MemoryMiB: 122880},
	{SerialNumber: "t1", Model: "T4", GPUs: 4, CPUMilli: 96000, MemoryMiB: 393216},
	{SerialNumber: "c1", GPUs: 0, CPUMilli: 256000, MemoryMiB: 1048576},
}

func TestCheckModels(t *testing.T) {
	tests := []struct {
		name   string
		task   Task
		kinds  []ProblemKind
		models []string
	}{
		{"any model fits", Task{NumGPU: 4}, nil, nil},
		{"listed model fits", Task{NumGPU: 2, AllowedModels: []string{"P100"}}, nil, nil},
		{"shared fits", Task{NumGPU: 1, GPUShareMilli: 300, AllowedModels: []string{"P100"}}, nil, nil},
		{"too many GPUs", Task{NumGPU: 8}, []ProblemKind{ProblemNoNodeFits}, nil},
		{"4 on 2-GPU model", Task{NumGPU: 4, AllowedModels: []string{"P100"}}, []ProblemKind{ProblemNoNodeFits}, nil},
		{"too much CPU", Task{NumGPU: 1, CPUMilli: 96001}, []ProblemKind{ProblemNoNodeFits}, nil},
		{"too much memory", Task{NumGPU: 1, MemoryMiB: 393217}, []ProblemKind{ProblemNoNodeFits}, nil},
		{"unknown model", Task{NumGPU: 1, AllowedModels: []string{"A100"}}, []ProblemKind{ProblemUnknownModel}, []string{"A100"}},
		{"one model unknown", Task{NumGPU: 1, AllowedModels: []string{"A100", "T4"}}, []ProblemKind{ProblemUnknownModel}, []string{"A100"}},
		{"unknown and too big", Task{NumGPU: 4, AllowedModels: []string{"P100", "H100"}}, []ProblemKind{ProblemUnknownModel, ProblemNoNodeFits}, []string{"H100"}},
		{"cpu only skipped", Task{CPUMilli: 999999999, AllowedModels: []string{"A100"}}, nil, nil},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			problems := CheckModels([]Task{test.task}, checkNodes)

			var kinds []ProblemKind
			for _, problem := range problems {
				kinds = append(kinds, problem.Kind)
			}
			if !slices.Equal(kinds, test.kinds) {
				t.Errorf("kinds = %q, want %q", kinds, test.kinds)
			}
			if len(problems) > 0 && !slices.Equal(problems[0].Models, test.models) {
				t.Errorf("Models = %q, want %q", problems[0].Models, test.models)
			}
		})
	}
}

func TestModelProblemString(t *testing.T) {
	task := Task{Source: "pods.csv", Line: 17, Name: "pod-9", NumGPU: 8, CPUMilli: 1000, MemoryMiB: 2048, AllowedModels: []string{"A100", "H100"}}

	unknown := ModelProblem{Task: task, Kind: ProblemUnknownModel, Models: []string{"A100", "H100"}}
	if got, want := unknown.String(), "pods.csv:17: task pod-9: no node has GPU model A100, H100"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}

	noFit := ModelProblem{Task: task, Kind: ProblemNoNodeFits}
	want := "pods.csv:17: task pod-9: no single node of an allowed model has 8 GPUs, 1000 CPU milli and 2048 MiB"
	if got := noFit.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

func TestCheckModelsOrder(t *testing.T) {
	tasks := []Task{{Name: "x", NumGPU: 16}, {Name: "ok", NumGPU: 1}, {Name: "y", NumGPU: 1, AllowedModels: []string{"G9"}}}

	problems := CheckModels(tasks, checkNodes)
	if len(problems) != 2 || problems[0].Task.Name != "x" || problems[1].Task.Name != "y" {
		t.Errorf("problems = %v, want tasks x then y", problems)
	}
}
