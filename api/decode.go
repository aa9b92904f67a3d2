package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/jobspec"
)

// decodeBody reads a JSON request body into v strictly: at most MaxBodyBytes, valid UTF-8,
// one JSON object with only the fields v has, values of their types and no string that the
// database cannot store (checkStorable). Each failure is a
// 400 problem naming the field, except a body over the limit (413). An empty body is
// allowed only when optional is true, and leaves v unchanged.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v, optional)
}

// rejectBody reads the body of an endpoint that takes none, such as a job's cancel. An
// empty body or {} passes. A field is a 400 naming it, so that a client that sends a
// reason or an option learns that the server does not read it. The Content-Type is
// checked only for a body that is not empty, as clients often send one with no body.
func (s *Server) rejectBody(w http.ResponseWriter, r *http.Request) error {
	body, err := s.readBody(w, r)
	if err != nil || len(bytes.TrimSpace(body)) == 0 {
		return err
	}
	if err := checkContentType(r); err != nil {
		return err
	}
	var none struct{}
	return decodeJSON(body, &none, true)
}

// readBody reads the request body, at most MaxBodyBytes of it (413 beyond).
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, newProblem(TypeBodyTooLarge, http.StatusRequestEntityTooLarge, "body",
			fmt.Sprintf("the request body is larger than %d bytes", tooLarge.Limit))
	}
	if err != nil {
		return nil, invalid("body", "the request body could not be read: %v", err)
	}
	return body, nil
}

// decodeJSON is decodeBody's check of the bytes, apart from HTTP so that it can be fuzzed.
func decodeJSON(body []byte, v any, optional bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return invalid("body", "a JSON object is required")
	}
	if !utf8.Valid(body) {
		return invalid("body", "the request body is not valid UTF-8")
	}

	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonProblem(err, body, reflect.TypeOf(v))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("body", "unexpected data after the JSON object")
	}
	// encoding/json keeps the last value of a repeated key and matches keys to fields
	// without regard to case, so such a body is rejected rather than read one way.
	if err := jobspec.CheckKeys(body, reflect.TypeOf(v), ""); err != nil {
		var keyErr *jobspec.FieldError
		if errors.As(err, &keyErr) {
			return invalid(keyErr.Field, "%s", keyErr.Reason)
		}
		return invalid("body", "%v", err)
	}
	return checkStorable(v)
}

// jsonProblem names the field of an encoding/json error of decoding body into goType.
func jsonProblem(err error, body []byte, goType reflect.Type) *Problem {
	if fieldErr, ok := jobspec.FieldOfDecodeError(err, body, goType, ""); ok {
		field := fieldErr.Field
		if field == "" {
			field = "body"
		}
		return invalid(field, "%s", fieldErr.Reason)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return invalid("body", "invalid JSON at byte %d: %s", syntaxErr.Offset, strings.TrimPrefix(err.Error(), "json: "))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return invalid("body", "the JSON object is incomplete")
	}
	return invalid("body", "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// checkContentType accepts JSON bodies and bodies that declare no type; any other
// declared type is 415.
func checkContentType(r *http.Request) error {
	header := r.Header.Get("Content-Type")
	if header == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(header)
	if err == nil && (mediaType == "application/json" || strings.HasSuffix(mediaType, "+json")) {
		return nil
	}
	return newProblem(TypeUnsupportedMediaType, http.StatusUnsupportedMediaType, "Content-Type",
		"send the body as application/json, not "+header)
}

// pathJobID parses the {id} of a job path.
func pathJobID(r *http.Request) (uuid.UUID, error) { return pathUUID(r, "id", "job") }

// pathUUID parses the path wildcard name as the id of a noun, such as a run or an approval.
func pathUUID(r *http.Request, name, noun string) (uuid.UUID, error) {
	raw := r.PathValue(name)
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) != 36 {
		return uuid.Nil, invalid(name, "%q is not a %s id (a UUID such as 0190d2c4-5b7e-7c3a-9f00-2d5e8a1b4c6d)",
			raw, noun)
	}
	return id, nil
}
