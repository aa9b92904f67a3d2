package api

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/store"
)

// depthStatuses are the statuses that GET /v1/queues counts.
var depthStatuses = []store.JobStatus{store.JobSubmitted, store.JobQueued, store.JobRunning, store.JobPaused}

// listQueues serves GET /v1/queues: every project with a quota or with unfinished jobs,
// limited to a submitter's own projects.
func (s *Server) listQueues(w http.ResponseWriter, r *http.Request, caller *principal) error {
	quotas, err := s.store.ListQuotaStates(r.Context())
	if err != nil {
		return err
	}
	depths, err := s.store.QueueDepths(r.Context())
	if err != nil {
		return err
	}

	queues := map[string]*Queue{}
	queueOf := func(project string) *Queue {
		if queues[project] == nil {
			depth := make(map[string]int64, len(depthStatuses))
			for _, st := range depthStatuses {
				depth[string(st)] = 0
			}
			queues[project] = &Queue{Project: project, Depth: depth}
		}
		return queues[project]
	}
	for _, q := range quotas {
		view := quotaView(q)
		queueOf(q.ProjectID).Quota = &view
	}
	for _, d := range depths {
		queueOf(d.ProjectID).Depth[string(d.Status)] = d.Jobs
	}

	list := QueueList{Queues: []Queue{}}
	for _, project := range slices.Sorted(maps.Keys(queues)) {
		if caller.mayUseProject(project) {
			list.Queues = append(list.Queues, *queues[project])
		}
	}
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}

// DrainRequest is the optional body of POST /v1/queues/{project}/drain.
type DrainRequest struct {
	// Deadline, an RFC 3339 time, is when the dispatcher preempts the queue's running jobs
	// (they are queued again); a time already past preempts them at once. Without it they
	// run to their end.
	Deadline string `json:"deadline,omitempty"`
}

// drainQueue serves POST /v1/queues/{project}/drain. Once it returns 200, the queue admits
// no job, and its admitted runs that had not started are being stopped; store.DrainQueue
// documents how.
func (s *Server) drainQueue(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	var req DrainRequest
	if err := s.decodeBody(w, r, &req, true); err != nil {
		return err
	}
	if _, err := s.quotaOf(r, project); err != nil {
		return err
	}

	var deadline *time.Time
	if req.Deadline != "" {
		t, err := time.Parse(time.RFC3339Nano, req.Deadline)
		if err != nil {
			return invalid("deadline", "%q is not an RFC 3339 time such as 2026-05-01T18:00:00Z", req.Deadline)
		}
		t = t.UTC()
		deadline = &t
	}
	result, err := s.store.DrainQueue(r.Context(), project, s.now(), deadline, s.audit(caller, "queue.drain"))
	if err != nil {
		return err
	}

	view := DrainResult{Quota: quotaView(result.Quota), RequeuedJobs: make([]uuid.UUID, 0, len(result.Requeued))}
	for _, run := range result.Requeued {
		view.RequeuedJobs = append(view.RequeuedJobs, run.Job.ID)
	}
	s.cfg.Logger.Info("queue drained", "project", project, "deadline", deadline,
		"requeued_jobs", len(view.RequeuedJobs), "actor", caller.token.Name)
	writeJSON(w, http.StatusOK, "application/json", view)
	return nil
}

// undrainQueue serves POST /v1/queues/{project}/undrain. Undraining a queue that is not
// drained changes nothing and returns 200.
func (s *Server) undrainQueue(w http.ResponseWriter, r *http.Request, caller *principal) error {
	if err := s.rejectBody(w, r); err != nil {
		return err
	}
	project := r.PathValue("project")
	if _, err := s.quotaOf(r, project); err != nil {
		return err
	}
	q, changed, err := s.store.UndrainQueue(r.Context(), project, s.audit(caller, "queue.undrain"))
	if err != nil {
		return err
	}
	if changed {
		s.cfg.Logger.Info("queue undrained", "project", project, "actor", caller.token.Name)
	}
	writeJSON(w, http.StatusOK, "application/json", quotaView(q))
	return nil
}

// ReprioritizeRequest is the body of POST /v1/queues/{project}/reprioritize.
type ReprioritizeRequest struct {
	// Delta is added to the priority of each queued job of the project. A delta that would
	// move any of them outside 0..100 is rejected (422) and changes nothing.
	Delta *int `json:"delta"`
}

// MaxPriorityDelta bounds ReprioritizeRequest.Delta either way: it moves a priority across
// the whole range 0..100 and no further.
const MaxPriorityDelta = 100

// ValidDelta reports whether delta is a valid ReprioritizeRequest.Delta: non-zero and at most
// MaxPriorityDelta either way. The CLI checks it too, before it calls the API.
func ValidDelta(delta int) bool {
	return delta != 0 && delta >= -MaxPriorityDelta && delta <= MaxPriorityDelta
}

func (s *Server) reprioritizeQueue(w http.ResponseWriter, r *http.Request, caller *principal) error {
	project := r.PathValue("project")
	var req ReprioritizeRequest
	if err := s.decodeBody(w, r, &req, false); err != nil {
		return err
	}
	if req.Delta == nil || !ValidDelta(*req.Delta) {
		return invalid("delta", "required, a non-zero integer from -%d to %d", MaxPriorityDelta, MaxPriorityDelta)
	}
	if err := s.requireProjectExists(r, project); err != nil {
		return err
	}

	changes, err := s.store.ReprioritizeQueue(r.Context(), project, *req.Delta, s.audit(caller, "queue.reprioritize"))
	var rangeErr *store.PriorityRangeError
	if errors.As(err, &rangeErr) {
		return unprocessable("delta", "%s", priorityRangeText(rangeErr))
	}
	if err != nil {
		return err
	}
	result := ReprioritizeResult{Project: project, Delta: *req.Delta, Changes: make([]PriorityChange, len(changes))}
	for i, c := range changes {
		result.Changes[i] = PriorityChange{JobID: c.JobID, Before: c.Before, After: c.After}
	}
	s.cfg.Logger.Info("queue reprioritized", "project", project, "delta", *req.Delta,
		"jobs", len(changes), "actor", caller.token.Name)
	writeJSON(w, http.StatusOK, "application/json", result)
	return nil
}

// maxJobsNamed is how many out-of-range jobs a rejected reprioritization names; the detail
// counts the others.
const maxJobsNamed = 10

// priorityRangeText is the detail of a rejected reprioritization: the jobs that would leave
// the priority range, with the priority each would get, and the deltas that fit.
func priorityRangeText(e *store.PriorityRangeError) string {
	listed := e.Jobs[:min(len(e.Jobs), maxJobsNamed)]
	named := make([]string, 0, len(listed)+1)
	for _, c := range listed {
		named = append(named, fmt.Sprintf("%s (%d to %d)", c.JobID, c.Before, c.After))
	}
	if more := len(e.Jobs) - len(listed); more > 0 {
		named = append(named, fmt.Sprintf("and %d more", more))
	}
	jobs := fmt.Sprintf("%d queued jobs", len(e.Jobs))
	if len(e.Jobs) == 1 {
		jobs = "1 queued job"
	}
	return fmt.Sprintf("delta %d would move %s outside priorities %d to %d, so no priority changed: "+
		"%s. Give a delta from %d to %d", e.Delta, jobs, store.MinPriority, store.MaxPriority,
		strings.Join(named, ", "), e.MinDelta, e.MaxDelta)
}
