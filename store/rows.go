package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
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
