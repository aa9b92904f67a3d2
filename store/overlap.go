package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlOverlapKey names the session advisory lock of OverlapLock. PostgreSQL keeps advisory
// locks per database, so the schedulers of one database share it and no others.
const sqlOverlapKey = `hashtext('schedulerd.dequeue_overlap')`

// OverlapLock is a session advisory lock that one scheduler at a time holds while it lets
// its dequeue rounds overlap (scheduler.Drain). One scheduler alone leaves the database
// idle between its round trips, and overlapping fills that time. Several schedulers
// already keep the database busy. When 8 of them all overlapped, throughput fell by about
// 15% (bench/results/AB-2026-12-06-pipeline.md), likely because each read then skips the
// rows of every other open dequeue. The lock keeps the holder's pooled connection until
// Release.
type OverlapLock struct {
	conn *pgxpool.Conn
}

// TryOverlapLock takes the overlap lock without waiting for it, although it may wait for
// a pooled connection. It returns nil, and no error, when another session holds it.
func (s *Store) TryOverlapLock(ctx context.Context) (*OverlapLock, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap(err, "take the dequeue overlap lock")
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+sqlOverlapKey+`)`).Scan(&ok); err != nil {
		conn.Release()
		return nil, wrap(err, "take the dequeue overlap lock")
	}
	if !ok {
		conn.Release()
		return nil, nil
	}
	return &OverlapLock{conn: conn}, nil
}

// Alive reports whether the lock's session still responds to a ping. A session that
// ended, because its server process was terminated or a proxy closed the connection, took
// the lock with it, and another scheduler may hold it now.
func (l *OverlapLock) Alive(ctx context.Context) bool {
	return l.conn.Ping(ctx) == nil
}

// Release unlocks the lock and returns its connection to the pool. When the unlock fails,
// it closes the connection instead, which ends the session and its lock with it.
func (l *OverlapLock) Release(ctx context.Context) {
	unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(unlockCtx, `SELECT pg_advisory_unlock(`+sqlOverlapKey+`)`); err != nil {
		_ = l.conn.Conn().Close(unlockCtx)
	}
	l.conn.Release()
}
