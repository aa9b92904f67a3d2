package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/schedulerd/schedulerd/store"
)

// projectID is the form of project ids and Kubernetes namespaces (a DNS label), as the
// projects table checks it.
var projectID = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// dnsLabelRule states the rule of projectID in words, for the messages that reject a value.
const dnsLabelRule = "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"

// ProjectRequest is the body of POST /v1/projects. Only id is always required: on an
// existing project a field left out keeps its value, and to create one, org is required.
type ProjectRequest struct {
	ID          string  `json:"id"`
	Org         *string `json:"org,omitempty"`
	DisplayName *string `json:"display_name,omitempty"`
	// Namespace is the Kubernetes namespace of the project's pods; the project id when a
	// new project is given none.
	Namespace *string `json:"namespace,omitempty"`
	Owner     *string `json:"owner,omitempty"`
}

func (req ProjectRequest) validate() error {
	switch {
	case !projectID.MatchString(req.ID):
		return invalid("id", "%q is not a project id: %s", req.ID, dnsLabelRule)
	case req.Org != nil && !validOrg(*req.Org):
		return invalid("org", "%q is not an org: %s", *req.Org, orgRule)
	case req.Namespace != nil && !projectID.MatchString(*req.Namespace):
		return invalid("namespace", "%q is not a Kubernetes namespace name (a DNS label): %s",
			*req.Namespace, dnsLabelRule)
	case req.Namespace != nil && strings.HasPrefix(*req.Namespace, "kube-"):
		return invalid("namespace", "%q is one of the namespaces Kubernetes keeps for itself (kube-*)", *req.Namespace)
	case req.DisplayName != nil && !validLabel(*req.DisplayName):
		return invalid("display_name", "%q is not a display name: %s", *req.DisplayName, labelRule)
	case req.Owner != nil && !validLabel(*req.Owner):
		return invalid("owner", "%q is not an owner: %s", *req.Owner, labelRule)
	}
	return nil
}

// labelRule describes a valid display name or owner for error messages.
const labelRule = "at most 200 characters, without control characters such as tab or newline"

// validLabel reports whether a display name or owner follows labelRule. Empty clears the
// field. The limit counts characters, as the varchar(200) columns do. Control characters
// are rejected for the reason validOrg gives.
func validLabel(s string) bool {
	return utf8.RuneCountInString(s) <= 200 && !strings.ContainsFunc(s, unicode.IsControl)
}

// orgRule describes a valid org for error messages.
const orgRule = "1 to 63 characters, not all spaces, without control characters such as tab or newline"

// validOrg reports whether org follows orgRule. The limit counts characters, as the
// varchar(63) columns do, not bytes. Control characters are rejected because the org is
// printed in the CLI's tables and in reports, where a tab or newline breaks the columns.
func validOrg(org string) bool {
	n := utf8.RuneCountInString(org)
	if n == 0 || n > 63 || strings.TrimSpace(org) == "" {
		return false
	}
	return !strings.ContainsFunc(org, unicode.IsControl)
}

// upsertProject serves POST /v1/projects: it creates the project (201) or updates the
// fields the request gives (200).
func (s *Server) upsertProject(w http.ResponseWriter, r *http.Request, caller *principal) error {
	var req ProjectRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}

	change := store.ProjectChange{ID: req.ID, OrgID: req.Org, DisplayName: req.DisplayName,
		K8sNamespace: req.Namespace, Owner: req.Owner}
	saved, created, err := s.store.SaveProject(r.Context(), change, s.audit(caller, "project.save"))
	if errors.Is(err, store.ErrNotFound) {
		return invalid("org", "required to create project %q, which does not exist", req.ID)
	}
	if err != nil {
		return err
	}

	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/projects/"+saved.ID)
	}
	s.cfg.Logger.Info("project saved", "project", saved.ID, "created", created, "org", saved.OrgID,
		"namespace", saved.K8sNamespace, "actor", caller.token.Name)
	writeJSON(w, status, "application/json", projectView(saved))
	return nil
}

// getProject serves GET /v1/projects/{project}.
func (s *Server) getProject(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	if err := caller.requireProject(project); err != nil {
		return err
	}
	p, err := s.store.GetProject(r.Context(), project)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("project %q does not exist", project)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", projectView(p))
	return nil
}

// listProjects serves GET /v1/projects: every project, limited to a submitter's own.
func (s *Server) listProjects(w http.ResponseWriter, r *http.Request, caller *principal) error {
	projects, err := s.store.ListProjects(r.Context())
	if err != nil {
		return err
	}

	list := ProjectList{Projects: []Project{}}
	for _, p := range projects {
		if caller.mayUseProject(p.ID) {
			list.Projects = append(list.Projects, projectView(p))
		}
	}
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}

// QuotaRequest is the body of PUT /v1/projects/{project}/quota. Every field is required:
// PUT replaces the quota's limits. What is used, reserved and drained is kept.
type QuotaRequest struct {
	GPUHoursBudget    *float64 `json:"gpu_hours_budget"`
	MaxConcurrentJobs *int     `json:"max_concurrent_jobs"`
	PriorityTier      *int     `json:"priority_tier"`
	// PeriodStart and PeriodEnd are dates, YYYY-MM-DD; the period ends before PeriodEnd.
	PeriodStart *string `json:"period_start"`
	PeriodEnd   *string `json:"period_end"`
}

// maxBudget is the largest budget numeric(14, 4) holds.
const maxBudget = 9_999_999_999

// parse checks a request that sets a whole quota, as PUT does: every field is required.
func (req QuotaRequest) parse(project string) (store.Quota, error) {
	q := store.Quota{ProjectID: project}
	c, err := req.change(true)
	if err != nil {
		return q, err
	}
	q.GPUHoursBudget, q.MaxConcurrentJobs, q.PriorityTier = *c.GPUHoursBudget, *c.MaxConcurrentJobs, *c.PriorityTier
	q.PeriodStart, q.PeriodEnd = *c.PeriodStart, *c.PeriodEnd
	if !q.PeriodEnd.After(q.PeriodStart) {
		return q, periodEndProblem(q.PeriodStart, q.PeriodEnd)
	}
	return q, nil
}

// change checks the fields the request gives and returns them as a change of a quota.
// With requireAll, a missing field is an error too.
func (req QuotaRequest) change(requireAll bool) (store.QuotaChange, error) {
	var c store.QuotaChange
	switch {
	case req.GPUHoursBudget == nil && requireAll:
		return c, invalid("gpu_hours_budget", "required, in GPU-hours")
	case req.GPUHoursBudget != nil && (*req.GPUHoursBudget < 0 || *req.GPUHoursBudget > maxBudget):
		return c, invalid("gpu_hours_budget", "must be between 0 and %d", maxBudget)
	case req.MaxConcurrentJobs == nil && requireAll:
		return c, invalid("max_concurrent_jobs", "required")
	case req.MaxConcurrentJobs != nil && (*req.MaxConcurrentJobs < 0 || *req.MaxConcurrentJobs > 1_000_000):
		return c, invalid("max_concurrent_jobs", "must be between 0 and 1000000")
	case req.PriorityTier == nil && requireAll:
		return c, invalid("priority_tier", "required, 0 to 100")
	case req.PriorityTier != nil && (*req.PriorityTier < 0 || *req.PriorityTier > 100):
		return c, invalid("priority_tier", "must be between 0 and 100")
	}
	c.GPUHoursBudget, c.MaxConcurrentJobs, c.PriorityTier = req.GPUHoursBudget, req.MaxConcurrentJobs, req.PriorityTier

	var err error
	if c.PeriodStart, err = dateField("period_start", req.PeriodStart, requireAll); err != nil {
		return c, err
	}
	if c.PeriodEnd, err = dateField("period_end", req.PeriodEnd, requireAll); err != nil {
		return c, err
	}
	return c, nil
}

// dateField parses a date field. A missing one is nil, or an error when required.
func dateField(field string, v *string, required bool) (*time.Time, error) {
	if v == nil && required {
		return nil, invalid(field, "required, a date such as 2026-01-01")
	}
	if v == nil {
		return nil, nil
	}
	t, err := time.Parse(time.DateOnly, *v)
	if err != nil {
		return nil, invalid(field, "%q is not a date such as 2026-01-01", *v)
	}
	return &t, nil
}

func (s *Server) getQuota(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	if err := caller.requireProject(project); err != nil {
		return err
	}
	q, err := s.quotaOf(r, project)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, "application/json", quotaView(q))
	return nil
}

// quotaOf reads a project's quota. A missing project or quota is a 404 that names which
// one is missing.
func (s *Server) quotaOf(r *http.Request, project string) (store.QuotaState, error) {
	q, err := s.store.GetQuotaState(r.Context(), project)
	if !errors.Is(err, store.ErrNotFound) {
		return q, err
	}
	if err := s.requireProjectExists(r, project); err != nil {
		return q, err
	}
	return q, noQuota("project %q has no quota; an admin sets one with PUT /v1/projects/%s/quota", project, project)
}

func (s *Server) requireProjectExists(r *http.Request, project string) error {
	_, err := s.store.GetProject(r.Context(), project)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("project %q does not exist", project)
	}
	return err
}

func (s *Server) putQuota(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	var req QuotaRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	q, err := req.parse(project)
	if err != nil {
		return err
	}
	if err := s.requireProjectExists(r, project); err != nil {
		return err
	}

	saved, err := s.store.SetQuota(r.Context(), q, s.audit(caller, "quota.set"))
	return s.quotaSaved(w, caller, project, saved, err)
}

// patchQuota changes the fields the request gives and keeps the others. The store applies
// the change under the quota's row lock, so admins who change different fields at once, or
// a change made while the scheduler renews the period, keep each other's values.
func (s *Server) patchQuota(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	var req QuotaRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	change, err := req.change(false)
	if err != nil {
		return err
	}
	if change == (store.QuotaChange{}) {
		return invalid("", "the request changes nothing: give at least one of gpu_hours_budget, "+
			"max_concurrent_jobs, priority_tier, period_start and period_end")
	}
	if err := s.requireProjectExists(r, project); err != nil {
		return err
	}

	saved, err := s.store.ChangeQuota(r.Context(), project, change, s.audit(caller, "quota.change"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return noQuota("project %q has no quota to change; an admin sets one with PUT /v1/projects/%s/quota",
			project, project)
	}
	var orderErr *store.PeriodOrderError
	if errors.As(err, &orderErr) {
		return periodOrderProblem(orderErr, change)
	}
	return s.quotaSaved(w, caller, project, saved, err)
}

// quotaSaved writes the response to a quota write: the saved quota, or why the store kept
// the old one.
func (s *Server) quotaSaved(w http.ResponseWriter, caller *principal, project string, saved store.QuotaState, err error) error {
	var conflictErr *store.QuotaConflictError
	if errors.As(err, &conflictErr) {
		return unprocessable(conflictErr.Field, "%s", quotaConflictText(conflictErr, s.now()))
	}
	if err != nil {
		return err
	}
	s.cfg.Logger.Info("quota set", "project", project, "gpu_hours_budget", saved.GPUHoursBudget,
		"max_concurrent_jobs", saved.MaxConcurrentJobs, "priority_tier", saved.PriorityTier,
		"period_start", saved.PeriodStart.Format(time.DateOnly), "period_end", saved.PeriodEnd.Format(time.DateOnly),
		"actor", caller.token.Name)
	writeJSON(w, http.StatusOK, "application/json", quotaView(saved))
	return nil
}

// quotaConflictText explains why the store kept the old limit and what would help. Reserved
// GPU-hours return as admitted jobs end, but used ones only when the period renews, so
// waiting for jobs helps only when the budget covers the hours used.
func quotaConflictText(e *store.QuotaConflictError, now time.Time) string {
	if e.Field == "max_concurrent_jobs" {
		return fmt.Sprintf("the limit is below the %d jobs the project has admitted now; "+
			"wait for jobs to end or drain the queue first", int(e.InUse))
	}
	if e.Used > e.Budget {
		return fmt.Sprintf("the budget %.4f is below the %.4f GPU-hours the project has already used "+
			"this period, which return only when the period renews %s; wait for the renewal or give "+
			"a budget of at least %.4f (used plus the %.4f reserved)",
			e.Budget, e.Used, renewalText(e.PeriodEnd, now), e.InUse, e.Reserved)
	}
	return fmt.Sprintf("the budget %.4f is below the %.4f GPU-hours the project has used (%.4f) and "+
		"reserved (%.4f); reservations return as admitted jobs end, so wait for jobs to end or drain "+
		"the queue first, or give a budget of at least %.4f", e.Budget, e.InUse, e.Used, e.Reserved, e.InUse)
}

// renewalText formats when a period that ends on end renews: on that day, or at the
// scheduler's next pass when the day has come.
func renewalText(end, now time.Time) string {
	if end.After(now) {
		return "on " + end.Format(time.DateOnly)
	}
	return "at the scheduler's next pass (it ended on " + end.Format(time.DateOnly) + ")"
}

// periodOrderProblem rejects a change that would end the period on or before its start. It
// blames the date the request gave and names the dates that would be accepted.
func periodOrderProblem(e *store.PeriodOrderError, change store.QuotaChange) *Problem {
	start, end := e.Start.Format(time.DateOnly), e.End.Format(time.DateOnly)
	switch {
	case change.PeriodStart != nil && change.PeriodEnd == nil:
		return invalid("period_start", "the new period_start %s is not before the quota's period_end %s; "+
			"give a period_start before %s, or also a period_end after %s", start, end, end, start)
	case change.PeriodStart == nil:
		return invalid("period_end", "the new period_end %s is not after the quota's period_start %s; "+
			"give a period_end after %s, or also a period_start before %s", end, start, start, end)
	}
	return periodEndProblem(e.Start, e.End)
}

// periodEndProblem rejects a period_end on or before the period_start of the same request.
func periodEndProblem(start, end time.Time) *Problem {
	return invalid("period_end", "%s is not after period_start %s; give a period_end after %s",
		end.Format(time.DateOnly), start.Format(time.DateOnly), start.Format(time.DateOnly))
}
