package jobspec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
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
		// typeErr.Field lists struct fields only, without map keys or array indexes, so a
		// bad env value would be named config.env. The offset finds the value itself.
		field, ok := valuePathAt(raw, typeErr.Offset, path)
		if !ok {
			field = joinPath(path, typeErr.Field)
		}
		return &FieldError{field, typeMismatch(typeErr)}, true
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

// integerLiteral matches a JSON number written as an integer, without fraction or exponent.
var integerLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// typeMismatch describes a JSON value of the wrong type, such as "expected an integer, got
// JSON string". encoding/json reports an integer that overflows an integer field as a
// number of the wrong type, so that case is named out of range instead.
func typeMismatch(e *json.UnmarshalTypeError) string {
	want := jsonTypeName(e.Type)
	number, isNumber := strings.CutPrefix(e.Value, "number ")
	if isNumber && want == "an integer" && integerLiteral.MatchString(number) {
		return "the integer " + number + " is out of range"
	}
	return "expected " + want + ", got JSON " + e.Value
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

// pathFrame is an array or object that valuePathAt has entered: its path, the index of its
// next element or the key of its next member, and whether a member's key comes next.
type pathFrame struct {
	path    string
	array   bool
	index   int
	key     string
	wantKey bool
}

// valuePathAt returns the path below path of the value of raw that encoding/json's
// UnmarshalTypeError.Offset points at. That offset is the end of a string, number, boolean
// or null, or the byte after the [ or { that opens an array or object. Object members are
// named as CheckKeys names them, with dots, and array elements with [i]. It returns false
// when no value of raw ends at offset.
func valuePathAt(raw []byte, offset int64, path string) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var stack []*pathFrame
	for {
		token, err := dec.Token()
		if err != nil { // io.EOF too, because then no value ends at offset
			return "", false
		}
		if token == json.Delim('}') || token == json.Delim(']') {
			stack = stack[:len(stack)-1]
			continue
		}

		valuePath := path
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			switch {
			case top.array:
				valuePath = top.path + "[" + strconv.Itoa(top.index) + "]"
				top.index++
			case top.wantKey:
				top.key, top.wantKey = token.(string), false // Token returns object keys as strings
				continue
			default:
				valuePath = joinPath(top.path, top.key)
				top.wantKey = true
			}
		}

		if dec.InputOffset() == offset {
			return valuePath, true
		}
		if token == json.Delim('{') || token == json.Delim('[') {
			stack = append(stack, &pathFrame{path: valuePath, array: token == json.Delim('['),
				wantKey: token == json.Delim('{')})
		}
	}
}
