// Package trace reads the Alibaba GPU cluster trace (the 2023 "openb" node
// and pod lists) and turns its tasks into schedulerd jobs for replay.
//
// # Files
//
// ReadNodes and ReadTasks locate columns by header name, so samples with
// reordered or extra columns read unchanged, and a missing column is an
// error. Reading is strict: the first invalid row fails the whole file with
// a *ParseError that names the file, line, column and value, for example
//
//	openb_pod_list_default.csv:17: column num_gpu (4): invalid integer "x"
//
// Each row must satisfy these rules:
//   - Numbers are base-10 integers and none is negative.
//   - num_gpu and a node's gpu are at most MaxGPUsPerTask (64).
//   - gpu_milli is 0 for CPU-only tasks, 1..1000 for one GPU and exactly
//     1000 when num_gpu > 1. All multi-GPU tasks of the default sample have
//     1000, and a share of several GPUs has no clear meaning.
//   - qos and pod_phase belong to their known sets.
//   - Times are at most the seconds that fit in a time.Duration, and
//     creation_time <= scheduled_time <= deletion_time. An empty
//     scheduled_time means that the task never ran.
//   - Task names and node serial numbers are unique within a file.
//   - A node file has at least one node, and a node with GPUs has a model.
//     A task file may have no rows.
//
// # Mapping a task to a job
//
// NewJob applies the whole mapping, and each part has its own function:
//   - Project: FNV-1a 64-bit hash of the task name modulo the number of
//     DefaultProjects, which also fixes each project's GPU-hour budget and
//     concurrency limit.
//   - QoS.Tier and QoS.Priority: LS is tier critical (priority 90),
//     Guaranteed high (70), Burstable normal (50) and BE low (10), on
//     schedulerd's 0..100 scale.
//   - Task.GPURequest: a task with num_gpu 1 and gpu_milli below 1000
//     shares one GPU and requests gpu_milli thousandths of it. Any other
//     GPU task requests num_gpu whole GPUs. Task.GPUMilli is the total in
//     thousandths. Tasks with num_gpu 0 are CPU-only (Task.IsGPU is false):
//     the replay skips them and Summarize counts them.
//   - Task.AllowedModels: gpu_spec split at "|", nil (any model) when empty.
//   - Task.SubmitOffset: creation_time as a duration.
//   - Task.RunSeconds: deletion_time - scheduled_time. A task that never
//     ran is still submitted, so every task is accounted for, and runs for
//     deletion_time - creation_time.
//   - Task.ExitCode: 1 for Failed, 0 for Succeeded, Running and Pending.
//   - Task.IdempotencyKey: "trace-<name>-<12 hex digits of the SHA-256 of
//     the file's base name>", so equal pod names in different samples get
//     different keys.
//   - GPUHours: GPUMilli/1000 times RunSeconds/3600, the expected value
//     for accounting tests. GPUMilliSeconds is the same figure as an exact
//     integer.
//
// # Replay plans
//
// Pace and Fill compute when each task is submitted and how long it runs,
// without sleeping. CheckModels lists tasks that the nodes cannot hold.
// PeakConcurrency, CountTasks, TotalGPUHours and Summarize compute the
// figures that a replay is checked against.
package trace
