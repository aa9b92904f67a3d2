package jobspec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// checkKeys rejects a config whose object keys encoding/json and PostgreSQL's jsonb read
// differently, so that the copy stored in jobs.config_json means what validation saw.
//
// encoding/json matches a key to a struct field without regard to case, and it merges the
// values of a repeated key, keeping the last value of each field. jsonb keeps every key
// that differs in case and, of a repeated key, only the last value. The dispatcher and the
// workflow decode the stored jsonb again, so {"max_runtime_seconds":2592000,
// "MAX_RUNTIME_SECONDS":60} would pass as 60 seconds and run for 30 days. The key of an
// object that the spec decodes into a struct must therefore spell a field's name exactly,
// and no object may repeat a key.
//
// The keys of a map (hyperparameter, search parameter and metric names) are names the user
// chooses. Both decoders match those exactly, so "lr" and "LR" are two names and both are
// accepted. checkKeys expects JSON that Decode has already parsed into a Spec.
func checkKeys(raw []byte) error {
	return CheckKeys(raw, reflect.TypeFor[Spec](), "config")
}

// CheckKeys applies checkKeys's rules to JSON that encoding/json has already decoded into a
// value of goType: no object repeats a key, and every key of an object decoded into a struct
// spells a field's name exactly. Field errors name keys below path, or from the top when
// path is empty. The API checks its request bodies with it, since a body such as
// {"priority":5,"priority":90} or {"Priority":90} would otherwise pass with a value the
// caller may not have meant.
func CheckKeys(raw []byte, goType reflect.Type, path string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return checkValue(dec, goType, path)
}

// checkValue reads one JSON value from dec and checks the keys of every object in it.
// goType is the Go type the value decodes into, or nil when it is not known.
func checkValue(dec *json.Decoder, goType reflect.Type, path string) error {
	for goType != nil && goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	token, err := dec.Token()
	if err != nil {
		return &FieldError{path, fmt.Sprintf("invalid JSON: %v", err)}
	}
	switch token {
	case json.Delim('{'):
		return checkObject(dec, goType, path)
	case json.Delim('['):
		return checkArray(dec, goType, path)
	}
	return nil
}

func checkObject(dec *json.Decoder, goType reflect.Type, path string) error {
	var fields map[string]reflect.Type
	if goType != nil && goType.Kind() == reflect.Struct {
		fields = jsonFields(goType)
	}
	seen := map[string]bool{}
	for dec.More() {
		token, err := dec.Token()
		if err != nil {
			return &FieldError{path, fmt.Sprintf("invalid JSON: %v", err)}
		}
		key := token.(string) // encoding/json returns object keys as strings
		keyPath := key
		if path != "" {
			keyPath = path + "." + key
		}
		if seen[key] {
			return &FieldError{keyPath, fmt.Sprintf("the key %q appears more than once in the same object. Send each key once", key)}
		}
		seen[key] = true

		valueType, err := memberType(goType, fields, key, keyPath)
		if err != nil {
			return err
		}
		if err := checkValue(dec, valueType, keyPath); err != nil {
			return err
		}
	}
	return closeToken(dec, path)
}

// memberType returns the Go type of the value under key in an object of goType. A struct's
// key must be a field's exact name.
func memberType(goType reflect.Type, fields map[string]reflect.Type, key, keyPath string) (reflect.Type, error) {
	switch {
	case goType == nil:
		return nil, nil
	case goType.Kind() == reflect.Map:
		return goType.Elem(), nil
	case goType.Kind() != reflect.Struct:
		return nil, nil
	}
	if fieldType, ok := fields[key]; ok {
		return fieldType, nil
	}
	for name := range fields {
		if strings.EqualFold(name, key) {
			return nil, &FieldError{keyPath, fmt.Sprintf(
				"the key %q matches the field %s only without regard to case. Keys must match exactly, so spell it %s",
				key, name, name)}
		}
	}
	return nil, &FieldError{keyPath, unknownFieldReason}
}

func checkArray(dec *json.Decoder, goType reflect.Type, path string) error {
	var elemType reflect.Type
	if goType != nil && (goType.Kind() == reflect.Slice || goType.Kind() == reflect.Array) {
		elemType = goType.Elem()
	}
	for i := 0; dec.More(); i++ {
		if err := checkValue(dec, elemType, path+"["+strconv.Itoa(i)+"]"); err != nil {
			return err
		}
	}
	return closeToken(dec, path)
}

// closeToken reads the brace or bracket that ends the object or array at path.
func closeToken(dec *json.Decoder, path string) error {
	if _, err := dec.Token(); err != nil {
		return &FieldError{path, fmt.Sprintf("invalid JSON: %v", err)}
	}
	return nil
}

// jsonFields maps the JSON names of a struct's fields to their types. The spec's types
// have no embedded structs, so only direct fields are read.
func jsonFields(structType reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, structType.NumField())
	for i := range structType.NumField() {
		field := structType.Field(i)
		if name, ok := JSONName(field); ok {
			fields[name] = field.Type
		}
	}
	return fields
}

// JSONName returns the name encoding/json gives a struct field, or false for a field it
// leaves out: unexported, or tagged "-".
func JSONName(field reflect.StructField) (string, bool) {
	if !field.IsExported() {
		return "", false
	}
	name, _, _ := strings.Cut(field.Tag.Get("json"), ",")
	switch name {
	case "-":
		return "", false
	case "":
		return field.Name, true
	}
	return name, true
}
