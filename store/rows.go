package store

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

func collectOne[T any](rows pgx.Rows) (T, error) {
	return pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[T])
}

func collectAll[T any](rows pgx.Rows) ([]T, error) {
	return pgx.CollectRows(rows, pgx.RowToStructByName[T])
}

// wrapBudget turns "no row updated" from a guarded budget statement into ErrBudgetExceeded.
func wrapBudget(err error, doing string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", doing, ErrBudgetExceeded)
	}
	return wrap(err, doing)
}

// uuidArray converts ids for a uuid[] parameter. pgx encodes each uuid.UUID through its
// text form, so 64 ids take about 20 times as long as 64 pgtype.UUID values
// (BenchmarkUUIDArray).
func uuidArray(ids []uuid.UUID) []pgtype.UUID {
	out := make([]pgtype.UUID, len(ids))
	for i, id := range ids {
		out[i] = pgtype.UUID{Bytes: id, Valid: true}
	}
	return out
}

// fromUUIDArray converts a scanned uuid[] that has no nulls back to uuid.UUID values.
func fromUUIDArray(ids []pgtype.UUID) []uuid.UUID {
	out := make([]uuid.UUID, len(ids))
	for i, id := range ids {
		out[i] = id.Bytes
	}
	return out
}
