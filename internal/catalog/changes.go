package catalog

import (
	"context"
	"database/sql"

	"github.com/posbridge/posbridge/internal/db"
)

// ChangeCounter is the sequences row of the change sequence: one counter
// for every change a feed or a partner export reads (customers, items,
// SKUs, invoices, stock rows, SKU cross references), so that one number
// orders them all.
const ChangeCounter = "catalog_changes"

// NextChangeSeq takes the next number of the change sequence. Call it
// inside the write transaction (db.WithTx) that stamps it on the rows it
// writes: a transaction that commits later then always has a larger
// number, and "change_seq > watermark" finds every change an export has
// not sent. On SQLite one writer runs at a time; on PostgreSQL the
// counter's row stays locked by the transaction that took a number until
// it ends, so the next number is taken only after that. Take one number
// per transaction and stamp it on every row the transaction changes.
func NextChangeSeq(ctx context.Context, q db.Querier) (int64, error) {
	return db.NextSequence(ctx, q, ChangeCounter)
}

// HoldChangeCounter locks the change counter's row on PostgreSQL until
// the transaction on conn ends, without taking a number: what the
// transaction does next comes after every writer that holds a number and
// has not committed, and before every writer that asks for one. A
// transaction that will take a number and must first lock rows those
// writers also lock (SKUs a load deletes) takes the counter first, in the
// writers' own order, so that the two do not deadlock. Nothing on SQLite,
// where one writer runs at a time.
func HoldChangeCounter(ctx context.Context, conn *sql.Conn) error {
	if db.DialectOf(conn) != db.Postgres {
		return nil
	}
	_, err := conn.ExecContext(ctx, `INSERT INTO sequences(kind, last) VALUES (?, 0) ON CONFLICT(kind) DO UPDATE SET last = sequences.last`, ChangeCounter)
	return db.Classify(err)
}
