package trace

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by ParseError.Err, so callers can test the kind of
// problem with errors.Is without matching message text.
var (
	// ErrEmptyFile reports a file without even a header line.
	ErrEmptyFile = errors.New("empty file: want a CSV header line")

	// ErrNoRows reports a node file that has a header but no nodes, which
	// would leave the replay without a cluster.
	ErrNoRows = errors.New("no data rows after the header")

	// ErrInvalidText reports a field that is not valid UTF-8 or contains a NUL byte.
	ErrInvalidText = errors.New("not valid UTF-8 text")

	// ErrMissingColumn reports a required column absent from the header.
	ErrMissingColumn = errors.New("missing required column")

	// ErrDuplicateColumn reports a header that names a column twice, which
	// makes lookup by name ambiguous.
	ErrDuplicateColumn = errors.New("duplicate column")

	// ErrFieldCount reports a row whose field count differs from the header.
	ErrFieldCount = errors.New("wrong number of fields")

	// ErrSyntax reports CSV quoting that encoding/csv rejects.
	ErrSyntax = errors.New("invalid CSV syntax")

	// ErrInvalidInteger reports a numeric field that is not a base-10 integer.
	ErrInvalidInteger = errors.New("invalid integer")

	// ErrOutOfRange reports an integer outside the range its column allows.
	ErrOutOfRange = errors.New("out of range")

	// ErrEmptyValue reports a required field that is empty.
	ErrEmptyValue = errors.New("empty value")

	// ErrUnknownValue reports an enum field (qos, pod_phase) outside its set.
	ErrUnknownValue = errors.New("unknown value")

	// ErrInconsistent reports a value that contradicts another field of the
	// same row, such as a deletion_time before the creation_time.
	ErrInconsistent = errors.New("inconsistent value")

	// ErrDuplicate reports a task name or node serial number that an earlier
	// row already used. Names key the idempotency keys, so they must be unique.
	ErrDuplicate = errors.New("duplicate value")
)

// ParseError locates a problem in a trace file so that a user can open the
// file at the reported line and fix the value.
type ParseError struct {
	// File is the name given to the reader, usually the path.
	File string

	// Line is the 1-based line number. It is 0 when the file is empty.
	Line int

	// Column is the 1-based position of Field in the header, or 0 when the
	// problem concerns the whole row or file.
	Column int

	// Field is the header name of the column, or "" when Column is 0 and no
	// single column is at fault. A missing column sets Field with Column 0.
	Field string

	// Value is the offending field text as read, without quoting.
	Value string

	// Err describes the problem and wraps one of the sentinel errors above.
	Err error
}

// Error formats the location as "file:line: column name (n): problem", the
// form that editors and grep output use, so the location is clickable.
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}

	if e.Column == 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}

	return fmt.Sprintf("%s:%d: column %s (%d): %v", e.File, e.Line, e.Field, e.Column, e.Err)
}

// Unwrap returns Err so that errors.Is matches the sentinel errors.
func (e *ParseError) Unwrap() error {
	return e.Err
}
