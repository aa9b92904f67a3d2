package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// SubmitRequest is the body of POST /v1/projects/{project}/jobs.
type SubmitRequest struct {
	JobType string `json:"job_type"`
	// Priority is 0 to 100, higher first; 5 when absent. A submitter may not go above its
	// project's priority tier.
	Priority *int              `json:"priority,omitempty"`
	Config   json.RawMessage   `json:"config"`
	Tags     map[string]string `json:"tags,omitempty"`
	// ParentJobID makes the job a child of another job of the same project, such as a
	// trial of an hpo job.
	ParentJobID string `json:"parent_job_id,omitempty"`
	// IdempotencyKey may also come in the Idempotency-Key header; if both are sent they
	// must be equal.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// DefaultPriority is the priority of a job submitted without one, as in the schema.
const DefaultPriority = 5

const (
	maxTags           = 32
	maxTagValueLength = 256
	maxKeyLength      = 200
)

var tagKey = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)

// submission is a request that passed the checks that need no database.
type submission struct {
	store.Submission
	parentID *uuid.UUID
	spec     jobspec.Spec
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	if err := caller.requireProject(project); err != nil {
		return err
	}
	var req SubmitRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	sub, err := parseSubmission(project, req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	if err := s.checkRetry(r, sub); err != nil {
		return err
	}
	if err := s.checkWorkflowSections(sub); err != nil {
		return err
	}
	sub.SubmittedBy, sub.SubmitterOwner = caller.token.Name, caller.token.Owner
	sub.Workflow = s.cfg.Workflows
	// An operator or admin may submit above the project's priority tier, so their
	// submissions are audited like their priority changes.
	sub.Audit = s.staffAudit(caller, "job.submit")
	if err := s.checkSubmission(r, caller, &sub); err != nil {
		return err
	}

	job, err := s.store.SubmitJob(r.Context(), sub.Submission)
	if err != nil {
		return submitProblem(err, sub.IdempotencyKey)
	}
	s.cfg.Logger.Info("job submitted", "job_id", job.ID, "project", project, "job_type", job.JobType,
		"priority", job.Priority, "actor", caller.token.Name)
	w.Header().Set("Location", jobPath(job.ID))
	writeJSON(w, http.StatusCreated, "application/json", jobView(job))
	return nil
}

func jobPath(id uuid.UUID) string { return "/v1/jobs/" + id.String() }

// parseSubmission checks everything about a submission that needs no database.
func parseSubmission(project string, req SubmitRequest, headerKey string) (submission, error) {
	var sub submission
	priority := DefaultPriority
	if req.Priority != nil {
		priority = *req.Priority
	}
	if priority < 0 || priority > 100 {
		return sub, invalid("priority", "must be between 0 and 100, got %d", priority)
	}

	spec, err := parseConfig(req.JobType, req.Config)
	if err != nil {
		return sub, err
	}
	tags, err := parseTags(req.Tags)
	if err != nil {
		return sub, err
	}
	key, err := idempotencyKey(headerKey, req.IdempotencyKey)
	if err != nil {
		return sub, err
	}
	if req.ParentJobID != "" {
		parent, err := uuid.Parse(req.ParentJobID)
		if err != nil || len(req.ParentJobID) != 36 {
			return sub, invalid("parent_job_id", "%q is not a job id", req.ParentJobID)
		}
		sub.parentID = &parent
	}

	sub.spec = spec
	sub.Submission = store.Submission{
		ProjectID: project, IdempotencyKey: key, JobType: req.JobType, Priority: priority,
		Config: req.Config, Tags: tags, GPUMilli: spec.GPUMilli(), GPUModels: spec.Resources.GPUModels,
		MaxRuntimeSeconds: spec.MaxRuntimeSeconds, MaxAttempts: spec.Attempts(), MaxPreemptions: spec.Preemptions(),
		CPUMilli: spec.Resources.CPUMilli, MemoryMiB: spec.Resources.MemoryMiB,
	}
	return sub, nil
}

// parseConfig decodes and validates the config with the rules of its job type.
func parseConfig(jobType string, raw json.RawMessage) (jobspec.Spec, error) {
	if jobType == "" {
		return jobspec.Spec{}, invalid("job_type", "required; one of %s", strings.Join(jobspec.JobTypes, ", "))
	}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) == 0 || trimmed[0] != '{' {
		return jobspec.Spec{}, invalid("config", "required, as a JSON object")
	}

	spec, err := jobspec.Decode(raw)
	if err == nil {
		err = spec.ValidateFor(jobType)
	}
	var fieldErr *jobspec.FieldError
	if errors.As(err, &fieldErr) {
		return spec, invalid(fieldErr.Field, "%s", fieldErr.Reason)
	}
	return spec, err
}

// parseTags checks the tags and encodes them; no tags encode as {} so that a retry with
// and without an empty tags object is the same request.
func parseTags(tags map[string]string) (json.RawMessage, error) {
	if len(tags) > maxTags {
		return nil, invalid("tags", "at most %d tags, got %d", maxTags, len(tags))
	}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if !tagKey.MatchString(k) {
			return nil, invalid("tags", "invalid tag key %q: use 1 to 63 letters, digits, '.', '_', '/' or '-'", k)
		}
		if len(tags[k]) > maxTagValueLength {
			return nil, invalid("tags."+k, "longer than %d bytes", maxTagValueLength)
		}
	}
	if tags == nil {
		tags = map[string]string{}
	}
	encoded, err := json.Marshal(tags)
	return encoded, err
}

// idempotencyKey merges the header and body keys.
func idempotencyKey(header, body string) (string, error) {
	if header != "" && body != "" && header != body {
		return "", invalid("Idempotency-Key", "the header and the body's idempotency_key differ")
	}
	key, field := body, "idempotency_key"
	if header != "" {
		key, field = header, "Idempotency-Key"
	}
	if len(key) > maxKeyLength {
		return "", invalid(field, "longer than %d characters", maxKeyLength)
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return "", invalid(field, "use printable ASCII without spaces")
		}
	}
	return key, nil
}

// checkRetry returns submitProblem's 409 or 422 for a submission whose idempotency key
// its project already uses. It runs before the checks that read the daemon's settings,
// the cluster or the quota, so that a retry gets its first job even when its GPU model
// lost its nodes or its project's tier or budget changed since. SubmitJob checks the key
// again for submissions that race with this one.
func (s *Server) checkRetry(r *http.Request, sub submission) error {
	if sub.IdempotencyKey == "" {
		return nil
	}
	holder, err := s.store.GetKeyHolder(r.Context(), sub.ProjectID, sub.IdempotencyKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}

	// The request hash covers the parent's key, and checkSubmission reads the parent's
	// creation time only for a new job. A parent with the first job's parent id is
	// therefore compared with the key the first job stored.
	retry := sub.Submission
	if sub.parentID != nil {
		retry.Parent = &store.JobRef{ID: *sub.parentID}
		if holder.Parent != nil && holder.Parent.ID == *sub.parentID {
			retry.Parent = holder.Parent
		}
	}
	hash, err := retry.RequestHash()
	if err != nil {
		return err
	}
	same := bytes.Equal(hash, holder.RequestSHA256)
	return submitProblem(&store.DuplicateKeyError{JobID: holder.JobID, SameRequest: same}, sub.IdempotencyKey)
}

// checkWorkflowSections rejects what only a job workflow carries out when the daemon runs
// without workflows: such a job would run its pods but never search, evaluate or register.
// With workflows but without S3 it rejects the same jobs, whose workflows would wait to read
// eval reports or model artifacts.
func (s *Server) checkWorkflowSections(sub submission) error {
	var missing string
	switch {
	case !s.cfg.Workflows:
		missing = "this daemon runs without a Temporal address"
	case !s.cfg.S3Configured:
		missing = "the workflow reads eval reports and model artifacts from S3, and this daemon has no " +
			"S3 endpoint or region (SCHEDULERD_S3_ENDPOINT, SCHEDULERD_S3_REGION or AWS_REGION)"
	default:
		return nil
	}

	switch {
	case sub.JobType == "hpo":
		return unprocessable("job_type", "hpo jobs are run by workflows; %s", missing)
	case sub.spec.Model != nil:
		return unprocessable("config.model", "a model is registered by the job's workflow; %s", missing)
	case sub.spec.Evaluation != nil:
		return unprocessable("config.evaluation", "an evaluation is run by the job's workflow; %s", missing)
	}
	return nil
}

// checkSubmission checks what needs the database: the project, its priority tier, the GPU
// models and the parent job.
func (s *Server) checkSubmission(r *http.Request, caller *principal, sub *submission) error {
	ctx := r.Context()
	if _, err := s.store.GetProject(ctx, sub.ProjectID); errors.Is(err, store.ErrNotFound) {
		return notFound("project %q does not exist", sub.ProjectID)
	} else if err != nil {
		return err
	}
	quota, err := s.projectQuota(r, sub.ProjectID)
	if err != nil {
		return err
	}
	if err := checkPriorityTier(caller, sub.ProjectID, quota, sub.Priority); err != nil {
		return err
	}
	if err := s.checkGPUModels(r, sub.spec); err != nil {
		return err
	}
	if err := checkReservation(sub, quota); err != nil {
		return err
	}
	if err := s.checkEvaluatedVersion(r, sub); err != nil {
		return err
	}
	if sub.parentID == nil {
		return nil
	}

	// A parent in another project gets the same message as a missing one, so that a
	// submission cannot tell whether another project's job id exists.
	parent, err := s.store.GetJob(ctx, *sub.parentID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && parent.ProjectID != sub.ProjectID) {
		return unprocessable("parent_job_id", "no job %s exists in project %s", sub.parentID, sub.ProjectID)
	}
	if err != nil {
		return err
	}
	// An hpo job counts, waits for and scores every child as one of its trials, and only its
	// workflow creates them, from its search and budget.
	if parent.JobType == "hpo" {
		return unprocessable("parent_job_id", "job %s is an hpo job, whose trials only its workflow creates", parent.ID)
	}
	sub.Parent = &store.JobRef{ID: parent.ID, CreatedAt: parent.CreatedAt}
	return nil
}

// checkEvaluatedVersion makes an eval_only job name a model version of its own project, so
// that it neither runs for nothing nor reads another project's model.
func (s *Server) checkEvaluatedVersion(r *http.Request, sub *submission) error {
	eval := sub.spec.Evaluation
	if sub.JobType != "eval_only" || eval == nil || eval.ModelVersionID == "" {
		return nil
	}
	const field = "config.evaluation.model_version_id"
	id, err := uuid.Parse(eval.ModelVersionID)
	if err != nil {
		return unprocessable(field, "%q is not a model version id", eval.ModelVersionID)
	}
	// As for a parent job, another project's version gets the same message as a missing one.
	version, err := s.store.GetModelVersion(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && version.ProjectID != sub.ProjectID) {
		return unprocessable(field, "no model version %s exists in project %s", id, sub.ProjectID)
	}
	return err
}

// projectQuota reads the project's quota, or returns nil when the project has none.
func (s *Server) projectQuota(r *http.Request, project string) (*store.QuotaState, error) {
	quota, err := s.store.GetQuotaState(r.Context(), project)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &quota, nil
}

// DefaultPriorityTier is the priority tier of a quota created without one, as in the schema.
const DefaultPriorityTier = 5

// checkPriorityTier keeps a submitter's priorities at or below its project's tier, so that
// a team cannot jump the queue of every other team by itself. Operators and admins may set
// any priority. A project without a quota (nil) is held to DefaultPriorityTier, so that
// jobs queued before the quota exists cannot jump the queue once it does.
func checkPriorityTier(caller *principal, project string, quota *store.QuotaState, priority int) error {
	if caller.isStaff() {
		return nil
	}
	if quota == nil {
		if priority > DefaultPriorityTier {
			return unprocessable("priority", "%d is above the default priority tier %d of project %q, "+
				"which has no quota yet; an operator may set it, or an admin may set the quota's priority_tier",
				priority, DefaultPriorityTier, project)
		}
		return nil
	}
	if priority > quota.PriorityTier {
		return unprocessable("priority", "%d is above the priority tier %d of project %q; an operator may set it",
			priority, quota.PriorityTier, quota.ProjectID)
	}
	return nil
}

// checkReservation rejects a job whose reservation, its GPUs times max_runtime_seconds, is
// larger than its project's whole budget for the period. Waiting could never admit it, and
// a max_runtime_seconds far too long is the likely cause. A project without a quota (nil)
// has no budget yet, so its jobs wait for one.
func checkReservation(sub *submission, quota *store.QuotaState) error {
	if quota == nil {
		return nil
	}
	hours := jobspec.ReservedGPUHours(sub.spec.GPUMilli(), sub.spec.MaxRuntimeSeconds)
	if jobspec.FitsBudget(quota.GPUHoursBudget, hours) {
		return nil
	}
	return unprocessable("config.max_runtime_seconds", "the job reserves %s GPU-hours (%s for %d s), more than "+
		"project %q's whole budget of %s GPU-hours for its period; shorten max_runtime_seconds or raise the budget",
		strconv.FormatFloat(hours, 'f', -1, 64), gpuCount(int64(sub.spec.GPUMilli())), sub.spec.MaxRuntimeSeconds,
		sub.ProjectID, strconv.FormatFloat(quota.GPUHoursBudget, 'f', -1, 64))
}

// checkGPUModels rejects the model lists that checkModelNames rejects, a GPU job of any
// model while no model has a node (checkAnyModelHasNodes), and a job that no node of its
// models could hold. Such a job could only wait, and a typo in a model name or a GPU count
// is the likely cause. The size check passes for a job without a GPU while no model has a
// node.
func (s *Server) checkGPUModels(r *http.Request, spec jobspec.Spec) error {
	known, err := s.store.ListGPUModels(r.Context())
	if err != nil {
		return err
	}
	if err := checkModelNames(spec.Resources.GPUModels, known); err != nil {
		return err
	}
	if err := checkAnyModelHasNodes(spec, known); err != nil {
		return err
	}

	res, gpuMilli := spec.Resources, spec.GPUMilli()
	var sizes []string
	for _, m := range known {
		if m.Nodes == 0 || (len(res.GPUModels) > 0 && !slices.Contains(res.GPUModels, m.Model)) {
			continue
		}
		if m.Holds(gpuMilli, res.CPUMilli, res.MemoryMiB) {
			return nil
		}
		sizes = append(sizes, m.Model+" nodes offer "+nodeSizes(m))
	}
	if len(sizes) == 0 {
		return nil
	}
	pod := store.NodeShape{GPUMilli: int64(gpuMilli), CPUMilli: res.CPUMilli, MemoryMiB: res.MemoryMiB}
	return unprocessable("config.resources", "no node is large enough: the job asks for %s per pod; %s",
		shapeText(pod), strings.Join(sizes, "; "))
}

// maxSizesListed bounds the node sizes a refusal lists per model, so that a model whose
// nodes differ a little each gives a readable message.
const maxSizesListed = 4

// nodeSizes lists the node sizes of a model (store.ModelCapacity.Shapes), largest GPU
// count first.
func nodeSizes(m store.ModelCapacity) string {
	shapes := m.Shapes()
	var texts []string
	for _, s := range shapes[:min(len(shapes), maxSizesListed)] {
		texts = append(texts, shapeText(s))
	}
	text := strings.Join(texts, " or ")
	if more := len(shapes) - maxSizesListed; more > 0 {
		text += fmt.Sprintf(" (and %d more sizes)", more)
	}
	return text
}

// shapeText writes a size as "8 GPUs, 64 cores, 262144 MiB", leaving out CPU and memory
// when they are zero, as in a job that requests none.
func shapeText(s store.NodeShape) string {
	parts := []string{gpuCount(s.GPUMilli)}
	if s.CPUMilli > 0 {
		parts = append(parts, cores(s.CPUMilli))
	}
	if s.MemoryMiB > 0 {
		parts = append(parts, strconv.FormatInt(s.MemoryMiB, 10)+" MiB")
	}
	return strings.Join(parts, ", ")
}

// checkModelNames rejects a model that no node of the cluster has ever had, most likely a
// typo, and a list none of whose models has a ready, uncordoned node now. A listed model
// whose nodes are cordoned or gone is accepted next to one that has nodes, because the
// job can run on that one.
func checkModelNames(models []string, known []store.ModelCapacity) error {
	if len(models) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var withNodes []string
	for _, m := range known {
		seen[m.Model] = true
		if m.Nodes > 0 {
			withNodes = append(withNodes, m.Model)
		}
	}

	for i, m := range models {
		if !seen[m] {
			return newProblem(TypeUnknownGPUModel, http.StatusUnprocessableEntity,
				fmt.Sprintf("config.resources.gpu_models[%d]", i),
				fmt.Sprintf("no node of the cluster has had GPU model %q; models with ready, uncordoned nodes: %s",
					m, listOrNone(withNodes)))
		}
	}
	if !slices.ContainsFunc(models, func(m string) bool { return slices.Contains(withNodes, m) }) {
		return newProblem(TypeUnknownGPUModel, http.StatusUnprocessableEntity, "config.resources.gpu_models",
			fmt.Sprintf("no ready, uncordoned node has GPU model %s; models with such nodes: %s",
				strings.Join(models, " or "), listOrNone(withNodes)))
	}
	return nil
}

// checkAnyModelHasNodes rejects a GPU job that allows any model (an empty gpu_models)
// while no model has a ready, uncordoned node. Such a job could only wait for a node to
// join, like a job that names only models without nodes, which checkModelNames rejects.
func checkAnyModelHasNodes(spec jobspec.Spec, known []store.ModelCapacity) error {
	if len(spec.Resources.GPUModels) > 0 || spec.GPUMilli() == 0 {
		return nil
	}
	models := make([]string, 0, len(known))
	for _, m := range known {
		if m.Nodes > 0 {
			return nil
		}
		models = append(models, m.Model)
	}
	return newProblem(TypeUnknownGPUModel, http.StatusUnprocessableEntity, "config.resources.gpu_models",
		"the job allows any GPU model, but no GPU model has a ready, uncordoned node; submit it again "+
			"once one has. GPU models the cluster has had: "+listOrNone(models))
}

// gpuCount writes thousandths of a GPU as GPUs: "8 GPUs", "1 GPU", "0.5 GPU".
func gpuCount(milli int64) string { return thousandths(milli, "GPU", "GPUs") }

// cores writes thousandths of a core as cores: "64 cores", "1 core", "0.5 core".
func cores(milli int64) string { return thousandths(milli, "core", "cores") }

// thousandths writes milli/1000 with the unit's singular up to 1 and its plural above.
func thousandths(milli int64, singular, plural string) string {
	unit := plural
	if milli <= 1000 {
		unit = singular
	}
	return strconv.FormatFloat(float64(milli)/1000, 'f', -1, 64) + " " + unit
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// submitProblem turns a failed SubmitJob into the idempotency responses: 409 for a retry,
// 422 for a key reused with a different request.
func submitProblem(err error, key string) error {
	var dup *store.DuplicateKeyError
	if !errors.As(err, &dup) {
		return err
	}
	if dup.SameRequest {
		detail := fmt.Sprintf("job %s was already submitted with idempotency key %q and the same request",
			dup.JobID, key)
		p := newProblem(TypeDuplicateSubmission, http.StatusConflict, "idempotency_key", detail)
		p.JobID, p.location = dup.JobID.String(), jobPath(dup.JobID)
		return p
	}
	detail := fmt.Sprintf("idempotency key %q belongs to job %s, submitted with a different request; use a new key",
		key, dup.JobID)
	p := newProblem(TypeIdempotencyKeyReused, http.StatusUnprocessableEntity, "idempotency_key", detail)
	p.JobID = dup.JobID.String()
	return p
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	job, err := s.jobForCaller(r, caller)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", jobView(job))
	return nil
}

// jobForCaller reads the job of the path. A job of a project the caller may not act on is
// not found.
func (s *Server) jobForCaller(r *http.Request, caller *principal) (store.Job, error) {
	id, err := pathJobID(r)
	if err != nil {
		return store.Job{}, err
	}
	job, err := s.store.GetJob(r.Context(), id)
	err = caller.hideOtherProject(err, job.ProjectID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Job{}, notFound("job %s does not exist", id)
	}
	return job, err
}
