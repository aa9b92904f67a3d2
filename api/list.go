package api

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

const (
	defaultPageSize = 50
	// MaxPageSize bounds limit: a page is read and encoded in one go.
	MaxPageSize = 500
)

var jobStatuses = []store.JobStatus{store.JobSubmitted, store.JobQueued, store.JobRunning, store.JobPaused,
	store.JobCompleted, store.JobFailed, store.JobCancelled, store.JobEvalFailed}

var (
	listJobsParams = []string{"project", "status", "job_type", "created_after", "created_before", "limit", "page_token"}
	// listJobsMultiValued are the parameters of listJobsParams that take several values.
	listJobsMultiValued = []string{"project", "status", "job_type"}
)

// listJobs serves GET /v1/jobs: newest first, one page at a time. The page token holds the
// (created_at, id) of the page's last job, so pages stay stable while jobs are submitted.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, caller *principal) error {
	query, err := parseQuery(r, listJobsParams, listJobsMultiValued)
	if err != nil {
		return err
	}
	filter, err := parseJobFilter(query)
	if err != nil {
		return err
	}
	if err := restrictToCaller(caller, &filter.Projects); err != nil {
		return err
	}

	pageSize := filter.Limit
	filter.Limit = pageSize + 1
	jobs, err := s.store.ListJobs(r.Context(), filter)
	if err != nil {
		return err
	}
	list := JobList{Jobs: make([]Job, 0, min(len(jobs), pageSize))}
	if len(jobs) > pageSize {
		jobs = jobs[:pageSize]
		list.NextPage = encodePageToken(jobs[pageSize-1].Ref(), filterFingerprint("jobs", query))
	}
	for _, j := range jobs {
		list.Jobs = append(list.Jobs, jobView(j))
	}
	writeJSON(w, http.StatusOK, "application/json", list)
	return nil
}

// parseQuery parses the query string strictly. A malformed one, an unknown parameter or a
// repeated parameter that is not in multiValued is a 400, so that a typo does not silently
// widen a listing and limit=5&limit=500 does not silently become 5. The multiValued
// parameters take comma-separated or repeated values (listValues).
func parseQuery(r *http.Request, known, multiValued []string) (url.Values, error) {
	query, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, invalid("query", "malformed query string: %v", err)
	}
	for name, values := range query {
		switch {
		case len(known) == 0:
			return nil, invalid(name, "unknown query parameter; this endpoint takes none")
		case !slices.Contains(known, name):
			return nil, invalid(name, "unknown query parameter; known: %s", strings.Join(known, ", "))
		case len(values) > 1 && !slices.Contains(multiValued, name):
			return nil, invalid(name, "query parameter given %d times; it takes one value", len(values))
		}
	}
	if err := checkQueryStorable(query); err != nil {
		return nil, err
	}
	return query, nil
}

// listValues returns a parameter's values, comma-separated or repeated. An empty value is
// invalid, because a script that fills the parameter from an empty variable would otherwise
// select everything without a word.
func listValues(query url.Values, name string) ([]string, error) {
	var values []string
	for _, v := range query[name] {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				return nil, invalid(name, "empty value in %q; leave %s out to select every one", v, name)
			}
			values = append(values, part)
		}
	}
	return values, nil
}

func parseJobFilter(query url.Values) (store.JobFilter, error) {
	f := store.JobFilter{Limit: defaultPageSize}
	var err error
	if f.Projects, err = listValues(query, "project"); err != nil {
		return f, err
	}
	if f.JobTypes, err = listValues(query, "job_type"); err != nil {
		return f, err
	}
	statuses, err := listValues(query, "status")
	if err != nil {
		return f, err
	}
	for _, p := range f.Projects {
		if !projectID.MatchString(p) {
			return f, invalid("project", "%q is not a project id", p)
		}
	}
	for _, t := range f.JobTypes {
		if !slices.Contains(jobspec.JobTypes, t) {
			return f, invalid("job_type", "%q is not a job type; want one of %s", t, strings.Join(jobspec.JobTypes, ", "))
		}
	}
	for _, v := range statuses {
		if !slices.Contains(jobStatuses, store.JobStatus(v)) {
			return f, invalid("status", "%q is not a job status; want %s", v, joinStatuses(jobStatuses))
		}
		f.Statuses = append(f.Statuses, store.JobStatus(v))
	}

	if f.CreatedAfter, err = timeParam(query, "created_after"); err != nil {
		return f, err
	}
	if f.CreatedBefore, err = timeParam(query, "created_before"); err != nil {
		return f, err
	}
	if f.Limit, err = limitParam(query, defaultPageSize, MaxPageSize); err != nil {
		return f, err
	}
	if token := query.Get("page_token"); token != "" {
		ref, err := decodePageToken(token, filterFingerprint("jobs", query))
		if err != nil {
			return f, err
		}
		f.After = &ref
	}
	return f, nil
}

// timeParam reads an optional time bound. A parameter given empty is invalid, for the
// reason listValues gives, so it fails to parse rather than setting no bound.
func timeParam(query url.Values, name string) (*time.Time, error) {
	if !query.Has(name) {
		return nil, nil
	}
	v := query.Get(name)
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil, invalid(name, "%q is not an RFC 3339 time such as 2026-05-01T00:00:00Z", v)
	}
	return &t, nil
}

func limitParam(query url.Values, fallback, most int) (int, error) {
	v := query.Get("limit")
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, invalid("limit", "must be an integer from 1 to %d, got %q", most, v)
	}
	return n, nil
}

// restrictToCaller limits a submitter to the projects of its token: no filter means all of
// them, and naming another project is 403. Operators and admins keep the filter as it is.
func restrictToCaller(caller *principal, projects *[]string) error {
	if caller.isStaff() {
		return nil
	}
	if len(*projects) == 0 {
		*projects = caller.token.Projects
		return nil
	}
	for _, p := range *projects {
		if err := caller.requireProject(p); err != nil {
			return err
		}
	}
	return nil
}

// A page token holds the page's last row (time and id) and a fingerprint of the filter that
// listed it. A token given with another filter is rejected: the keyset would still work,
// but the pages that follow would no longer add up to one listing.
func encodePageToken(ref store.JobRef, filter string) string {
	raw := ref.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + ref.ID.String() + "|" + filter
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// decodePageToken reads a token of encodePageToken and checks that it was issued for filter.
func decodePageToken(token, filter string) (store.JobRef, error) {
	ref, issuedFor, ok := parsePageToken(token)
	if !ok {
		return store.JobRef{}, invalid("page_token", "not a page token of this API; use next_page of the previous page")
	}
	if issuedFor != filter {
		return store.JobRef{}, invalid("page_token",
			"the token belongs to a listing with other filters; repeat that listing's filters, or leave page_token out to start from the first page")
	}
	return ref, nil
}

func parsePageToken(token string) (ref store.JobRef, filter string, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return store.JobRef{}, "", false
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 3 {
		return store.JobRef{}, "", false
	}
	createdAt, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return store.JobRef{}, "", false
	}
	id, err := uuid.Parse(parts[1])
	if err != nil {
		return store.JobRef{}, "", false
	}
	return store.JobRef{ID: id, CreatedAt: createdAt}, parts[2], true
}

// filterFingerprint names a listing: the endpoint and its query without the page parameters.
// A parameter's values are split at commas and sorted, so project=a,b and project=b&project=a
// are the same listing.
func filterFingerprint(endpoint string, query url.Values) string {
	h := sha256.New()
	h.Write([]byte(endpoint))
	for _, name := range slices.Sorted(maps.Keys(query)) {
		if name == "page_token" || name == "limit" {
			continue
		}
		var values []string
		for _, v := range query[name] {
			for part := range strings.SplitSeq(v, ",") {
				values = append(values, strings.TrimSpace(part))
			}
		}
		slices.Sort(values)
		fmt.Fprintf(h, "\x00%s=%q", name, values)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}
