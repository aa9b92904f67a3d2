package api

import (
	"net/http"
	"strconv"

	"github.com/schedulerd/schedulerd/store"
)

var listAuditParams = []string{"project", "before_id", "limit"}

// listAudit serves GET /v1/audit: admin actions, newest first.
func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, _ *principal) error {
	query, err := parseQuery(r, listAuditParams, nil)
	if err != nil {
		return err
	}
	filter := store.AuditFilter{ProjectID: query.Get("project")}
	if query.Has("project") && filter.ProjectID == "" {
		// As in listValues: an empty variable in a script must not list every project.
		return invalid("project", "empty value; leave project out to list every project's records")
	}
	if filter.ProjectID != "" && !projectID.MatchString(filter.ProjectID) {
		return invalid("project", "%q is not a project id", filter.ProjectID)
	}
	if v := query.Get("before_id"); v != "" {
		filter.BeforeID, err = strconv.ParseInt(v, 10, 64)
		if err != nil || filter.BeforeID < 1 {
			return invalid("before_id", "must be a positive integer, the next_page of the previous page")
		}
	}
	pageSize, err := limitParam(query, defaultPageSize, MaxPageSize)
	if err != nil {
		return err
	}

	filter.Limit = pageSize + 1
	records, err := s.store.ListAudit(r.Context(), filter)
	if err != nil {
		return err
	}
	list := AuditList{Records: make([]AuditRecord, 0, min(len(records), pageSize))}
	if len(records) > pageSize {
		records = records[:pageSize]
		list.NextPage = records[pageSize-1].ID
	}
	for _, rec := range records {
		list.Records = append(list.Records, auditView(rec))
	}
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}
