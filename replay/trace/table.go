package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxSeconds is the largest trace time accepted, in seconds. Larger values
// would overflow time.Duration (int64 nanoseconds) when converted.
const maxSeconds = math.MaxInt64 / 1_000_000_000

// maxInt64 is the upper bound for columns limited only by their int64 type.
const maxInt64 = math.MaxInt64

// table reads a CSV file row by row and looks fields up by header name, so
// the column order of a sample does not matter and extra columns are ignored.
type table struct {
	file   string
	reader *csv.Reader
	header []string
	index  map[string]int
	line   int
	row    []string
}

// openTable reads the header and checks that every required column is
// present exactly once.
func openTable(r io.Reader, file string, required []string) (*table, error) {
	reader := csv.NewReader(r)
	reader.ReuseRecord = true

	t := &table{file: file, reader: reader, index: map[string]int{}}
	header, err := reader.Read()
	if errors.Is(err, io.EOF) {
		return nil, &ParseError{File: file, Err: ErrEmptyFile}
	}
	if err != nil {
		return nil, t.readError(err, len(header))
	}

	t.line, _ = reader.FieldPos(0)
	t.header = append([]string(nil), header...)
	t.header[0] = strings.TrimPrefix(t.header[0], "\ufeff")

	for i, name := range t.header {
		if _, seen := t.index[name]; seen {
			return nil, &ParseError{File: file, Line: t.line, Column: i + 1, Field: name, Value: name, Err: ErrDuplicateColumn}
		}
		t.index[name] = i
	}

	for _, name := range required {
		if _, ok := t.index[name]; !ok {
			err := fmt.Errorf("%w %q", ErrMissingColumn, name)
			return nil, &ParseError{File: file, Line: t.line, Field: name, Err: err}
		}
	}

	return t, nil
}

// next advances to the next row. It returns false at the end of the file.
func (t *table) next() (bool, error) {
	row, err := t.reader.Read()
	if errors.Is(err, io.EOF) {
		return false, nil
	}
	if err != nil {
		return false, t.readError(err, len(row))
	}

	t.row = row
	t.line, _ = t.reader.FieldPos(0)

	return true, t.checkText()
}

// checkText rejects a row with a field that is not valid UTF-8 or contains a NUL byte:
// such text cannot be stored in PostgreSQL, so it must stop the replay before anything
// is created.
func (t *table) checkText() error {
	for i, cell := range t.row {
		if utf8.ValidString(cell) && !strings.ContainsRune(cell, 0) {
			continue
		}
		field := ""
		if i < len(t.header) {
			field = t.header[i]
		}
		return &ParseError{File: t.file, Line: t.line, Column: i + 1, Field: field,
			Value: strings.ToValidUTF8(strings.ReplaceAll(cell, "\x00", ""), "?"), Err: ErrInvalidText}
	}
	return nil
}

// readError turns an encoding/csv error into a ParseError. The csv column is
// a byte offset in the line, not a header column, so it goes into the message.
// fields is the field count of the row that encoding/csv returned with err.
func (t *table) readError(err error, fields int) error {
	var csvErr *csv.ParseError
	if !errors.As(err, &csvErr) {
		return fmt.Errorf("read %s: %w", t.file, err)
	}

	if errors.Is(csvErr.Err, csv.ErrFieldCount) {
		detail := fmt.Errorf("%w: got %d, want %d as in the header", ErrFieldCount, fields, len(t.header))
		return &ParseError{File: t.file, Line: csvErr.StartLine, Err: detail}
	}

	detail := fmt.Errorf("%w: %v at byte %d", ErrSyntax, csvErr.Err, csvErr.Column)

	return &ParseError{File: t.file, Line: csvErr.Line, Err: detail}
}

// text returns the raw field of the current row.
func (t *table) text(field string) string {
	return t.row[t.index[field]]
}

// fail builds a ParseError for field in the current row.
func (t *table) fail(field string, err error) *ParseError {
	column := t.index[field] + 1

	return &ParseError{File: t.file, Line: t.line, Column: column, Field: field, Value: t.text(field), Err: err}
}

// integer parses field as a base-10 integer in [low, high].
func (t *table) integer(field string, low, high int64) (int64, error) {
	text := t.text(field)
	value, err := strconv.ParseInt(text, 10, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, t.fail(field, fmt.Errorf("value %q %w: does not fit in 64 bits", text, ErrOutOfRange))
	}
	if err != nil {
		return 0, t.fail(field, fmt.Errorf("%w %q", ErrInvalidInteger, text))
	}

	if value < low || value > high {
		return 0, t.fail(field, rangeError(value, low, high))
	}

	return value, nil
}

// rangeError words the bounds so that a negative value reads as such even
// when the upper bound is the int64 maximum.
func rangeError(value, low, high int64) error {
	if value < 0 && low == 0 {
		return fmt.Errorf("value %d %w: must not be negative", value, ErrOutOfRange)
	}

	return fmt.Errorf("value %d %w [%d, %d]", value, ErrOutOfRange, low, high)
}

// nonEmpty returns field, or an error when it is empty.
func (t *table) nonEmpty(field string) (string, error) {
	text := t.text(field)
	if text == "" {
		return "", t.fail(field, ErrEmptyValue)
	}

	return text, nil
}
