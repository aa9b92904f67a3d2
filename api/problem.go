package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/schedulerd/schedulerd/store"
)

// Problem is an RFC 9457 problem document, the body of every error response. Field,
// JobID, ApprovalID and RequestID are extension members.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field is the JSON path, query parameter or header that the problem is about.
	Field string `json:"field,omitempty"`
	// JobID is the existing job of a duplicate submission or of a reused idempotency key.
	JobID string `json:"job_id,omitempty"`
	// ApprovalID is the pending approval of a promotion request for the same version and
	// stage.
	ApprovalID string `json:"approval_id,omitempty"`
	// RequestID is also in the X-Request-Id header and in the server's log lines.
	RequestID string `json:"request_id,omitempty"`

	location string // Location header, for a duplicate submission or a pending approval
	allow    string // Allow header, for 405
}

func (p *Problem) Error() string {
	if p.Field != "" {
		return fmt.Sprintf("%d %s: %s: %s", p.Status, p.Title, p.Field, p.Detail)
	}
	return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail)
}

// Problem types. Clients branch on these, never on titles or details.
const (
	TypeInvalidRequest       = "urn:schedulerd:problem:invalid-request"
	TypeUnauthorized         = "urn:schedulerd:problem:unauthorized"
	TypeForbidden            = "urn:schedulerd:problem:forbidden"
	TypeNotFound             = "urn:schedulerd:problem:not-found"
	TypeNoQuota              = "urn:schedulerd:problem:no-quota"
	TypeMethodNotAllowed     = "urn:schedulerd:problem:method-not-allowed"
	TypeConflict             = "urn:schedulerd:problem:conflict"
	TypeSelfApproval         = "urn:schedulerd:problem:self-approval"
	TypeApprovalPending      = "urn:schedulerd:problem:approval-pending"
	TypeDuplicateSubmission  = "urn:schedulerd:problem:duplicate-submission"
	TypeIdempotencyKeyReused = "urn:schedulerd:problem:idempotency-key-reused"
	TypeUnknownGPUModel      = "urn:schedulerd:problem:unknown-gpu-model"
	TypeUnprocessable        = "urn:schedulerd:problem:unprocessable"
	TypeUnsupportedMediaType = "urn:schedulerd:problem:unsupported-media-type"
	TypeBodyTooLarge         = "urn:schedulerd:problem:body-too-large"
	TypeUnavailable          = "urn:schedulerd:problem:unavailable"
	TypeInternal             = "urn:schedulerd:problem:internal"
)

var problemTitles = map[string]string{
	TypeInvalidRequest:       "invalid request",
	TypeUnauthorized:         "missing or invalid credentials",
	TypeForbidden:            "not allowed",
	TypeNotFound:             "not found",
	TypeNoQuota:              "project has no quota",
	TypeMethodNotAllowed:     "method not allowed",
	TypeConflict:             "conflict with the current state",
	TypeSelfApproval:         "requester cannot decide their own approval",
	TypeApprovalPending:      "approval already pending",
	TypeDuplicateSubmission:  "job already submitted",
	TypeIdempotencyKeyReused: "idempotency key used for a different request",
	TypeUnknownGPUModel:      "unknown GPU model",
	TypeUnprocessable:        "request cannot be applied",
	TypeUnsupportedMediaType: "unsupported media type",
	TypeBodyTooLarge:         "request body too large",
	TypeUnavailable:          "temporarily unavailable",
	TypeInternal:             "internal error",
}

func newProblem(typ string, status int, field, detail string) *Problem {
	return &Problem{Type: typ, Title: problemTitles[typ], Status: status, Field: field, Detail: detail}
}

func invalid(field, format string, args ...any) *Problem {
	return newProblem(TypeInvalidRequest, http.StatusBadRequest, field, fmt.Sprintf(format, args...))
}

func forbidden(format string, args ...any) *Problem {
	return newProblem(TypeForbidden, http.StatusForbidden, "", fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) *Problem {
	return newProblem(TypeNotFound, http.StatusNotFound, "", fmt.Sprintf(format, args...))
}

// noQuota is the 404 of a project that exists without a quota, a type of its own so that a
// client can offer to create the quota.
func noQuota(format string, args ...any) *Problem {
	return newProblem(TypeNoQuota, http.StatusNotFound, "", fmt.Sprintf(format, args...))
}

func conflict(format string, args ...any) *Problem {
	return newProblem(TypeConflict, http.StatusConflict, "", fmt.Sprintf(format, args...))
}

func unprocessable(field, format string, args ...any) *Problem {
	return newProblem(TypeUnprocessable, http.StatusUnprocessableEntity, field, fmt.Sprintf(format, args...))
}

// problemFor maps a handler's error to the problem document sent to the client. Errors that
// are not problems or known store sentinels become a bare 500, because their text may
// contain SQL: it goes to the log only.
func problemFor(err error) (p *Problem, internal bool) {
	if errors.As(err, &p) {
		return p, false
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("no such resource"), false
	case errors.Is(err, store.ErrStaleStatus), errors.Is(err, store.ErrIllegalTransition):
		return conflict("the resource changed while the request was handled; read it again and retry"), false
	case errors.Is(err, store.ErrNoPartition):
		return newProblem(TypeUnavailable, http.StatusServiceUnavailable, "",
			"no jobs partition covers this month; an operator must run 'schedulerd cron run partitions'"), true
	case errors.Is(err, store.ErrInvalid):
		// The API's own checks should have caught this; the log has the rule that did.
		return unprocessable("", "the request breaks a rule of the database"), true
	case errors.Is(err, store.ErrContention):
		return newProblem(TypeUnavailable, http.StatusServiceUnavailable, "",
			"the database was busy with conflicting changes; nothing changed, retry the request"), true
	case store.Unreachable(err):
		return newProblem(TypeUnavailable, http.StatusServiceUnavailable, "",
			"the database cannot be reached; retry later, and see /readyz"), true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newProblem(TypeUnavailable, http.StatusServiceUnavailable, "",
			"the request was cancelled or timed out"), false
	}
	return internalProblem(), true
}

func internalProblem() *Problem {
	return newProblem(TypeInternal, http.StatusInternalServerError, "",
		"the server failed to handle the request; its log has the cause under the request id")
}

// writeProblem sends p with its headers.
func writeProblem(w http.ResponseWriter, p *Problem) {
	if p.location != "" {
		w.Header().Set("Location", p.location)
	}
	if p.allow != "" {
		w.Header().Set("Allow", p.allow)
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="schedulerd"`)
	}
	writeJSON(w, p.Status, "application/problem+json", p)
}

// writeJSON sends v as the whole response body.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Every type sent here marshals; this is a bug, and the client must not get half a body.
		status, contentType = http.StatusInternalServerError, "application/problem+json"
		body = []byte(`{"type":"` + TypeInternal + `","title":"internal error","status":500}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
