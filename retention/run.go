package retention

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/schedulerd/schedulerd/internal/errlist"
)

// planAll plans every run with more than one live checkpoint, a page of runs at a time, and
// outside a dry run marks each page's deletions before reading the next. It returns the ids
// it marked.
func (r *Retainer) planAll(ctx context.Context, db querier, now time.Time, report *Report) (map[uuid.UUID]bool, error) {
	overrides, err := loadOverrides(ctx, db)
	if err != nil {
		return nil, err
	}

	marked := make(map[uuid.UUID]bool)
	after := uuid.Nil
	for {
		runs, err := loadPage(ctx, db, after, runsPerPage)
		if err != nil || len(runs) == 0 {
			return marked, err
		}
		after = runs[len(runs)-1][0].RunID

		planned := r.planPage(runs, overrides, now, report)
		if report.DryRun {
			report.Planned = append(report.Planned, planned...)
			continue
		}
		if err := r.markPage(ctx, db, planned, now, marked, report); err != nil {
			return marked, err
		}
	}
}

// planPage applies each run's policy and returns the checkpoints to delete.
func (r *Retainer) planPage(runs [][]Checkpoint, overrides map[string]override, now time.Time, report *Report) []Deletion {
	var out []Deletion
	for _, run := range runs {
		report.RunsChecked++
		policy := overrides[run[0].ProjectID].apply(r.cfg.Policy)

		deletions, kept, err := plan(run, policy, now)
		report.Kept += kept
		if err != nil {
			report.RunsSkipped++
			r.cfg.Logger.Debug("checkpoint retention left a run whole",
				"run", run[0].RunID, "project", run[0].ProjectID, "reason", err)
			continue
		}
		for _, c := range deletions {
			out = append(out, Deletion{ID: c.ID, RunID: c.RunID, ProjectID: c.ProjectID, URI: c.URI, SizeBytes: c.SizeBytes})
		}
	}
	return out
}

// markPage takes the first step of deleting planned: it marks the rows, in batches. A row
// that gained a reference since it was read is not marked, and so not deleted.
func (r *Retainer) markPage(ctx context.Context, db querier, planned []Deletion, now time.Time, marked map[uuid.UUID]bool, report *Report) error {
	for batch := range slices.Chunk(planned, r.cfg.BatchSize) {
		ids := make([]uuid.UUID, len(batch))
		for i, d := range batch {
			ids[i] = d.ID
		}
		got, err := markDeleting(ctx, db, ids, now)
		if err != nil {
			return err
		}

		for _, d := range batch {
			if !got[d.ID] {
				r.cfg.Logger.Info("checkpoint kept: referenced since it was planned", "artifact_id", d.ID, "run", d.RunID)
				continue
			}
			marked[d.ID] = true
			report.Planned = append(report.Planned, d)
		}
	}
	return nil
}

// countPending counts, for a dry run, the rows an earlier run marked and left.
func (r *Retainer) countPending(ctx context.Context, db querier, report *Report) error {
	for _, d := range report.Planned {
		report.BytesFreed += d.SizeBytes
	}
	after := uuid.Nil
	for {
		rows, err := loadPending(ctx, db, after, r.cfg.BatchSize)
		if err != nil || len(rows) == 0 {
			return err
		}
		after = rows[len(rows)-1].ID
		for _, row := range rows {
			if row.Referenced {
				report.Deferred++
			} else {
				report.Pending++
			}
		}
	}
}

// finishPending deletes the objects of every marked row, this run's and those earlier runs
// left, and sets deleted_at on the rows whose objects are all gone. A marked row whose
// objects a live row, a model version or a run names again is deferred: its objects stay
// and the row stays marked. For example, a crash between the mark and the S3 delete gives a
// later run of the job time to write and report a checkpoint at the marked row's URI.
// A bucket whose list or delete request fails is left alone for the rest of the run, and
// the other buckets go on. The run then returns one error that counts the buckets' errors
// and lists them in bucket order.
// NOTE: an object written at a marked URI but not yet reported when the S3 request goes
// out is still deleted, and its later report makes a live row without its object.
func (r *Retainer) finishPending(ctx context.Context, db querier, now time.Time, marked map[uuid.UUID]bool, report *Report) error {
	failed := make(bucketErrors)
	after := uuid.Nil
	for {
		rows, err := loadPending(ctx, db, after, r.cfg.BatchSize)
		if err != nil {
			return failed.join(err)
		}
		if len(rows) == 0 {
			return failed.join(nil)
		}
		after = rows[len(rows)-1].ID

		rows = r.dropReferenced(rows, report)
		if len(rows) == 0 {
			continue
		}
		if err := r.finishBatch(ctx, db, rows, now, marked, failed, report); err != nil {
			return failed.join(err)
		}
	}
}

// bucketErrors maps each bucket whose S3 request failed in this run to its first error.
type bucketErrors map[string]error

// join combines err, when it is not nil, and each bucket's error, in bucket order, into one
// error whose message counts them on one line (see errlist.Join). It returns nil when there
// is no error.
func (b bucketErrors) join(err error) error {
	errs := []error{err}
	for _, bucket := range slices.Sorted(maps.Keys(b)) {
		errs = append(errs, fmt.Errorf("bucket %s left for the next run: %w", bucket, b[bucket]))
	}

	joined := errlist.Join(errs...)
	if joined == nil {
		return nil
	}
	return fmt.Errorf("checkpoint retention: %w", joined)
}

// dropReferenced returns the rows whose objects no live reference names, and counts the
// others as deferred.
func (r *Retainer) dropReferenced(rows []pendingRow, report *Report) []pendingRow {
	return slices.DeleteFunc(rows, func(row pendingRow) bool {
		if row.Referenced {
			report.Deferred++
			r.cfg.Logger.Info("checkpoint delete deferred: a live reference names its objects again",
				"artifact_id", row.ID, "storage_uri", row.URI, "delete_started_at", row.StartedAt)
		}
		return row.Referenced
	})
}

// object is one S3 object of a batch and the rows it belongs to.
type object struct {
	bucket, key string
	rows        []int
}

// finishBatch deletes the objects of rows and marks deleted the rows whose objects S3 all
// confirmed. Rows in a bucket whose request failed, in this batch or an earlier one, stay
// marked, and failed records the bucket.
func (r *Retainer) finishBatch(ctx context.Context, db querier, rows []pendingRow, now time.Time, marked map[uuid.UUID]bool, failed bucketErrors, report *Report) error {
	objects, left := r.collectObjects(ctx, rows, failed, report)
	if r.beforeDelete != nil {
		if err := r.beforeDelete(ctx); err != nil {
			return err
		}
	}

	r.deleteObjects(ctx, objects, left, failed, report)
	if r.afterDelete != nil {
		if err := r.afterDelete(ctx); err != nil {
			return err
		}
	}

	var done []uuid.UUID
	var freed int64
	for i, row := range rows {
		if left[i] == 0 {
			done = append(done, row.ID)
			freed += row.SizeBytes
			if !marked[row.ID] {
				report.Resumed++
			}
		}
	}
	n, err := markDeleted(ctx, db, done, now)
	report.Deleted += int(n)
	report.BytesFreed += freed
	if err != nil {
		return err
	}
	if r.cfg.OnDeleted != nil && n > 0 {
		r.cfg.OnDeleted(int(n), freed)
	}
	return nil
}

// collectObjects lists the objects of each row: one key, or every key under a prefix. left
// counts each row's objects not yet deleted. A row whose URI cannot be read, or whose bucket
// is in failed, keeps -1.
func (r *Retainer) collectObjects(ctx context.Context, rows []pendingRow, failed bucketErrors, report *Report) (map[string]*object, []int) {
	objects := make(map[string]*object)
	left := make([]int, len(rows))
	for i, row := range rows {
		bucket, key, err := parseURI(row.URI)
		if err != nil {
			left[i] = -1
			report.Refused++
			r.cfg.Logger.Error("artifact being deleted has an unusable URI", "artifact_id", row.ID, "error", err)
			continue
		}

		if failed[bucket] != nil {
			left[i] = -1
			continue
		}
		keys := []string{key}
		if strings.HasSuffix(key, "/") {
			if keys, err = listPrefix(ctx, r.store, bucket, key); err != nil {
				left[i] = -1
				failed[bucket] = err
				r.logBucketFailed(ctx, bucket, err)
				continue
			}
		}
		for _, k := range keys {
			name := bucket + "/" + k
			if objects[name] == nil {
				objects[name] = &object{bucket: bucket, key: k}
			}
			objects[name].rows = append(objects[name].rows, i)
			left[i]++
		}
	}
	return objects, left
}

// deleteObjects deletes objects bucket by bucket and lowers left for each confirmed one. A
// bucket whose request fails goes into failed.
func (r *Retainer) deleteObjects(ctx context.Context, objects map[string]*object, left []int, failed bucketErrors, report *Report) {
	byBucket := make(map[string][]*object)
	for _, o := range objects {
		byBucket[o.bucket] = append(byBucket[o.bucket], o)
	}

	for bucket, list := range byBucket {
		if failed[bucket] != nil {
			continue
		}
		keys := make([]string, len(list))
		for i, o := range list {
			keys[i] = o.key
		}
		slices.Sort(keys)

		done, refused, err := deleteKeys(ctx, r.store, bucket, keys, r.cfg.BatchSize)
		for _, o := range list {
			if done[o.key] {
				for _, i := range o.rows {
					left[i]--
				}
			}
		}
		for key, reason := range refused {
			report.Refused++
			r.cfg.Logger.Warn("S3 rejected the delete of a checkpoint object", "bucket", bucket, "key", key, "reason", reason)
		}
		if err != nil {
			failed[bucket] = err
			r.logBucketFailed(ctx, bucket, err)
		}
	}
}

// logBucketFailed logs the first failed request to a bucket in a run, unless the run was
// cancelled.
func (r *Retainer) logBucketFailed(ctx context.Context, bucket string, err error) {
	if ctx.Err() == nil {
		r.cfg.Logger.Warn("S3 request failed: the bucket's checkpoints are left for the next run",
			"bucket", bucket, "error", err)
	}
}
