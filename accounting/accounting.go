// Package accounting owns GPU-hours: it accrues the hours of running runs so that reports
// and dashboards see them grow, and it reports totals per project and org. A run's hours
// are its GPUs (or GPU fraction) times its running time, from container start to container
// end as the pod reports them; pending time never counts. The debit from the project's
// budget happens once, when the run ends (store.EndRun), capped at the run's reservation.
package accounting

import (
	"context"
	"log/slog"
	"time"

	"github.com/schedulerd/schedulerd/metrics"
	"github.com/schedulerd/schedulerd/store"
)

// Accruer updates the GPU-hours of running runs periodically.
type Accruer struct {
	Store    *store.Store
	Interval time.Duration // 30s when zero
	Now      func() time.Time
	// Metrics counts failed accruals; nil records nothing.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// Run accrues until ctx ends.
func (a *Accruer) Run(ctx context.Context) {
	interval, now, log := a.Interval, a.Now, a.Logger
	if interval <= 0 {
		interval = 30 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		if _, err := a.Store.AccrueRunning(ctx, now()); err != nil && ctx.Err() == nil {
			a.Metrics.LoopError(metrics.LoopAccrual)
			log.Error("GPU-hour accrual failed", "err", err)
		}
	}
}
