package store_test

import (
	"context"
	"testing"

	"github.com/schedulerd/schedulerd/internal/pgtest"
	"github.com/schedulerd/schedulerd/jobspec"
	"github.com/schedulerd/schedulerd/store"
)

// TestReservationSQLMatchesGo: the candidate and wait-reason queries round a reservation
// exactly as jobspec.ReservedGPUHours does, including values halfway between two
// ten-thousandths of a GPU-hour (1 GPU-thousandth for 180 s).
func TestReservationSQLMatchesGo(t *testing.T) {
	pool := pgtest.NewPool(t)
	var milli, seconds []int32
	for _, m := range []int32{1, 3, 7, 333, 500, 999, 1000, 8000, 64000} {
		for _, s := range []int32{1, 59, 60, 179, 180, 181, 540, 3599, 3600, 514286, 514312, 2592000} {
			milli, seconds = append(milli, m), append(seconds, s)
		}
	}
	rows, err := pool.Query(context.Background(), `SELECT q.gpu_milli, q.max_runtime_seconds, (`+
		store.SQLReservation+`)::float8 FROM unnest($1::int[], $2::int[]) AS q(gpu_milli, max_runtime_seconds)`,
		milli, seconds)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()

	n := 0
	for rows.Next() {
		var m, s int
		var got float64
		if err := rows.Scan(&m, &s, &got); err != nil {
			t.Fatal(err)
		}
		n++
		if want := jobspec.ReservedGPUHours(m, s); got != want {
			t.Errorf("%d GPU-thousandths for %d s: SQL %v, Go %v", m, s, got, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(milli) {
		t.Errorf("compared %d reservations, want %d", n, len(milli))
	}
}
