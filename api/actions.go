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
	// parentTo and parentFrom are the change as it applies to an hpo parent, which moves
	// its trials with it (store.MoveHPOParent). A parent never waits in the queue, so its
	// resume moves it back to running.
	parentTo   store.JobStatus
	parentFrom []store.JobStatus
	done       string // log message
}

var (
	cancelAction = jobAction{
		name:       "cancel",
		to:         store.JobCancelled,
		from:       []store.JobStatus{store.JobSubmitted, store.JobQueued, store.JobRunning, store.JobPaused},
		parentTo:   store.JobCancelled,
		parentFrom: []store.JobStatus{store.JobSubmitted, store.JobRunning, store.JobPaused},
		done:       "job cancelled",
	}
	pauseAction = jobAction{
		name:       "pause",
		to:         store.JobPaused,
		from:       []store.JobStatus{store.JobQueued, store.JobRunning},
		parentTo:   store.JobPaused,
		parentFrom: []store.JobStatus{store.JobRunning},
		done:       "job paused",
	}
	resumeAction = jobAction{
		name:       "resume",
		to:         store.JobQueued,
		from:       []store.JobStatus{store.JobPaused},
		parentTo:   store.JobRunning,
		parentFrom: []store.JobStatus{store.JobPaused},
		done:       "job resumed",
	}
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
	if job.JobType == "hpo" {
		return s.applyParentAction(w, r, caller, job, a)
	}

	for attempt := 1; ; attempt++ {
		claim := claimsPause(caller, job, a)
		if job.Status == a.to && !claim {
			writeJSON(w, http.StatusOK, "application/json", jobView(job))
			return nil
		}
		if !claim && !slices.Contains(a.from, job.Status) {
			return conflict("%s applies to a job that is %s; job %s is %s",
				a.name, joinStatuses(a.from), job.ID, job.Status)
		}
		if err := s.checkParentNotPaused(r, caller, job, a); err != nil {
			return err
		}

		updated, err := s.moveJob(r, caller, job, a)
		var held *store.PauseHeldError
		switch {
		case err == nil:
			s.cfg.Logger.Info(a.done, "job_id", job.ID, "project", job.ProjectID,
				"from", job.Status, "actor", caller.token.Name)
			writeJSON(w, http.StatusOK, "application/json", jobView(updated))
			return nil
		case errors.As(err, &held):
			return pauseHeld(held)
		case errors.Is(err, store.ErrRunLive):
			return conflict("job %s is still stopping its last run; retry in a few seconds", job.ID)
		case retryAfterRead(err, job) && attempt < staleRetries:
			if job, err = s.store.GetJob(r.Context(), job.ID); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// claimsPause reports whether a is a pause that makes the paused job's pause the caller's
// own (store.ClaimPause). A pause of a trial that its hpo parent's pause paused does, so
// that the parent's resume leaves the trial paused. An operator's or admin's pause of a job
// paused without a hold does too, so that the job is held as if the caller had paused it.
func claimsPause(caller *principal, job store.Job, a jobAction) bool {
	if a.name != pauseAction.name || job.Status != store.JobPaused {
		return false
	}
	return job.PausedByParent || (caller.isStaff() && !job.PauseHeld())
}

// moveJob applies a to job, claiming the pause of a job that is already paused (see
// claimsPause). The audit names the caller, from which the store records who paused the job
// and decides whether a pause hold stops the resume.
func (s *Server) moveJob(r *http.Request, caller *principal, job store.Job, a jobAction) (store.Job, error) {
	audit := s.audit(caller, "job."+a.name)
	if job.Status == a.to {
		return s.store.ClaimPause(r.Context(), job.Ref(), audit)
	}
	return s.store.SetJobStatus(r.Context(), job.Ref(), job.Status, a.to, s.now(), audit)
}

// pauseHeld is the 403 of a submitter's resume of a job that an operator or admin paused.
// The error names the job, the token that paused it and who may resume it.
func pauseHeld(held *store.PauseHeldError) *Problem {
	return forbidden("%s", held.Error())
}

// retryAfterRead reports whether a job action that failed with err is worth a new try on
// the job read again. That is so when another writer changed the job first. It is also so
// when the database rejected the resume of a trial whose parent was paused after the check.
func retryAfterRead(err error, job store.Job) bool {
	return errors.Is(err, store.ErrStaleStatus) ||
		(errors.Is(err, store.ErrIllegalTransition) && job.ParentJobID != nil)
}

// checkParentNotPaused rejects the resume of a trial whose hpo parent is paused: it would
// start a trial of a paused search. The database rejects it too (migration 24); this check
// names the way out, which for a submitter under the parent's pause hold is an operator.
func (s *Server) checkParentNotPaused(r *http.Request, caller *principal, job store.Job, a jobAction) error {
	if a.name != resumeAction.name || job.ParentJobID == nil {
		return nil
	}
	parent, err := s.store.GetJob(r.Context(), *job.ParentJobID)
	if err != nil {
		return fmt.Errorf("read the parent of job %s: %w", job.ID, err)
	}
	switch {
	case parent.JobType != "hpo" || parent.Status != store.JobPaused:
		return nil
	case parent.PauseHeld() && parent.PausedByToken != nil && !caller.isStaff():
		return conflict("job %s is a trial of hpo job %s, which %s token %q paused: "+
			"an operator or admin must resume the parent first", job.ID, parent.ID, *parent.PausedByRole,
			*parent.PausedByToken)
	}
	return conflict("job %s is a trial of hpo job %s, which is paused: resume the parent first",
		job.ID, parent.ID)
}

// applyParentAction applies a to an hpo parent and its trials in one transaction. A
// parent already in the target status gets 200 and stays unchanged, as other jobs do,
// unless the caller claims its pause (see claimsPause).
func (s *Server) applyParentAction(w http.ResponseWriter, r *http.Request, caller *principal, job store.Job,
	a jobAction) error {
	for attempt := 1; ; attempt++ {
		claim := claimsPause(caller, job, a)
		if job.Status == a.parentTo && !claim {
			writeJSON(w, http.StatusOK, "application/json", jobView(job))
			return nil
		}
		if !claim && !slices.Contains(a.parentFrom, job.Status) {
			return conflict("%s applies to an hpo parent that is %s; job %s is %s",
				a.name, joinStatuses(a.parentFrom), job.ID, job.Status)
		}

		move, err := s.moveParent(r, caller, job, a)
		var live *store.TrialRunLiveError
		var held *store.PauseHeldError
		switch {
		case err == nil:
			s.cfg.Logger.Info(a.done, "job_id", job.ID, "project", job.ProjectID, "from", job.Status,
				"trials", len(move.Trials), "actor", caller.token.Name)
			writeJSON(w, http.StatusOK, "application/json", jobView(move.Parent))
			return nil
		case errors.As(err, &held):
			return pauseHeld(held)
		case errors.Is(err, store.ErrTrialsEnded):
			return conflict("job %s is an hpo parent whose trials have all ended, so nothing is left to pause. "+
				"Its workflow ends it once it has scored them", job.ID)
		case errors.As(err, &live):
			return conflict("trial %s of hpo job %s is still stopping its last run; retry in a few seconds",
				live.Trial, job.ID)
		case errors.Is(err, store.ErrStaleStatus) && attempt < staleRetries:
			if job, err = s.store.GetJob(r.Context(), job.ID); err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// moveParent applies a to the hpo parent job and its trials, or claims the pause of a
// paused parent, which changes no trial.
func (s *Server) moveParent(r *http.Request, caller *principal, job store.Job,
	a jobAction) (store.ParentMove, error) {
	audit := s.audit(caller, "job."+a.name)
	if job.Status == a.parentTo {
		parent, err := s.store.ClaimPause(r.Context(), job.Ref(), audit)
		return store.ParentMove{Parent: parent}, err
	}
	return s.store.MoveHPOParent(r.Context(), job.Ref(), job.Status, a.parentTo, s.now(), audit)
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
