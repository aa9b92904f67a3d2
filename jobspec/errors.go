package jobspec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
)

// unknownFieldReason is the reason of every FieldError for a key that no field of its
// object has, in a config or in an API request body.
const unknownFieldReason = "unknown field"

// FieldOfDecodeError turns an error of encoding/json's strict decoding of raw into goType
// into a FieldError naming the field by its JSON path below path, such as
// config.resources.gpus. It covers a value of the wrong type and an unknown field, and
// returns false for other errors, such as invalid syntax. The config and every API request
// body name their fields through it, so both use one style.
func FieldOfDecodeError(err error, raw []byte, goType reflect.Type, path string) (*FieldError, bool) {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return &FieldError{joinPath(path, typeErr.Field), typeMismatch(typeErr)}, true
	}
	// encoding/json names an unknown field only in its message, json: unknown field "x",
	// and without the path to it. CheckKeys walks the same keys in the same order, so the
	// first key it rejects is that field, or an earlier key that is wrong in another way.
	name, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return nil, false
	}
	var fieldErr *FieldError
	if errors.As(CheckKeys(raw, goType, path), &fieldErr) {
		return fieldErr, true
	}
	return &FieldError{joinPath(path, strings.Trim(name, `"`)), unknownFieldReason}, true
}

// typeMismatch describes a JSON value of the wrong type, such as "expected an integer, got
// JSON string".
func typeMismatch(e *json.UnmarshalTypeError) string {
	return "expected " + jsonTypeName(e.Type) + ", got JSON " + e.Value
}

// jsonTypeName names a Go type in JSON words.
func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return t.String()
}

// joinPath appends a dotted field path to path. Either may be empty.
func joinPath(path, field string) string {
	switch {
	case path == "":
		return field
	case field == "":
		return path
	}
	return path + "." + field
}
