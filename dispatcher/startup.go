package dispatcher

import (
	"context"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
)

// Back-off between attempts of the first resync.
const (
	firstResyncMinDelay = time.Second
	firstResyncMaxDelay = 30 * time.Second
)

// firstResync queues every live run for its first reconcile, retrying with back-off while
// the database cannot be reached. Returning an error would stop the whole daemon, and a
// replica may take the Lease while PostgreSQL restarts. It returns an error only once ctx
// has ended.
func (d *Dispatcher) firstResync(ctx context.Context) error {
	delay := firstResyncMinDelay
	for attempt := 1; ; attempt++ {
		err := d.resync(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return contextErrorf(ctx, "first resync")
		}
		d.cfg.Metrics.LoopError(metrics.LoopResync)
		d.cfg.Logger.Error("first resync failed; retrying", "err", err, "attempt", attempt, "retry_in", delay)
		select {
		case <-ctx.Done():
			return contextErrorf(ctx, "first resync")
		case <-time.After(delay):
		}
		delay = min(2*delay, firstResyncMaxDelay)
	}
}
