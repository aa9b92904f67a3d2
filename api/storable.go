package api

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/schedulerd/schedulerd/jobspec"
)

// nulDetail is the problem detail for a string with a NUL character. PostgreSQL's text and
// jsonb types cannot store one, so without this check the database would reject the
// statement with an error that names no field.
const nulDetail = "contains a NUL character (\\u0000), which PostgreSQL cannot store. Remove it"

// notUTF8Detail is the problem detail for a path or query value that, percent-decoded, is
// not valid UTF-8, which PostgreSQL's text cannot hold.
const notUTF8Detail = "is not valid UTF-8 once percent-decoded, which PostgreSQL cannot store"

// checkStorable rejects a decoded request body with a string that the database cannot
// store: a NUL character in a string, a map key or a slice element, or in raw JSON (such
// as a job's config or an artifact's metadata) a \u0000 or lone surrogate escape. The
// problem names a field that contains one by its JSON path, such as tags.note.
func checkStorable(v any) error {
	return checkStorableValue(reflect.ValueOf(v), "")
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

func checkStorableValue(v reflect.Value, path string) error {
	if v.Type() == rawMessageType {
		if reason := jobspec.UnstorableEscape(v.Bytes()); reason != "" {
			return invalid(path, "%s", reason)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkStorableValue(v.Elem(), path)
	case reflect.String:
		if strings.ContainsRune(v.String(), 0) {
			return invalid(path, nulDetail)
		}
	case reflect.Struct:
		return checkStorableFields(v, path)
	case reflect.Map:
		return checkStorableMap(v, path)
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkStorableValue(v.Index(i), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkStorableFields(v reflect.Value, path string) error {
	for i := range v.NumField() {
		name, ok := jobspec.JSONName(v.Type().Field(i))
		if !ok {
			continue
		}
		if err := checkStorableValue(v.Field(i), joinPath(path, name)); err != nil {
			return err
		}
	}
	return nil
}

func checkStorableMap(v reflect.Value, path string) error {
	iter := v.MapRange()
	for iter.Next() {
		key := iter.Key()
		if key.Kind() == reflect.String && strings.ContainsRune(key.String(), 0) {
			return invalid(path, "a key %s", nulDetail)
		}
		if err := checkStorableValue(iter.Value(), joinPath(path, key.String())); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// checkQueryStorable rejects a query parameter with a NUL character or invalid UTF-8,
// which the database cannot compare with text, naming the parameter.
func checkQueryStorable(query url.Values) error {
	for name, values := range query {
		for _, value := range values {
			if strings.ContainsRune(value, 0) {
				return invalid(name, nulDetail)
			}
			if !utf8.ValidString(value) {
				return invalid(name, notUTF8Detail)
			}
		}
	}
	return nil
}
