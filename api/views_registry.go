package api

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// The response bodies of artifacts, the model registry and approvals. Their JSON names are
// the API's contract and match openapi.json.

// Artifact is an object a run wrote to storage.
type Artifact struct {
	ID             uuid.UUID       `json:"id"`
	RunID          uuid.UUID       `json:"run_id"`
	ArtifactType   string          `json:"artifact_type"`
	StorageURI     string          `json:"storage_uri"`
	ChecksumSHA256 string          `json:"checksum_sha256"`
	SizeBytes      int64           `json:"size_bytes"`
	Metadata       json.RawMessage `json:"metadata"`
	CreatedAt      time.Time       `json:"created_at"`
	// DeletedAt is when retention deleted the object from storage.
	DeletedAt *time.Time `json:"deleted_at,omitempty"`
}

func artifactView(a store.Artifact) Artifact {
	metadata := a.Metadata
	if len(metadata) == 0 {
		metadata = json.RawMessage("{}")
	}
	return Artifact{ID: a.ID, RunID: a.RunID, ArtifactType: a.Type, StorageURI: a.URI,
		ChecksumSHA256: a.Checksum, SizeBytes: a.SizeBytes, Metadata: metadata, CreatedAt: a.CreatedAt,
		DeletedAt: a.DeletedAt}
}

func artifactViews(list []store.Artifact) []Artifact {
	views := make([]Artifact, 0, len(list))
	for _, a := range list {
		views = append(views, artifactView(a))
	}
	return views
}

// ModelVersion is one registered version of a model with its lineage: the job and run that
// trained it, the artifact, the dataset version, config hash and code commit, and the
// evaluation metrics that let it in.
type ModelVersion struct {
	ID             uuid.UUID       `json:"id"`
	Project        string          `json:"project"`
	Model          string          `json:"model"`
	VersionNumber  int             `json:"version_number"`
	Stage          string          `json:"stage"`
	JobID          uuid.UUID       `json:"job_id"`
	RunID          *uuid.UUID      `json:"run_id,omitempty"`
	ArtifactURI    string          `json:"artifact_uri"`
	DatasetVersion *string         `json:"dataset_version,omitempty"`
	ConfigHash     *string         `json:"config_hash,omitempty"`
	CodeCommit     *string         `json:"code_commit,omitempty"`
	TrackingRunID  *string         `json:"tracking_run_id,omitempty"`
	EvalMetrics    json.RawMessage `json:"eval_metrics"`
	CreatedAt      time.Time       `json:"created_at"`
	PromotedAt     *time.Time      `json:"promoted_at,omitempty"`
	PromotedBy     *string         `json:"promoted_by,omitempty"`
}

func modelVersionView(v store.ModelVersion) ModelVersion {
	metrics := v.EvalMetrics
	if len(metrics) == 0 {
		metrics = json.RawMessage("{}")
	}
	return ModelVersion{ID: v.ID, Project: v.ProjectID, Model: v.ModelName, VersionNumber: v.VersionNumber,
		Stage: v.Stage, JobID: v.JobID, RunID: v.RunID, ArtifactURI: v.ArtifactURI,
		DatasetVersion: v.DatasetVersion, ConfigHash: v.ConfigHash, CodeCommit: v.CodeCommit,
		TrackingRunID: v.TrackingRunID, EvalMetrics: metrics, CreatedAt: v.CreatedAt,
		PromotedAt: v.PromotedAt, PromotedBy: v.PromotedBy}
}

// ModelVersionList is every version of one model, newest first.
type ModelVersionList struct {
	Versions []ModelVersion `json:"versions"`
}

// LineageRun is one run of the job that trained a version.
type LineageRun struct {
	ID                uuid.UUID  `json:"id"`
	RunNumber         int        `json:"run_number"`
	Status            string     `json:"status"`
	StartedAt         *time.Time `json:"started_at,omitempty"`
	CompletedAt       *time.Time `json:"completed_at,omitempty"`
	GPUHoursUsed      float64    `json:"gpu_hours_used"`
	WorkerNode        *string    `json:"worker_node,omitempty"`
	LastCheckpointURI *string    `json:"last_checkpoint_uri,omitempty"`
}

func lineageRunView(r store.Run) LineageRun {
	return LineageRun{ID: r.ID, RunNumber: r.RunNumber, Status: string(r.Status), StartedAt: r.StartedAt,
		CompletedAt: r.CompletedAt, GPUHoursUsed: r.GPUHoursUsed, WorkerNode: r.WorkerNode,
		LastCheckpointURI: r.LastCheckpointURI}
}

// Lineage is the origin of a model version. Version contains the dataset version and code
// commit, and Job, Runs and Artifacts are the training job and everything its runs wrote.
type Lineage struct {
	Version ModelVersion `json:"version"`
	Job     Job          `json:"job"`
	Runs    []LineageRun `json:"runs"`
	// Artifacts lists every artifact of the job's runs, by run and time; Checkpoints is
	// the checkpoint artifacts among them.
	Artifacts   []Artifact `json:"artifacts"`
	Checkpoints []Artifact `json:"checkpoints"`
	// Approvals lists the promotion requests of this version, oldest first.
	Approvals []Approval `json:"approvals"`
}

// Approval is a request to promote a model version to staging or prod.
type Approval struct {
	ID             uuid.UUID `json:"id"`
	ModelVersionID uuid.UUID `json:"model_version_id"`
	Project        string    `json:"project"`
	Model          string    `json:"model"`
	VersionNumber  int       `json:"version_number"`
	TargetStage    string    `json:"target_stage"`
	Status         string    `json:"status"`
	RequestedBy    string    `json:"requested_by"`
	// RequesterOwner is the owner of the requesting token. No token of this owner may
	// decide the request.
	RequesterOwner string    `json:"requester_owner"`
	RequestedAt    time.Time `json:"requested_at"`
	// EvalSnapshot is the evaluation as the requester saw it; it never changes.
	EvalSnapshot json.RawMessage `json:"eval_snapshot"`
	DecidedBy    *string         `json:"decided_by,omitempty"`
	DeciderOwner *string         `json:"decider_owner,omitempty"`
	DecidedAt    *time.Time      `json:"decided_at,omitempty"`
	Reason       *string         `json:"reason,omitempty"`
	// WorkflowID names the workflow that promotes the version once the request is approved.
	WorkflowID *string `json:"workflow_id,omitempty"`
}

func approvalView(a store.Approval) Approval {
	return Approval{ID: a.ID, ModelVersionID: a.ModelVersionID, Project: a.ProjectID, Model: a.ModelName,
		VersionNumber: a.VersionNumber, TargetStage: a.TargetStage, Status: a.Status,
		RequestedBy: a.RequestedBy, RequesterOwner: a.RequesterOwner, RequestedAt: a.RequestedAt,
		EvalSnapshot: a.EvalSnapshot, DecidedBy: a.DecidedBy, DeciderOwner: a.DeciderOwner,
		DecidedAt: a.DecidedAt, Reason: a.Reason, WorkflowID: a.WorkflowID}
}

func approvalViews(list []store.Approval) []Approval {
	views := make([]Approval, 0, len(list))
	for _, a := range list {
		views = append(views, approvalView(a))
	}
	return views
}

// ApprovalList is one page of approvals, oldest request first. NextPage, when set, is the
// page_token of the next page.
type ApprovalList struct {
	Approvals []Approval `json:"approvals"`
	NextPage  string     `json:"next_page,omitempty"`
}
