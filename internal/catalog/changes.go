package catalog

import (
	"context"
	"database/sql"
)

// ChangeCounter is the sequences row of the change sequence: one counter
// for every change a feed or a partner export reads (customers, items,
// SKUs, invoices, stock rows, SKU cross references), so that one number
// orders them all.
const ChangeCounter = "catalog_changes"

// Queryer is what NextChangeSeq and StampInventory need: a *sql.Conn or
// *sql.Tx in a write transaction.
type Queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// NextChangeSeq takes the next number of the change sequence. Call it
// inside the write transaction (BEGIN IMMEDIATE) that stamps it on the
// rows it writes: SQLite runs one writer at a time, so a transaction that
// commits later always has a larger number, and "change_seq > watermark"
// finds every change an export has not sent. Take one number per
// transaction and stamp it on every row the transaction changes.
func NextChangeSeq(ctx context.Context, q Queryer) (int64, error) {
	var seq int64
	err := q.QueryRowContext(ctx, `INSERT INTO sequences(kind, last) VALUES ('`+ChangeCounter+`', 1)
ON CONFLICT(kind) DO UPDATE SET last = last + 1 RETURNING last`).Scan(&seq)
	return seq, err
}

// StampInventory stamps change sequence seq on the stock rows that match
// where (a condition on table inventory, with args): every writer of
// inventory rows (loads, imports, reservations) stamps the rows whose
// on_hand or reserved it changes, which is what the partner inventory
// exports read (docs/partners.md). Writers that set the rows with their
// own INSERT or UPDATE may instead set change_seq = seq there.
func StampInventory(ctx context.Context, q Queryer, seq int64, where string, args ...any) error {
	_, err := q.ExecContext(ctx, `UPDATE inventory SET change_seq = ? WHERE `+where, append([]any{seq}, args...)...)
	return err
}
