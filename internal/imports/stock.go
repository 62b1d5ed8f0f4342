package imports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrStock marks a transaction of ApplyStock that the state refuses (an
// unknown item/SKU or warehouse, negative stock); nothing was applied.
var ErrStock = errors.New("inventory transaction refused")

// ApplyStock applies transactions that come from no upload file (a
// returned item that passed QC) inside the caller's write transaction on
// conn, through the Applier of the uploads: the same checks, a history
// row each (without a file), the change stamp on the stock rows and the
// inventory trigger rule. Any refused transaction fails them all. It
// returns the number of inventory triggers created or folded.
func ApplyStock(ctx context.Context, conn *sql.Conn, o Options, txns ...Transaction) (int64, error) {
	p, err := NewApplier(&Session{Ctx: ctx, Conn: conn, Opts: &o})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	for _, t := range txns {
		reason, err := p.Apply(t)
		if err != nil {
			return 0, err
		}
		if reason != nil {
			// Refused on stock another host changed since it was read: busy.
			if err := p.a.checkRefused(); err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("%w: %s/%s in %s: %v", ErrStock, t.Item, t.SKU, t.Warehouse, reason)
		}
	}
	return p.Finish()
}
