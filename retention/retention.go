// Package retention decides which checkpoint artifacts to delete and deletes them from S3
// and from the artifacts table. It never decides when it runs (package cron does) and never
// touches artifacts other than checkpoints.
//
// The policy keeps the latest checkpoints of each run, the best one by a metric and those
// too young. Retention also keeps every checkpoint that a model version or a resumable run
// points at, and the last checkpoint of a run: its highest step and the one the run's
// last_checkpoint_uri names. A run whose checkpoints lack the step or the metric the policy
// needs is left whole.
//
// A delete takes three steps, each safe to interrupt: the row gets delete_started_at, then
// the objects are deleted with S3 DeleteObjects, then the row gets deleted_at. So a row
// without delete_started_at has its object, and a row left with delete_started_at only is
// finished by the next run. A marked row whose objects a live reference names again, as when
// a run writes a new checkpoint at its URI, keeps them and stays marked. The exception is an
// object written at a marked URI and reported only after the S3 delete: its row is live and
// its object gone.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Retainer.
type Config struct {
	// Policy is the global policy. Rows of checkpoint_retention_overrides change it per
	// project.
	Policy Policy
	// BatchSize is how many keys go in one DeleteObjects request and how many rows are
	// marked or finished at a time. Default and maximum 1000, S3's limit.
	BatchSize int
	// Logger receives one line per run, and per deleted checkpoint at debug level. Nil
	// discards them.
	Logger *slog.Logger
	// OnDeleted is called after each batch with the checkpoints it marked deleted and their
	// bytes, for metrics. Nil calls nothing.
	OnDeleted func(checkpoints int, bytes int64)
}

// runsPerPage is how many runs' checkpoints are read and planned at a time.
const runsPerPage = 200

// Retainer applies the retention policy. Runs of one database take turns through a
// PostgreSQL advisory lock, so a run by hand and a scheduled run never overlap.
type Retainer struct {
	pool  *pgxpool.Pool
	store ObjectStore
	cfg   Config

	// Test hooks: beforeDelete runs after a batch's rows are marked and before the S3
	// request, afterDelete after the S3 response and before the rows get deleted_at. An
	// error from either ends the run as a crash at that point would.
	beforeDelete, afterDelete func(context.Context) error
}

// New checks cfg and returns a Retainer that deletes through store.
func New(pool *pgxpool.Pool, store ObjectStore, cfg Config) (*Retainer, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, err
	}
	if cfg.BatchSize <= 0 || cfg.BatchSize > MaxDeleteKeys {
		cfg.BatchSize = MaxDeleteKeys
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Retainer{pool: pool, store: store, cfg: cfg}, nil
}

// Deletion is a checkpoint that a run chose to delete.
type Deletion struct {
	ID        uuid.UUID
	RunID     uuid.UUID
	ProjectID string
	URI       string
	SizeBytes int64
}

// Report is the outcome of one run, or in a dry run the outcome it would have.
type Report struct {
	DryRun      bool
	RunsChecked int // runs with more than one live checkpoint
	RunsSkipped int // runs left whole because a checkpoint lacks the step or the metric
	Kept        int // live checkpoints of the checked runs that stay
	// Planned are the checkpoints this run marked for deletion, or would mark.
	Planned []Deletion
	// Deleted counts rows whose objects are gone and that now have deleted_at, including
	// Resumed rows that an earlier, interrupted run had marked.
	Deleted int
	Resumed int
	// Refused counts objects S3 refused to delete and marked rows whose URI is unusable.
	// Their rows stay marked and the next run tries again.
	Refused int
	// Pending counts, in a dry run, rows an earlier run marked that a real run would finish.
	Pending int
	// Deferred counts marked rows whose objects a live row, a model version or a run names
	// again. Their objects stay and their rows stay marked until no reference is left.
	Deferred int
	// BytesFreed is the size_bytes of the Deleted rows, or in a dry run of the Planned ones.
	BytesFreed int64
}

// Run applies the policy as of now. In a dry run it changes nothing and reports what would
// go. On error the report covers what was done before it; the next run completes the rest.
func (r *Retainer) Run(ctx context.Context, now time.Time, dryRun bool) (Report, error) {
	report := Report{DryRun: dryRun}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return report, fmt.Errorf("checkpoint retention: acquire database connection: %w", err)
	}
	defer conn.Release()

	if !dryRun {
		unlock, err := lockRuns(ctx, conn)
		if err != nil {
			return report, err
		}
		defer unlock()
	}

	marked, err := r.planAll(ctx, conn, now, &report)
	if err != nil {
		return report, err
	}

	if dryRun {
		err = r.countPending(ctx, conn, &report)
	} else {
		err = r.finishPending(ctx, conn, now, marked, &report)
	}
	r.logReport(report, err)
	return report, err
}

// lockRuns waits for the session advisory lock that serialises retention runs.
func lockRuns(ctx context.Context, conn *pgxpool.Conn) (unlock func(), err error) {
	const key = "hashtext('schedulerd.checkpoint_retention')"
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock("+key+")"); err != nil {
		return nil, fmt.Errorf("checkpoint retention: wait for the advisory lock: %w", err)
	}
	return func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+key+")")
	}, nil
}

func (r *Retainer) logReport(report Report, err error) {
	attrs := []any{
		"dry_run", report.DryRun, "runs_checked", report.RunsChecked,
		"runs_skipped", report.RunsSkipped, "kept", report.Kept, "planned", len(report.Planned),
		"deleted", report.Deleted, "resumed", report.Resumed, "refused", report.Refused,
		"pending", report.Pending, "deferred", report.Deferred, "bytes_freed", report.BytesFreed,
	}
	switch {
	case err != nil && !errors.Is(err, context.Canceled):
		r.cfg.Logger.Error("checkpoint retention failed", append(attrs, "error", err)...)
	case err == nil && (len(report.Planned) > 0 || report.Deleted > 0 || report.Refused > 0):
		r.cfg.Logger.Info("checkpoint retention finished", attrs...)
	default:
		r.cfg.Logger.Debug("checkpoint retention finished", attrs...)
	}
}
