package store

import (
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// BenchmarkUUIDArray encodes 64 job ids as a uuid[] parameter, from a []uuid.UUID and from
// the result of uuidArray.
func BenchmarkUUIDArray(b *testing.B) {
	ids := make([]uuid.UUID, 64)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, c := range []struct {
		name  string
		param func() any
	}{
		{"uuid.UUID", func() any { return ids }},
		{"uuidArray", func() any { return uuidArray(ids) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			m := pgtype.NewMap()
			for b.Loop() {
				buf, err := m.Encode(pgtype.UUIDArrayOID, pgtype.BinaryFormatCode, c.param(), nil)
				if err != nil {
					b.Fatal(err)
				}
				// 20 bytes of array header, then a 4-byte length and 16 bytes per id.
				if want := 20 + 20*len(ids); len(buf) != want {
					b.Fatalf("encoded %d bytes, want %d", len(buf), want)
				}
			}
		})
	}
}
