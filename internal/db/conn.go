package db

import (
	"context"
	"database/sql"
)

// Execer runs statements: a *DB, *sql.Conn or *sql.Tx, or a writer that
// prepares its statements once (the transfer ledger's).
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Querier reads and writes: a *DB, *sql.Conn or *sql.Tx. Domain functions
// take it so that a caller runs them inside its own transaction or on
// their own.
type Querier interface {
	Execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// NextSequence takes the next number of the counter kind in table
// sequences, starting at 1. No two committed transactions get the same
// number: the counter moves with the caller's transaction, so one that
// rolls back gives its number back.
func NextSequence(ctx context.Context, q Querier, kind string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `INSERT INTO sequences(kind, last) VALUES (?, 1)
ON CONFLICT(kind) DO UPDATE SET last = sequences.last + 1 RETURNING last`, kind).Scan(&n)
	return n, err
}

// PeekSequence is the number NextSequence would take now for kind, taking
// none: what a dry run names its files by.
func PeekSequence(ctx context.Context, q Querier, kind string) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT coalesce((SELECT last FROM sequences WHERE kind = ?), 0) + 1`, kind).Scan(&n)
	return n, err
}

// What Querier promises to take.
var (
	_ Querier = (*DB)(nil)
	_ Querier = (*sql.Conn)(nil)
	_ Querier = (*sql.Tx)(nil)
)
