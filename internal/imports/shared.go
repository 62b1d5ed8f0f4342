package imports

import (
	"context"
	"database/sql"
)

// What other upload kinds (the store upload of package stores) share with
// the inventory transaction import: the content hash, the ledger lookup and
// statuses, and the reject file. Thin wrappers, so both kinds keep one
// implementation.

// Ledger statuses of imported files (files.status).
const (
	StatusApplied  = statusApplied
	StatusPartial  = statusPartial
	StatusRejected = statusRejected
)

// FileSum reads the whole file at path for its sha256 (hex) and size.
func FileSum(path string) (string, int64, error) { return fileSum(path) }

// RowQuerier runs a query returning at most one row: a *sql.DB, *sql.Conn
// or *sql.Tx.
type RowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// AppliedBefore describes the latest import of kind with the same content
// (sha256) that applied something, or returns "" when there is none.
func AppliedBefore(ctx context.Context, q RowQuerier, kind, sum string) (string, error) {
	return appliedBefore(ctx, q, kind, sum)
}

// Rejects is the reject file of one import, <input name>.rejects.csv in dir
// (beside the input when dir is ""): columns line, error, then header. It
// is written under a temporary name and put in place by Finish; a stale one
// of an earlier import of the same path is removed when nothing was
// rejected. A dry run writes nothing.
type Rejects struct{ r *rejects }

// NewRejects prepares the reject file of input; nothing is written before
// the first Add.
func NewRejects(input, dir string, header []string, dryRun bool) *Rejects {
	r, _ := newRejects(input, dir, header, dryRun)
	return &Rejects{r: r}
}

// Add writes one rejected record: its line, the reason and its fields.
func (r *Rejects) Add(line int, msg string, raw []string) error { return r.r.add(line, msg, raw) }

// Finish puts the reject file in place and returns its path, or "" when
// nothing was rejected (or in a dry run).
func (r *Rejects) Finish() (string, error) { return r.r.finish() }

// Discard removes a reject file that was not finished.
func (r *Rejects) Discard() { r.r.discard() }
