package errlist_test

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/hashicorp/go-multierror"

	"github.com/schedulerd/schedulerd/internal/errlist"
)

func TestJoinNil(t *testing.T) {
	if err := errlist.Join(); err != nil {
		t.Errorf("Join() = %q, want nil", err)
	}
	if err := errlist.Join(nil, nil); err != nil {
		t.Errorf("Join(nil, nil) = %q, want nil", err)
	}
}

func TestJoinTwoErrors(t *testing.T) {
	first := fmt.Errorf("bucket a: %w", fs.ErrPermission)
	second := fmt.Errorf("bucket b: %w", fs.ErrNotExist)

	err := errlist.Join(first, nil, second)
	if want := "2 errors: bucket a: permission denied; bucket b: file does not exist"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is does not find the first error's cause")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is does not find the second error's cause")
	}
	if errors.Is(err, fs.ErrExist) {
		t.Error("errors.Is finds an error that is not in the list")
	}

	var list *multierror.Error
	if !errors.As(err, &list) {
		t.Fatalf("errors.As finds no *multierror.Error in %T", err)
	}
	if len(list.Errors) != 2 {
		t.Errorf("list has %d errors, want 2", len(list.Errors))
	}
}

func TestJoinOneError(t *testing.T) {
	err := errlist.Join(nil, fmt.Errorf("bucket a: %w", fs.ErrPermission))
	if want := "bucket a: permission denied"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is does not find the error's cause")
	}
}

func TestJoinFlattensNested(t *testing.T) {
	inner := errlist.Join(errors.New("a"), errors.New("b"))
	err := errlist.Join(inner, errors.New("c"))
	if want := "3 errors: a; b; c"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

// TestJoinPathError checks that errors.As reaches a typed error that is not first.
func TestJoinPathError(t *testing.T) {
	openErr := &fs.PathError{Op: "open", Path: "missing", Err: fs.ErrNotExist}
	err := errlist.Join(errors.New("first"), fmt.Errorf("read config: %w", openErr))

	var pathErr *fs.PathError
	if !errors.As(err, &pathErr) {
		t.Fatal("errors.As finds no *fs.PathError")
	}
	if pathErr.Path != "missing" {
		t.Errorf("path %q, want %q", pathErr.Path, "missing")
	}
}
