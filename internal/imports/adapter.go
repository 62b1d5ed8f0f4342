package imports

import (
	"errors"
	"strconv"
)

// Transaction is one inventory transaction that an adapter builds from a
// partner's record (a received purchase order line, a stock count): the
// fields of a record of the inventory-transaction upload.
type Transaction struct {
	// Line is the line of the partner's file the record starts on.
	Line                           int
	Code                           string // a transaction code (section 4 of docs/imports.md)
	Item, SKU, Warehouse, Location string
	Quantity                       int64
	Reason, Reference, User        string
}

// Applier applies the transactions of an adapter with the checks, running
// balances, history rows, change stamps and inventory triggers of the
// inventory-transaction import: partner uploads are adapters in front of
// it, not appliers of their own.
type Applier struct {
	a     *applier
	codes map[string]string
}

// NewApplier starts applying transactions in the session's transaction.
// Close it when done.
func NewApplier(s *Session) (*Applier, error) {
	a, err := s.newApplier()
	if err != nil {
		return nil, err
	}
	return &Applier{a: a, codes: s.Opts.codes()}, nil
}

// Apply checks t against its fields and the state and applies it to the
// balances and the history. reason is why t is rejected (nil when it was
// applied); err is a database failure, which fails the whole file.
func (p *Applier) Apply(t Transaction) (reason, err error) {
	row := txnRow{Code: t.Code, Item: t.Item, SKU: t.SKU, Warehouse: t.Warehouse, Location: t.Location,
		Quantity: strconv.FormatInt(t.Quantity, 10), Reason: t.Reason, Reference: t.Reference, User: t.User}
	c, err := check(t.Line, nil, row, p.codes, p.a.o.MaxFieldLength)
	if err != nil {
		return err, nil
	}
	if err := p.a.apply(c); err != nil {
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return nil, fatal.err
		}
		return err, nil
	}
	return nil, nil
}

// Finish writes the changed balances, the rest of the history and the
// inventory triggers, and returns how many triggers were created or
// folded. Call it once, after the last Apply, when the file is kept.
func (p *Applier) Finish() (int64, error) { return p.a.finish() }

// Close releases the prepared statements.
func (p *Applier) Close() { p.a.close() }
