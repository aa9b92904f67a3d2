package trace

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Tier is a named priority band of schedulerd. Each QoS class of the trace
// maps to one tier.
type Tier string

// Tiers from highest to lowest priority.
const (
	TierCritical Tier = "critical"
	TierHigh     Tier = "high"
	TierNormal   Tier = "normal"
	TierLow      Tier = "low"
)

// Priorities of the tiers on schedulerd's 0..100 scale. They keep the QoS
// order of the trace (LS > Guaranteed > Burstable > BE) with gaps, and leave
// 91..100 free for jobs that operators submit ahead of a replay.
const (
	PriorityCritical = 90
	PriorityHigh     = 70
	PriorityNormal   = 50
	PriorityLow      = 10
)

// FailedExitCode is the exit code of the simulated pod of a Failed task.
const FailedExitCode = 1

// sourceHashLength is the number of hex digits of the SHA-256 of the file's
// base name kept in idempotency keys: 48 bits.
const sourceHashLength = 12

// Tier returns the tier of the class: LS is critical, Guaranteed high,
// Burstable normal and BE low. An unknown class returns "".
func (q QoS) Tier() Tier {
	switch q {
	case QoSLatencySensitive:
		return TierCritical
	case QoSGuaranteed:
		return TierHigh
	case QoSBurstable:
		return TierNormal
	case QoSBestEffort:
		return TierLow
	}

	return ""
}

// Priority returns the schedulerd priority of the class's tier, or 0 for
// an unknown class.
func (q QoS) Priority() int {
	priorities := map[Tier]int{
		TierCritical: PriorityCritical,
		TierHigh:     PriorityHigh,
		TierNormal:   PriorityNormal,
		TierLow:      PriorityLow,
	}

	return priorities[q.Tier()]
}

// GPURequest is the GPU part of a job: either whole GPUs or a share of one
// GPU, never both.
type GPURequest struct {
	// Whole is the number of whole GPUs, 0 for a shared or CPU-only task.
	Whole int

	// SharedMilli is the share of one GPU in thousandths (1..999), or 0
	// when the task takes whole GPUs or none.
	SharedMilli int
}

// IsGPU reports whether the task uses a GPU. The replay skips CPU-only
// tasks because schedulerd schedules GPU jobs, and counts them in Summary.
func (t Task) IsGPU() bool {
	return t.NumGPU > 0
}

// IsShared reports whether the task takes part of one GPU.
func (t Task) IsShared() bool {
	return t.NumGPU == 1 && t.GPUShareMilli < MilliPerGPU
}

// GPURequest returns the task's request: a share when it uses part of one
// GPU, and NumGPU whole GPUs otherwise.
func (t Task) GPURequest() GPURequest {
	if t.IsShared() {
		return GPURequest{SharedMilli: t.GPUShareMilli}
	}

	return GPURequest{Whole: t.NumGPU}
}

// GPUMilli returns the total GPU request in thousandths of a GPU: the share
// for a shared task and NumGPU*1000 otherwise.
func (t Task) GPUMilli() int64 {
	if t.IsShared() {
		return int64(t.GPUShareMilli)
	}

	return int64(t.NumGPU) * MilliPerGPU
}

// SubmitOffset returns the creation time as a duration from the trace start.
func (t Task) SubmitOffset() time.Duration {
	return time.Duration(t.CreationTime) * time.Second
}

// RunSeconds returns how long the simulated pod runs, in trace seconds.
// A task that ran lasts from scheduled_time to deletion_time. A task that
// never ran (Pending in the trace) is still submitted, so that every task
// is accounted for, and runs for its whole life from creation_time to
// deletion_time, the longest it could have held resources.
func (t Task) RunSeconds() int64 {
	if t.Scheduled {
		return t.DeletionTime - t.ScheduledTime
	}

	return t.DeletionTime - t.CreationTime
}

// RunLength returns RunSeconds as a duration.
func (t Task) RunLength() time.Duration {
	return time.Duration(t.RunSeconds()) * time.Second
}

// ExitCode returns the exit code of the simulated pod: FailedExitCode for a
// Failed task and 0 for any other phase, including Pending.
func (t Task) ExitCode() int {
	if t.Phase == PhaseFailed {
		return FailedExitCode
	}

	return 0
}

// IdempotencyKey returns "trace-<name>-<hash>", where hash is the first 12
// hex digits of the SHA-256 of Source. Pod names such as openb-pod-0000 are
// numbered within a file, so other samples may reuse them, and the hash
// keeps their keys apart. Equal pod names in two samples get equal keys
// only when the base names are equal or their hashes collide in 48 bits.
func (t Task) IdempotencyKey() string {
	sum := sha256.Sum256([]byte(t.Source))

	return "trace-" + t.Name + "-" + hex.EncodeToString(sum[:])[:sourceHashLength]
}

// GPUMilliSeconds returns the exact GPU usage of the task in thousandths
// of a GPU times trace seconds, for accounting without rounding.
func GPUMilliSeconds(t Task) int64 {
	return t.GPUMilli() * t.RunSeconds()
}

// GPUHours returns the GPU usage of the task in GPU-hours: GPUs (or the
// share of one) times RunSeconds divided by 3600. It is 0 for CPU-only tasks.
func GPUHours(t Task) float64 {
	return float64(GPUMilliSeconds(t)) / (MilliPerGPU * 3600)
}

// Job is a task converted to what schedulerd is asked to run. Submit and
// Run are in trace time, before any pacing.
type Job struct {
	Name           string
	IdempotencyKey string
	Project        ProjectName
	Tier           Tier
	Priority       int
	GPUs           GPURequest
	AllowedModels  []string
	CPUMilli       int64
	MemoryMiB      int64
	Submit         time.Duration
	Run            time.Duration
	ExitCode       int
}

// NewJob applies the mapping described in the package documentation.
func NewJob(t Task) Job {
	return Job{
		Name:           t.Name,
		IdempotencyKey: t.IdempotencyKey(),
		Project:        Project(t),
		Tier:           t.QoS.Tier(),
		Priority:       t.QoS.Priority(),
		GPUs:           t.GPURequest(),
		AllowedModels:  t.AllowedModels,
		CPUMilli:       t.CPUMilli,
		MemoryMiB:      t.MemoryMiB,
		Submit:         t.SubmitOffset(),
		Run:            t.RunLength(),
		ExitCode:       t.ExitCode(),
	}
}
