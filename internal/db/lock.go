package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"time"
)

// Locks between the hosts that share a PostgreSQL database. On SQLite the
// database is on one host: a write transaction (BEGIN IMMEDIATE) excludes
// every other writer, and lock files keep runs apart, so these do nothing
// there.

// LockForTx takes the lock named key until conn's transaction ends, on
// PostgreSQL: a second transaction asking for it waits for the first to
// end, up to the busy timeout (then ErrBusy, exit 75).
func LockForTx(ctx context.Context, conn *sql.Conn, key string) error {
	if DialectOf(conn) != Postgres {
		return nil
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key); err != nil {
		return fmt.Errorf("lock %s: %w", key, Classify(err))
	}
	return nil
}

// LockSession takes the lock named key for conn's session, on PostgreSQL,
// trying until deadline (once when deadline is zero): ErrBusy when
// another session holds it still. The server drops it with the session,
// so a killed run holds it no longer than its connection. unlock releases
// it before conn goes back to the pool; a connection that cannot release
// it is closed instead.
func LockSession(ctx context.Context, conn *sql.Conn, key string, deadline time.Time) (unlock func(), err error) {
	if DialectOf(conn) != Postgres {
		return func() {}, nil
	}
	for {
		var got bool
		if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtextextended(?, 0))`, key).Scan(&got); err != nil {
			return nil, fmt.Errorf("lock %s: %w", key, Classify(err))
		}
		if got {
			return func() {
				if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended(?, 0))`, key); err != nil {
					conn.Raw(func(any) error { return driver.ErrBadConn })
				}
			}, nil
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("lock %s: %w: held by a run on another host", key, ErrBusy)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
