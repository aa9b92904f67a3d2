package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/schedulerd/schedulerd/replay/report"
)

// partialReportTimeout bounds the database reads of a partial report, which run after the
// replay's own context has ended. scripts/demo.sh sends SIGKILL 30 s after its SIGTERM, and
// the report must be written before that.
const partialReportTimeout = 20 * time.Second

// timeoutError is the cause of a replay's context ending at Config.Timeout.
type timeoutError struct{ timeout time.Duration }

func (e timeoutError) Error() string {
	return fmt.Sprintf("reached its timeout of %s", e.timeout)
}

// stopReason returns why ctx ended: the replay's own timeout, or else an interruption
// with its cause, such as the signal that the CLI names.
func stopReason(ctx context.Context) string {
	cause := context.Cause(ctx)
	var timeout timeoutError
	if errors.As(cause, &timeout) {
		return timeout.Error()
	}
	return fmt.Sprintf("interrupted (%v)", cause)
}

// submitting reports whether Run is at a step that submits or follows jobs. A replay that
// fails there has jobs in the database, so a partial report of them is worth writing.
func (r *Replayer) submitting() bool {
	return r.step == stepSubmit || r.step == stepWait
}

// writePartialReport writes the report of a replay that ended before the report step.
// reason is what the report gives as the cause, and runErr is the error that Run returns
// with the report's path. It counts the submitted tasks in the database, because a
// submission that the stop cut short may have been stored or not.
//
// The report's reads run under partialReportContext, so that they work after the
// replay's context has ended and so that abort, or ctx if it has not ended yet, stops
// them. If the report fails, the returned error wraps runErr and the report's error.
//
// NOTE: a stop ends only the reads. report.Write takes no context, so once the figures are
// read, the files are written in full (about 0.15 s for two hours of samples on 2 cores).
func (r *Replayer) writePartialReport(ctx, abort context.Context, rec *recorder, started time.Time,
	reason string, runErr error) (string, error) {
	r.cfg.Logger.Warn("replay stopped early; writing a partial report", "reason", reason, "step", r.step)
	reportCtx, cancel := partialReportContext(ctx, abort)
	defer cancel()

	entries := r.plan.schedule.Entries
	submitted, err := r.alreadySubmitted(reportCtx, entries)
	if err != nil {
		return "", partialReportError(reportCtx, runErr, err)
	}
	stop := &report.Stop{Reason: reason, Step: r.step, Left: len(entries) - submitted}
	path, err := r.writeReport(reportCtx, rec, started, submitted, stop)
	if err != nil {
		return "", partialReportError(reportCtx, runErr, err)
	}
	return path, runErr
}

// partialReportContext returns the context of a partial report's reads. It lasts at most
// partialReportTimeout and ends early when abort ends. It also ends with ctx if ctx is
// still running when the report starts, which happens after a failure or Config.Timeout.
// The caller has not stopped the replay then, so its first stop stops the report.
func partialReportContext(ctx, abort context.Context) (context.Context, context.CancelFunc) {
	reportCtx, cancel := context.WithCancelCause(abort)
	stopFollowing := func() bool { return false }
	if ctx.Err() == nil {
		stopFollowing = context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	}
	timed, cancelTimeout := context.WithTimeout(reportCtx, partialReportTimeout)
	return timed, func() {
		cancelTimeout()
		stopFollowing()
		cancel(nil)
	}
}

// partialReportError joins the replay's error with that of its partial report. When the
// caller stopped the report, the error names that stop's cause instead of the report
// query that it cut short.
func partialReportError(reportCtx context.Context, runErr, reportErr error) error {
	cause := context.Cause(reportCtx)
	if cause != nil && !errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%w; stopped writing the partial report: %w", runErr, cause)
	}
	return fmt.Errorf("%w; the partial report failed too: %w", runErr, reportErr)
}
