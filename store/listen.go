package store

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen calls wake on every notification on channel until ctx ends, reconnecting with
// back-off (1 s doubling to 30 s) when the connection drops. Callers poll as well, so a
// notification lost while reconnecting only delays them by one poll.
func (s *Store) Listen(ctx context.Context, channel string, wake func(), logger *slog.Logger) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, channel, wake)
		if ctx.Err() != nil {
			return
		}
		logger.Warn("notifications lost; reconnecting", "channel", channel, "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, channel string, wake func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	defer func() {
		// The connection goes back to the pool: stop listening on it first.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
	}()

	for {
		_, err := conn.Conn().WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, pgx.ErrTxClosed) {
				return err
			}
			conn.Conn().Close(context.WithoutCancel(ctx))
			return err
		}
		wake()
	}
}
