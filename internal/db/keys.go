package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
)

// WithoutKeyChecks runs fn on conn, outside any transaction, with SQLite's
// foreign key checks off, and turns them on again whatever fn returns. It
// is for a bulk write whose keys hold by construction (a first load writes
// each item before its SKUs; an import writes history rows of the file it
// has just recorded), where checking every row costs a parent lookup per
// row. SQLite ignores the pragma inside a transaction, so fn opens its own.
// If the checks cannot be turned on again, the connection is discarded
// rather than returned to the pool without them. On PostgreSQL fn runs as
// it is: its keys are checked, or dropped and rebuilt by the caller.
func WithoutKeyChecks(ctx context.Context, conn *sql.Conn, fn func() error) (err error) {
	if DialectOf(conn) == Postgres {
		return fn()
	}
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("foreign keys off: %w", Classify(err))
	}
	defer func() {
		// Inside a transaction fn left open the pragma does nothing and
		// says nothing: it is read back.
		var on int64
		_, onErr := conn.ExecContext(context.Background(), "PRAGMA foreign_keys = ON")
		if onErr == nil {
			onErr = conn.QueryRowContext(context.Background(), "PRAGMA foreign_keys").Scan(&on)
		}
		if onErr == nil && on != 1 {
			onErr = errors.New("still off (a transaction left open)")
		}
		if onErr != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("foreign keys on: %w", Classify(onErr))
			}
		}
	}()
	return fn()
}
