package retention

import (
	"context"
	"errors"
	"io/fs"
	"testing"
)

func TestBucketErrorsJoinTwoBuckets(t *testing.T) {
	failed := bucketErrors{"models-b": fs.ErrNotExist, "models-a": fs.ErrPermission}

	err := failed.join(nil)
	want := "checkpoint retention: 2 errors: bucket models-a left for the next run: permission denied; " +
		"bucket models-b left for the next run: file does not exist"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is does not find bucket models-a's error")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is does not find bucket models-b's error")
	}
}

func TestBucketErrorsJoinWithRunError(t *testing.T) {
	failed := bucketErrors{"models-a": fs.ErrPermission}

	err := failed.join(context.DeadlineExceeded)
	want := "checkpoint retention: 2 errors: context deadline exceeded; " +
		"bucket models-a left for the next run: permission denied"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("errors.Is does not find the run's error")
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Error("errors.Is does not find bucket models-a's error")
	}
}

func TestBucketErrorsJoinNone(t *testing.T) {
	if err := make(bucketErrors).join(nil); err != nil {
		t.Errorf("error %q with no failed bucket, want nil", err)
	}
}
