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
// with its cause, such as the signal that signal.NotifyContext names.
func stopReason(ctx context.Context) string {
	cause := context.Cause(ctx)
	var timeout timeoutError
	if errors.As(cause, &timeout) {
		return timeout.Error()
	}
	return fmt.Sprintf("interrupted (%v)", cause)
}

// writePartialReport writes the report of a replay whose context ended before the report
// step, runErr being the error that ended it. Its reads get a context of their own, so
// that they run after the replay's has ended. It counts the submitted tasks in the
// database, because a submission that the stop cut short may have been stored or not. It
// returns the report's path with runErr, which it prefixes with the reason for the stop.
func (r *Replayer) writePartialReport(ctx context.Context, rec *recorder, started time.Time,
	runErr error) (string, error) {
	reason := stopReason(ctx)
	runErr = fmt.Errorf("%s while %s: %w", reason, r.step, runErr)
	r.cfg.Logger.Warn("replay stopped early; writing a partial report", "reason", reason, "step", r.step)

	reportCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), partialReportTimeout)
	defer cancel()
	entries := r.plan.schedule.Entries
	submitted, err := r.alreadySubmitted(reportCtx, entries)
	if err != nil {
		return "", fmt.Errorf("%w; the partial report failed too: %v", runErr, err)
	}

	stop := &report.Stop{Reason: reason, Step: r.step, Left: len(entries) - submitted}
	path, err := r.writeReport(reportCtx, rec, started, submitted, stop)
	if err != nil {
		return "", fmt.Errorf("%w; the partial report failed too: %v", runErr, err)
	}
	return path, runErr
}
