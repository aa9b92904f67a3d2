package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// JobStatus is the life-cycle state of a job. The legal moves between them are the rows of
// the job_status_transitions table.
type JobStatus string

const (
	JobSubmitted  JobStatus = "submitted"
	JobQueued     JobStatus = "queued"
	JobRunning    JobStatus = "running"
	JobPaused     JobStatus = "paused"
	JobCompleted  JobStatus = "completed"
	JobFailed     JobStatus = "failed"
	JobCancelled  JobStatus = "cancelled"
	JobEvalFailed JobStatus = "eval_failed"
)

// Terminal reports whether no further run can start for a job in this status.
func (s JobStatus) Terminal() bool {
	switch s {
	case JobCompleted, JobFailed, JobCancelled, JobEvalFailed:
		return true
	}
	return false
}

// JobRef is a job's key: jobs are partitioned by month of created_at, so the key includes it
// and every lookup by JobRef reads one partition.
type JobRef struct {
	ID        uuid.UUID `json:"id"`
	CreatedAt time.Time `json:"created_at"`
}

// Job is one row of jobs.
type Job struct {
	ID                 uuid.UUID       `db:"id"`
	CreatedAt          time.Time       `db:"created_at"`
	IdempotencyKey     *string         `db:"idempotency_key"`
	ProjectID          string          `db:"project_id"`
	OrgID              string          `db:"org_id"`
	JobType            string          `db:"job_type"`
	Status             JobStatus       `db:"status"`
	Priority           int             `db:"priority"`
	ConfigJSON         json.RawMessage `db:"config_json"`
	TemporalWorkflowID *string         `db:"temporal_workflow_id"`
	ParentJobID        *uuid.UUID      `db:"parent_job_id"`
	ParentCreatedAt    *time.Time      `db:"parent_created_at"`
	UpdatedAt          time.Time       `db:"updated_at"`
	StartedAt          *time.Time      `db:"started_at"`
	CompletedAt        *time.Time      `db:"completed_at"`
	ErrorMessage       *string         `db:"error_message"`
	Tags               json.RawMessage `db:"tags"`
	GPUMilli           int             `db:"gpu_milli"`
	GPUModels          []string        `db:"gpu_models"`
	MaxRuntimeSeconds  int             `db:"max_runtime_seconds"`
	MaxAttempts        int             `db:"max_attempts"`
	Attempts           int             `db:"attempts"`
	MaxPreemptions     int             `db:"max_preemptions"`
	Preemptions        int             `db:"preemptions"`
	RunCount           int             `db:"run_count"`
	WaitReason         *string         `db:"wait_reason"`
	SubmittedBy        *string         `db:"submitted_by"`
	// SubmitterOwner is the owner of the submitting token (Token.Owner), and so the
	// requester of the approvals that the job's workflow requests. A job stored without
	// one, before migration 22, reads SubmittedBy here.
	SubmitterOwner *string `db:"submitter_owner"`
	// Result is the outcome the job's workflow decided: evaluation metrics, the registered
	// model version, or an hpo parent's best trial.
	Result json.RawMessage `db:"result_json"`
	// PausedByParent marks a trial that its hpo parent's pause paused, which the parent's
	// resume queues again. It is false for a trial paused on its own.
	PausedByParent bool `db:"paused_by_parent"`
	// PausedByRole and PausedByToken are the role and name of the API token whose pause
	// paused the job. Both are nil on a job that is not paused, on a trial that its parent's
	// pause paused, and on a job paused before migration 26 or by a caller without a token.
	PausedByRole  *Role   `db:"paused_by_role"`
	PausedByToken *string `db:"paused_by_token"`
}

// PauseHeld reports whether an operator's or admin's pause holds the job, so that a
// submitter's resume changes nothing (SetJobStatus).
func (j Job) PauseHeld() bool {
	return j.PausedByRole != nil && *j.PausedByRole != RoleSubmitter
}

// Ref returns the job's key.
func (j Job) Ref() JobRef { return JobRef{ID: j.ID, CreatedAt: j.CreatedAt} }

const jobColumns = `id, created_at, idempotency_key, project_id, org_id, job_type::text AS job_type,
    status::text AS status, priority, config_json, temporal_workflow_id, parent_job_id,
    parent_created_at, updated_at, started_at, completed_at, error_message, tags, gpu_milli,
    gpu_models, max_runtime_seconds, max_attempts, attempts, max_preemptions, preemptions, run_count,
    wait_reason, submitted_by, coalesce(submitter_owner, submitted_by) AS submitter_owner,
    result_json, paused_by_parent, paused_by_role::text AS paused_by_role, paused_by_token`

// Submission is a new job as the API accepted it. The scheduling fields are derived from
// the validated config by the caller.
type Submission struct {
	ProjectID         string
	IdempotencyKey    string // empty for none
	JobType           string
	Priority          int
	Config            json.RawMessage
	Tags              json.RawMessage
	Parent            *JobRef
	GPUMilli          int
	GPUModels         []string
	MaxRuntimeSeconds int
	MaxAttempts       int
	// MaxPreemptions is the preemption count that fails the job (1 to 1000). A checkpoint
	// that shows progress sets the count back to 0 (sqlSetCheckpoint).
	MaxPreemptions int
	// CPUMilli and MemoryMiB are one pod's CPU and memory request, for admission to pick a
	// GPU model with a node large enough.
	CPUMilli  int64
	MemoryMiB int64
	// SubmittedBy names who submitted the job; empty for the replay and other internal
	// callers.
	SubmittedBy string
	// SubmitterOwner is the owner of the submitting token. Empty stores NULL, which reads
	// as SubmittedBy.
	SubmitterOwner string
	// Workflow gives the job a Temporal workflow, named WorkflowID(id): the insert records
	// a start event in the workflow outbox, which the daemon delivers.
	Workflow bool
	// Audit, when not nil, records the submission in the audit log in the same
	// transaction. A retry that returns the first job records nothing.
	Audit *Audit
}

// WorkflowID is the id of the Temporal workflow of the job with this id.
func WorkflowID(id uuid.UUID) string { return "job-" + id.String() }

// RequestHash identifies the content of a submission, to tell a retry (same content) from a
// reuse of its idempotency key for another request. JSON objects are compared by value, so
// key order and spacing do not matter.
func (s Submission) RequestHash() ([]byte, error) {
	canonical := struct {
		Project, Type string
		Priority      int
		Config, Tags  any
		Parent        *JobRef
	}{s.ProjectID, s.JobType, s.Priority, nil, nil, s.Parent}
	for _, field := range []struct {
		raw  json.RawMessage
		into *any
	}{{s.Config, &canonical.Config}, {s.Tags, &canonical.Tags}} {
		if len(field.raw) == 0 {
			continue
		}
		if err := json.Unmarshal(field.raw, field.into); err != nil {
			return nil, fmt.Errorf("hash submission: %w", err)
		}
	}
	encoded, err := json.Marshal(canonical)
	if err != nil {
		return nil, fmt.Errorf("hash submission: %w", err)
	}
	sum := sha256.Sum256(encoded)
	return sum[:], nil
}

const sqlInsertJob = `
INSERT INTO jobs (id, created_at, idempotency_key, project_id, org_id, job_type, status, priority,
                  config_json, tags, parent_job_id, parent_created_at, gpu_milli, gpu_models,
                  max_runtime_seconds, max_attempts, max_preemptions, cpu_milli, memory_mib,
                  submitted_by, submitter_owner, temporal_workflow_id)
SELECT $1, $2, $3, p.id, p.org_id, $5::job_type,
       -- An hpo parent holds no pod: its workflow runs it, so it never enters the queue.
       CASE WHEN $5::job_type = 'hpo' THEN 'submitted' ELSE 'queued' END::job_status,
       $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, NULLIF($18, ''), NULLIF($19, ''),
       NULLIF($20, '')
FROM projects p WHERE p.id = $4
RETURNING ` + jobColumns

const sqlInsertKey = `
INSERT INTO job_idempotency_keys (project_id, idempotency_key, job_id, job_created_at, request_sha256)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (project_id, idempotency_key) DO NOTHING`

const sqlGetKey = `
SELECT job_id, request_sha256 FROM job_idempotency_keys WHERE project_id = $1 AND idempotency_key = $2`

// SubmitJob stores a new queued job (an hpo job: submitted, for its workflow to run). Its id is a UUIDv7 whose timestamp is its created_at,
// so the id alone finds its partition. When the project already has a job with the same
// idempotency key, nothing is stored and the error is a *DuplicateKeyError naming that job;
// concurrent submissions with one key store exactly one job.
func (s *Store) SubmitJob(ctx context.Context, sub Submission) (Job, error) {
	doing := "submit job to project " + sub.ProjectID
	hash, err := sub.RequestHash()
	if err != nil {
		return Job{}, err
	}
	id, createdAt, err := newJobID()
	if err != nil {
		return Job{}, fmt.Errorf("%s: %w", doing, err)
	}

	var job Job
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		job, err = insertJob(ctx, tx, id, createdAt, sub)
		if err != nil {
			return err
		}
		if sub.IdempotencyKey != "" {
			tag, err := tx.Exec(ctx, sqlInsertKey, sub.ProjectID, sub.IdempotencyKey, id, createdAt, hash)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return errKeyTaken
			}
		}
		return writeAudit(ctx, tx, sub.Audit, job.ProjectID, &job.ID, nil, jobImage(job))
	})
	if errors.Is(err, errKeyTaken) {
		return Job{}, s.duplicateKey(ctx, sub, hash, doing)
	}
	return job, wrap(err, doing)
}

// errKeyTaken rolls back a submission whose key another transaction committed first.
var errKeyTaken = errors.New("idempotency key taken")

func insertJob(ctx context.Context, tx pgx.Tx, id uuid.UUID, createdAt time.Time, sub Submission) (Job, error) {
	var parentID *uuid.UUID
	var parentCreatedAt *time.Time
	if sub.Parent != nil {
		parentID, parentCreatedAt = &sub.Parent.ID, &sub.Parent.CreatedAt
	}
	var key *string
	if sub.IdempotencyKey != "" {
		key = &sub.IdempotencyKey
	}
	tags := sub.Tags
	if len(tags) == 0 {
		tags = json.RawMessage("{}")
	}
	models := sub.GPUModels
	if models == nil {
		models = []string{}
	}

	workflow := ""
	if sub.Workflow {
		workflow = WorkflowID(id)
	}

	rows, err := tx.Query(ctx, sqlInsertJob, id, createdAt, key, sub.ProjectID, sub.JobType, sub.Priority,
		sub.Config, tags, parentID, parentCreatedAt, sub.GPUMilli, models, sub.MaxRuntimeSeconds,
		sub.MaxAttempts, sub.MaxPreemptions, sub.CPUMilli, sub.MemoryMiB, sub.SubmittedBy, sub.SubmitterOwner,
		workflow)
	if err != nil {
		return Job{}, err
	}
	job, err := collectOne[Job](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, fmt.Errorf("project %q: %w", sub.ProjectID, ErrNotFound)
	}
	return job, err
}

func (s *Store) duplicateKey(ctx context.Context, sub Submission, hash []byte, doing string) error {
	var existing uuid.UUID
	var existingHash []byte
	if err := s.pool.QueryRow(ctx, sqlGetKey, sub.ProjectID, sub.IdempotencyKey).Scan(&existing, &existingHash); err != nil {
		return wrap(err, doing+": read the job holding the idempotency key")
	}
	return fmt.Errorf("%s: %w", doing, &DuplicateKeyError{JobID: existing, SameRequest: string(existingHash) == string(hash)})
}

const sqlGetKeyHolder = `
SELECT k.job_id, k.request_sha256, j.parent_job_id, j.parent_created_at
FROM job_idempotency_keys k
JOIN jobs j ON j.id = k.job_id AND j.created_at = k.job_created_at
WHERE k.project_id = $1 AND k.idempotency_key = $2`

// KeyHolder is the job that holds an idempotency key, with the request hash and parent
// that distinguish a retry from a different request.
type KeyHolder struct {
	JobID         uuid.UUID
	RequestSHA256 []byte // Submission.RequestHash of the first request
	Parent        *JobRef
}

// GetKeyHolder reads the job that holds a project's idempotency key, so that the API can
// detect a retry before any check that reads the cluster or the quota. It returns
// ErrNotFound when the project has no job with that key.
func (s *Store) GetKeyHolder(ctx context.Context, projectID, key string) (KeyHolder, error) {
	var holder KeyHolder
	var parentID *uuid.UUID
	var parentCreatedAt *time.Time
	err := s.pool.QueryRow(ctx, sqlGetKeyHolder, projectID, key).Scan(&holder.JobID, &holder.RequestSHA256,
		&parentID, &parentCreatedAt)
	if err != nil {
		return KeyHolder{}, wrap(err, fmt.Sprintf("read the job holding idempotency key %q of project %s", key, projectID))
	}
	if parentID != nil && parentCreatedAt != nil {
		holder.Parent = &JobRef{ID: *parentID, CreatedAt: *parentCreatedAt}
	}
	return holder, nil
}

// newJobID returns a UUIDv7 and the millisecond timestamp it carries.
func newJobID() (uuid.UUID, time.Time, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.Nil, time.Time{}, fmt.Errorf("generate job id: %w", err)
	}
	sec, nsec := id.Time().UnixTime()
	return id, time.Unix(sec, nsec).UTC(), nil
}

// createdAtOf returns the created_at that SubmitJob stored for id, when id is a UUIDv7.
func createdAtOf(id uuid.UUID) (time.Time, bool) {
	if id.Version() != 7 {
		return time.Time{}, false
	}
	sec, nsec := id.Time().UnixTime()
	return time.Unix(sec, nsec).UTC(), true
}

const sqlGetJobByRef = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1 AND created_at = $2`

const sqlGetJobByID = `SELECT ` + jobColumns + ` FROM jobs WHERE id = $1`

// GetJob reads a job by id. For ids made by SubmitJob it reads one partition; other ids
// probe the primary key of every partition.
func (s *Store) GetJob(ctx context.Context, id uuid.UUID) (Job, error) {
	doing := "get job " + id.String()
	var rows pgx.Rows
	var err error
	if createdAt, ok := createdAtOf(id); ok {
		rows, err = s.pool.Query(ctx, sqlGetJobByRef, id, createdAt)
	} else {
		rows, err = s.pool.Query(ctx, sqlGetJobByID, id)
	}
	if err != nil {
		return Job{}, wrap(err, doing)
	}
	job, err := collectOne[Job](rows)
	return job, wrap(err, doing)
}

const sqlTransitionJob = `
UPDATE jobs SET status = $4, error_message = COALESCE($5, error_message), wait_reason = NULL,
    started_at = CASE WHEN $4::job_status = 'running' THEN COALESCE(started_at, now()) ELSE started_at END,
    completed_at = CASE WHEN $4::job_status IN ('completed', 'failed', 'cancelled', 'eval_failed')
                        THEN now() ELSE completed_at END
WHERE id = $1 AND created_at = $2 AND status = $3
RETURNING ` + jobColumns

// TransitionJob moves a job from the status the caller saw to another. It returns
// ErrStaleStatus when the job is no longer in status from, and ErrIllegalTransition when the
// move is not in the transition table. message, when not empty, is stored as the job's
// error_message.
func (s *Store) TransitionJob(ctx context.Context, ref JobRef, from, to JobStatus, message string) (Job, error) {
	doing := fmt.Sprintf("move job %s from %s to %s", ref.ID, from, to)
	var msg *string
	if message != "" {
		msg = &message
	}
	rows, err := s.pool.Query(ctx, sqlTransitionJob, ref.ID, ref.CreatedAt, from, to, msg)
	if err != nil {
		return Job{}, wrap(err, doing)
	}
	job, err := collectOne[Job](rows)
	if errors.Is(err, pgx.ErrNoRows) {
		return Job{}, s.staleOrMissing(ctx, ref, doing)
	}
	return job, wrap(err, doing)
}

// staleOrMissing explains why a guarded statement on a job changed no row.
func (s *Store) staleOrMissing(ctx context.Context, ref JobRef, doing string) error {
	var status JobStatus
	err := s.pool.QueryRow(ctx, `SELECT status::text FROM jobs WHERE id = $1 AND created_at = $2`,
		ref.ID, ref.CreatedAt).Scan(&status)
	if err != nil {
		return wrap(err, doing)
	}
	return fmt.Errorf("%s: %w (it is %s)", doing, ErrStaleStatus, status)
}
