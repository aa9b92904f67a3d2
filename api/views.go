package api

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// The response bodies. Their JSON names are the API's contract and match openapi.json.

// Job is a job as the API shows it.
type Job struct {
	ID                uuid.UUID       `json:"id"`
	Project           string          `json:"project"`
	Org               string          `json:"org"`
	JobType           string          `json:"job_type"`
	Status            string          `json:"status"`
	Priority          int             `json:"priority"`
	Config            json.RawMessage `json:"config"`
	Tags              json.RawMessage `json:"tags"`
	ParentJobID       *uuid.UUID      `json:"parent_job_id,omitempty"`
	IdempotencyKey    *string         `json:"idempotency_key,omitempty"`
	GPUMilli          int             `json:"gpu_milli"`
	GPUModels         []string        `json:"gpu_models"`
	MaxRuntimeSeconds int             `json:"max_runtime_seconds"`
	MaxAttempts       int             `json:"max_attempts"`
	Attempts          int             `json:"attempts"`
	MaxPreemptions    int             `json:"max_preemptions"`
	Preemptions       int             `json:"preemptions"`
	RunCount          int             `json:"run_count"`
	WaitReason        *string         `json:"wait_reason,omitempty"`
	ErrorMessage      *string         `json:"error_message,omitempty"`
	CreatedAt         time.Time       `json:"created_at"`
	UpdatedAt         time.Time       `json:"updated_at"`
	StartedAt         *time.Time      `json:"started_at,omitempty"`
	CompletedAt       *time.Time      `json:"completed_at,omitempty"`
	// SubmittedBy is the name of the token that submitted the job.
	SubmittedBy *string `json:"submitted_by,omitempty"`
	// TemporalWorkflowID names the job's workflow when the daemon runs workflows.
	TemporalWorkflowID *string `json:"temporal_workflow_id,omitempty"`
	// Result is the outcome the job's workflow recorded: evaluation metrics, the registered
	// model version, or an hpo job's best trial. It is absent until the workflow records one.
	Result json.RawMessage `json:"result,omitempty"`
	// PausedByParent is true for a trial that its hpo parent's pause paused: the parent's
	// resume queues it again.
	PausedByParent bool `json:"paused_by_parent,omitempty"`
	// PausedBy is who paused a paused job: "parent" for a trial that its hpo parent's pause
	// paused, otherwise the role of the token whose pause paused it (PausedBySubmitter and
	// the others). Only an operator or admin can resume a job that an operator or admin
	// paused. It is absent for a job that is not paused, and for one paused before
	// schedulerd recorded the pauser (migration 26) or by a caller without a token.
	PausedBy string `json:"paused_by,omitempty"`
	// PausedByToken is the name of the token whose pause paused the job.
	PausedByToken *string `json:"paused_by_token,omitempty"`
}

// The values of Job.PausedBy.
const (
	PausedByParent    = "parent"
	PausedBySubmitter = string(store.RoleSubmitter)
	PausedByOperator  = string(store.RoleOperator)
	PausedByAdmin     = string(store.RoleAdmin)
)

func jobView(j store.Job) Job {
	models := j.GPUModels
	if models == nil {
		models = []string{}
	}
	return Job{
		ID: j.ID, Project: j.ProjectID, Org: j.OrgID, JobType: j.JobType, Status: string(j.Status),
		Priority: j.Priority, Config: j.ConfigJSON, Tags: j.Tags, ParentJobID: j.ParentJobID,
		IdempotencyKey: j.IdempotencyKey, GPUMilli: j.GPUMilli, GPUModels: models,
		MaxRuntimeSeconds: j.MaxRuntimeSeconds, MaxAttempts: j.MaxAttempts, Attempts: j.Attempts,
		MaxPreemptions: j.MaxPreemptions, Preemptions: j.Preemptions,
		RunCount: j.RunCount, WaitReason: waitReason(j), ErrorMessage: j.ErrorMessage,
		CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt, StartedAt: j.StartedAt, CompletedAt: j.CompletedAt,
		SubmittedBy: j.SubmittedBy, TemporalWorkflowID: j.TemporalWorkflowID, Result: nullToAbsent(j.Result),
		PausedByParent: j.PausedByParent, PausedBy: pausedBy(j), PausedByToken: j.PausedByToken,
	}
}

// pausedBy returns the value of Job.PausedBy for j.
func pausedBy(j store.Job) string {
	switch {
	case j.PausedByParent:
		return PausedByParent
	case j.PausedByRole != nil:
		return string(*j.PausedByRole)
	}
	return ""
}

// nullToAbsent returns nil for a JSON null, so that omitempty leaves the field out.
func nullToAbsent(raw json.RawMessage) json.RawMessage {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil
	}
	return raw
}

// JobList is one page of jobs. NextPage, when set, is the page_token of the next page.
type JobList struct {
	Jobs     []Job  `json:"jobs"`
	NextPage string `json:"next_page,omitempty"`
}

// Quota is a project's quota with its drain state.
type Quota struct {
	Project           string     `json:"project"`
	GPUHoursBudget    float64    `json:"gpu_hours_budget"`
	GPUHoursUsed      float64    `json:"gpu_hours_used"`
	GPUHoursReserved  float64    `json:"gpu_hours_reserved"`
	GPUHoursLeft      float64    `json:"gpu_hours_left"`
	MaxConcurrentJobs int        `json:"max_concurrent_jobs"`
	CurrentConcurrent int        `json:"current_concurrent"`
	PriorityTier      int        `json:"priority_tier"`
	PeriodStart       string     `json:"period_start"`
	PeriodEnd         string     `json:"period_end"`
	Drained           bool       `json:"drained"`
	DrainedAt         *time.Time `json:"drained_at,omitempty"`
	DrainDeadline     *time.Time `json:"drain_deadline,omitempty"`
}

func quotaView(q store.QuotaState) Quota {
	return Quota{
		Project: q.ProjectID, GPUHoursBudget: q.GPUHoursBudget, GPUHoursUsed: q.GPUHoursUsed,
		GPUHoursReserved: q.GPUHoursReserved, GPUHoursLeft: q.GPUHoursLeft(),
		MaxConcurrentJobs: q.MaxConcurrentJobs, CurrentConcurrent: q.CurrentConcurrent,
		PriorityTier: q.PriorityTier, PeriodStart: q.PeriodStart.Format(time.DateOnly),
		PeriodEnd: q.PeriodEnd.Format(time.DateOnly), Drained: q.DrainedAt != nil,
		DrainedAt: q.DrainedAt, DrainDeadline: q.DrainDeadline,
	}
}

// Queue is a project's share of the cluster: its quota and its jobs by status.
type Queue struct {
	Project string `json:"project"`
	// Depth counts the jobs in each status that a job leaves again: submitted, queued,
	// running and paused. Every one of the four is present.
	Depth map[string]int64 `json:"depth"`
	// Quota is absent for a project without a quota, whose jobs cannot start.
	Quota *Quota `json:"quota,omitempty"`
}

// QueueList is every queue the caller may see, ordered by project.
type QueueList struct {
	Queues []Queue `json:"queues"`
}

// DrainResult is the queue after a drain.
type DrainResult struct {
	Quota Quota `json:"quota"`
	// RequeuedJobs are the jobs that were admitted but had not started. The dispatcher stops
	// their pods, and each job is queued again once its pod is gone. None starts again while
	// the queue is drained.
	RequeuedJobs []uuid.UUID `json:"requeued_jobs"`
}

// PriorityChange is one job's priority before and after a reprioritization.
type PriorityChange struct {
	JobID  uuid.UUID `json:"job_id"`
	Before int       `json:"before"`
	After  int       `json:"after"`
}

// ReprioritizeResult lists the queued jobs whose priority changed.
type ReprioritizeResult struct {
	Project string           `json:"project"`
	Delta   int              `json:"delta"`
	Changes []PriorityChange `json:"changes"`
}

// Project is a team's share of the cluster.
type Project struct {
	ID          string    `json:"id"`
	Org         string    `json:"org"`
	DisplayName string    `json:"display_name"`
	Namespace   string    `json:"namespace"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
}

// ProjectList is every project the caller may see, ordered by id.
type ProjectList struct {
	Projects []Project `json:"projects"`
}

func projectView(p store.Project) Project {
	return Project{ID: p.ID, Org: p.OrgID, DisplayName: p.DisplayName, Namespace: p.K8sNamespace,
		Owner: p.Owner, CreatedAt: p.CreatedAt}
}

// AuditRecord is one admin action.
type AuditRecord struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Role    string          `json:"role"`
	Action  string          `json:"action"`
	Project *string         `json:"project,omitempty"`
	JobID   *uuid.UUID      `json:"job_id,omitempty"`
	Before  json.RawMessage `json:"before"`
	After   json.RawMessage `json:"after"`
}

// AuditList is one page of audit records, newest first.
type AuditList struct {
	Records []AuditRecord `json:"records"`
	// NextPage, when set, is the before_id of the next page.
	NextPage int64 `json:"next_page,omitempty"`
}

func auditView(r store.AuditRecord) AuditRecord {
	before, after := r.Before, r.After
	if before == nil {
		before = json.RawMessage("null")
	}
	if after == nil {
		after = json.RawMessage("null")
	}
	return AuditRecord{ID: r.ID, At: r.At, Actor: r.Actor, Role: string(r.Role), Action: r.Action,
		Project: r.ProjectID, JobID: r.JobID, Before: before, After: after}
}

// waitReason returns the job's wait reason while it is queued, or while it runs and its pod
// waits for GPUs that other pods use (store.ReasonPodWaitsForGPUs), and nil otherwise. Rows
// written before the store cleared the reason on leaving the queue still carry the last
// one, which is stale for a job that runs, is paused or has ended.
func waitReason(j store.Job) *string {
	switch {
	case j.Status == store.JobQueued:
		return j.WaitReason
	case j.Status == store.JobRunning && j.WaitReason != nil &&
		strings.HasPrefix(*j.WaitReason, store.ReasonPodWaitsForGPUs):
		return j.WaitReason
	}
	return nil
}
