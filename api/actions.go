package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/schedulerd/schedulerd/store"
)

// staleRetries is how often a job action reads the job again after another writer changed
// it first (a dequeue admitting it, a run ending) before it returns 409.
const staleRetries = 3

// jobAction is a status change a caller may ask for.
type jobAction struct {
	name string
	to   store.JobStatus
	from []store.JobStatus
	done string // log message
}

var (
	cancelAction = jobAction{"cancel", store.JobCancelled,
		[]store.JobStatus{store.JobSubmitted, store.JobQueued, store.JobRunning, store.JobPaused}, "job cancelled"}
	pauseAction = jobAction{"pause", store.JobPaused,
		[]store.JobStatus{store.JobQueued, store.JobRunning}, "job paused"}
	resumeAction = jobAction{"resume", store.JobQueued, []store.JobStatus{store.JobPaused}, "job resumed"}
)

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	return s.applyJobAction(w, r, caller, cancelAction)
}

func (s *Server) pauseJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	return s.applyJobAction(w, r, caller, pauseAction)
}

func (s *Server) resumeJob(w http.ResponseWriter, r *http.Request, caller *principal) error {
	return s.applyJobAction(w, r, caller, resumeAction)
}

// applyJobAction moves the job with a guarded statement from the status it was read in.
// A job already in the target status gets 200 and stays unchanged, so retries are safe.
func (s *Server) applyJobAction(w http.ResponseWriter, r *http.Request, caller *principal, a jobAction) error {
	if err := s.rejectBody(w, r); err != nil {
		return err
	}
	job, err := s.jobForCaller(r, caller)
	if err != nil {
		return err
	}

	if job.JobType == "hpo" && (a.to == store.JobPaused || a.to == store.JobQueued) {
		// An hpo parent holds no pod and never waits in the queue; its trials are jobs of
		// their own.
		return conflict("job %s is an hpo parent, which cannot be %s: cancel it, or %s its trials",
			job.ID, a.to, a.name)
	}
	for attempt := 1; ; attempt++ {
		if job.Status == a.to {
			writeJSON(w, http.StatusOK, "application/json", jobView(job))
			return nil
		}
		if !slices.Contains(a.from, job.Status) {
			return conflict("%s applies to a job that is %s; job %s is %s",
				a.name, joinStatuses(a.from), job.ID, job.Status)
		}

		updated, err := s.store.SetJobStatus(r.Context(), job.Ref(), job.Status, a.to, s.now(),
			s.audit(caller, "job."+a.name))
		switch {
		case err == nil:
			s.cfg.Logger.Info(a.done, "job_id", job.ID, "project", job.ProjectID,
				"from", job.Status, "actor", caller.token.Name)
			writeJSON(w, http.StatusOK, "application/json", jobView(updated))
			return nil
		case errors.Is(err, store.ErrRunLive):
			return conflict("job %s is still stopping its last run; retry in a few seconds", job.ID)
		case errors.Is(err, store.ErrStaleStatus) && attempt < staleRetries:
			if job, err = s.store.GetJob(r.Context(), job.ID); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

func joinStatuses(statuses []store.JobStatus) string {
	words := make([]string, len(statuses))
	for i, s := range statuses {
		words[i] = string(s)
	}
	return strings.Join(words, " or ")
}

// PriorityRequest is the body of PATCH /v1/jobs/{id}/priority.
type PriorityRequest struct {
	Priority *int `json:"priority"`
}

func (s *Server) setJobPriority(w http.ResponseWriter, r *http.Request, caller *principal) error {
	job, err := s.jobForCaller(r, caller)
	if err != nil {
		return err
	}
	var req PriorityRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Priority == nil {
		return invalid("priority", "required, an integer from 0 to 100")
	}
	priority := *req.Priority
	if priority < 0 || priority > 100 {
		return invalid("priority", "must be between 0 and 100, got %d", priority)
	}
	quota, err := s.projectQuota(r, job.ProjectID)
	if err != nil {
		return err
	}
	if err := checkPriorityTier(caller, job.ProjectID, quota, priority); err != nil {
		return err
	}

	for attempt := 1; ; attempt++ {
		if job.Status.Terminal() {
			return conflict("job %s is %s; the priority of a finished job cannot change", job.ID, job.Status)
		}
		updated, err := s.store.SetJobPriority(r.Context(), job.Ref(), job.Status, priority,
			s.audit(caller, "job.priority"))
		switch {
		case err == nil:
			s.cfg.Logger.Info("job priority changed", "job_id", job.ID, "project", job.ProjectID,
				"from", job.Priority, "to", priority, "actor", caller.token.Name)
			writeJSON(w, http.StatusOK, "application/json", jobView(updated))
			return nil
		case errors.Is(err, store.ErrStaleStatus) && attempt < staleRetries:
			if job, err = s.store.GetJob(r.Context(), job.ID); err != nil {
				return err
			}
		default:
			return fmt.Errorf("set priority: %w", err)
		}
	}
}
