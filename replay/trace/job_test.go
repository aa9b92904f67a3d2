package trace

import (
	"testing"
	"time"
)

func TestQoSTierAndPriority(t *testing.T) {
	tests := []struct {
		qos      QoS
		tier     Tier
		priority int
	}{
		{QoSLatencySensitive, TierCritical, 90},
		{QoSGuaranteed, TierHigh, 70},
		{QoSBurstable, TierNormal, 50},
		{QoSBestEffort, TierLow, 10},
		{"unknown", "", 0},
	}

	for _, test := range tests {
		t.Run(string(test.qos), func(t *testing.T) {
			if got := test.qos.Tier(); got != test.tier {
				t.Errorf("Tier = %q, want %q", got, test.tier)
			}
			if got := test.qos.Priority(); got != test.priority {
				t.Errorf("Priority = %d, want %d", got, test.priority)
			}
		})
	}
}

func TestGPURequest(t *testing.T) {
	tests := []struct {
		name    string
		numGPU  int
		share   int
		request GPURequest
		milli   int64
		isGPU   bool
		class   GPUClass
	}{
		{"cpu only", 0, 0, GPURequest{}, 0, false, ClassCPUOnly},
		{"shared", 1, 460, GPURequest{SharedMilli: 460}, 460, true, ClassSingleGPU},
		{"one whole", 1, 1000, GPURequest{Whole: 1}, 1000, true, ClassSingleGPU},
		{"eight whole", 8, 1000, GPURequest{Whole: 8}, 8000, true, ClassMultiGPU},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			task := Task{NumGPU: test.numGPU, GPUShareMilli: test.share}
			if got := task.GPURequest(); got != test.request {
				t.Errorf("GPURequest = %+v, want %+v", got, test.request)
			}
			if got := task.GPUMilli(); got != test.milli {
				t.Errorf("GPUMilli = %d, want %d", got, test.milli)
			}
			if got := task.IsGPU(); got != test.isGPU {
				t.Errorf("IsGPU = %v, want %v", got, test.isGPU)
			}
			if got := task.Class(); got != test.class {
				t.Errorf("Class = %q, want %q", got, test.class)
			}
		})
	}
}

func TestRunAndGPUHours(t *testing.T) {
	tests := []struct {
		name     string
		task     Task
		run      time.Duration
		hours    float64
		exitCode int
	}{
		{"two GPUs 90 min", Task{NumGPU: 2, GPUShareMilli: 1000, Phase: PhaseSucceeded, CreationTime: 0, ScheduledTime: 600, DeletionTime: 6000, Scheduled: true}, 90 * time.Minute, 3, 0},
		{"shared hour", Task{NumGPU: 1, GPUShareMilli: 460, Phase: PhaseRunning, CreationTime: 5, ScheduledTime: 5, DeletionTime: 3605, Scheduled: true}, time.Hour, 0.46, 0},
		{"failed", Task{NumGPU: 4, GPUShareMilli: 1000, Phase: PhaseFailed, CreationTime: 10, ScheduledTime: 10, DeletionTime: 910, Scheduled: true}, 15 * time.Minute, 1, 1},
		{"never ran", Task{NumGPU: 1, GPUShareMilli: 1000, Phase: PhasePending, CreationTime: 100, DeletionTime: 1900}, 30 * time.Minute, 0.5, 0},
		{"cpu only", Task{Phase: PhaseSucceeded, CreationTime: 0, ScheduledTime: 0, DeletionTime: 7200, Scheduled: true}, 2 * time.Hour, 0, 0},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			if got := test.task.RunLength(); got != test.run {
				t.Errorf("RunLength = %v, want %v", got, test.run)
			}
			if got := GPUHours(test.task); got != test.hours {
				t.Errorf("GPUHours = %v, want %v", got, test.hours)
			}
			if got := test.task.ExitCode(); got != test.exitCode {
				t.Errorf("ExitCode = %d, want %d", got, test.exitCode)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	// printf %s openb_pod_list_default.csv | sha256sum | cut -c1-12
	task := Task{Source: "openb_pod_list_default.csv", Name: "openb-pod-0042"}
	if got, want := task.IdempotencyKey(), "trace-openb-pod-0042-96f68f90d1e4"; got != want {
		t.Errorf("IdempotencyKey = %q, want %q", got, want)
	}

	other := Task{Source: "openb_pod_list_gpuspec33.csv", Name: "openb-pod-0042"}
	if other.IdempotencyKey() == task.IdempotencyKey() {
		t.Errorf("samples share the key %q, want different keys", task.IdempotencyKey())
	}
}

func TestProjectDeterministic(t *testing.T) {
	// FNV-1a 64 of the name modulo 5, from the Python function in
	// analysis_test.go: print(h("openb-pod-0000"), ...).
	tests := []struct {
		name    string
		project ProjectName
	}{
		{"openb-pod-0000", ProjectSpeech},
		{"openb-pod-0001", ProjectNLP},
		{"openb-pod-0002", ProjectResearch},
		{"openb-pod-0003", ProjectVision},
		{"a", ProjectSpeech},
		{"", ProjectNLP},
	}

	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			task := Task{Name: test.name}
			for range 3 {
				if got := Project(task); got != test.project {
					t.Errorf("Project(%q) = %q, want %q", test.name, got, test.project)
				}
			}
		})
	}
}

func TestNewJob(t *testing.T) {
	task := Task{
		Source: "s.csv", Name: "openb-pod-0003", CPUMilli: 6000, MemoryMiB: 12288, NumGPU: 1, GPUShareMilli: 460,
		AllowedModels: []string{"T4"}, QoS: QoSGuaranteed, Phase: PhaseFailed,
		CreationTime: 60, ScheduledTime: 120, DeletionTime: 3720, Scheduled: true,
	}

	job := NewJob(task)
	if job.Project != ProjectVision || job.Tier != TierHigh || job.Priority != 70 {
		t.Errorf("Project, Tier, Priority = %q, %q, %d, want vision, high, 70", job.Project, job.Tier, job.Priority)
	}
	if job.GPUs != (GPURequest{SharedMilli: 460}) {
		t.Errorf("GPUs = %+v, want 460 thousandths of one GPU", job.GPUs)
	}
	if job.Submit != time.Minute || job.Run != time.Hour {
		t.Errorf("Submit, Run = %v, %v, want 1m0s, 1h0m0s", job.Submit, job.Run)
	}
	if job.ExitCode != 1 {
		t.Errorf("ExitCode = %d, want 1", job.ExitCode)
	}
	if job.IdempotencyKey != task.IdempotencyKey() || len(job.AllowedModels) != 1 {
		t.Errorf("IdempotencyKey, AllowedModels = %q, %q", job.IdempotencyKey, job.AllowedModels)
	}
}

func TestDefaultProjectsLimits(t *testing.T) {
	projects := DefaultProjects()
	if len(projects) != 5 {
		t.Fatalf("projects = %d, want 5", len(projects))
	}

	for i, quota := range projects {
		if quota.Name != projectOrder[i] {
			t.Errorf("project %d = %q, want %q", i, quota.Name, projectOrder[i])
		}
		if quota.BudgetGPUHours <= 0 || quota.MaxConcurrentJobs <= 0 {
			t.Errorf("project %s limits = %+v, want positive", quota.Name, quota)
		}
	}
}
