package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txAttempts bounds how often inTxRetry runs a transaction.
const txAttempts = 3

// ErrContention: a transaction met a deadlock or serialization failure on every attempt.
// Nothing changed; the caller may try again later.
var ErrContention = errors.New("database contention")

// inTxRetry is inTx for transactions that can form a lock cycle with the dispatcher or a
// dequeue. An example is a drain that locks a quota and then a pending run, while the
// dispatcher ends that run and waits for the quota. PostgreSQL aborts one side of a
// deadlock. When it aborts this side, the transaction runs again, so fn must start from
// scratch on each call.
func (s *Store) inTxRetry(ctx context.Context, fn func(pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.inTx(ctx, fn)
		if !retryable(err) {
			return err
		}
		if attempt == txAttempts {
			return fmt.Errorf("%w after %d attempts: %w", ErrContention, attempt, err)
		}
	}
}

// retryable reports a deadlock or serialization failure, which a new attempt may not meet.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}
