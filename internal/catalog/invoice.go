package catalog

import (
	"fmt"

	"github.com/posbridge/posbridge/internal/format"
)

// InvoiceTotals sums the lines of an invoice, the one way every output
// does it (the invoice export, the engagement feed, the history
// inquiry) and the invoice load checks it: a line's extended price is
// quantity x unit price, and the invoice total is merchandise - discount
// + tax + freight. Amounts are ten-thousandths; a credit's lines carry
// negative quantities, discounts and taxes, so its totals are negative.
// Every extended price and total stays within the range of amounts
// (docs/formats.md, "Numbers"): a load refuses an invoice that would
// leave it, so an output meets the error only for data stored before
// the ranges were checked.
type InvoiceTotals struct {
	Merchandise, Discount, Tax, Freight int64
}

// AddLine adds one line and returns its extended price. When the
// extended price or a total would leave the range of amounts, it returns
// an error wrapping format.ErrRange that names which, and t is unchanged.
func (t *InvoiceTotals) AddLine(qty, unitPrice, discount, tax, freight int64) (extended int64, err error) {
	extended, err = format.MulAmount(qty, unitPrice)
	if err != nil {
		return 0, fmt.Errorf("extended price (quantity × unit_price): %w", err)
	}
	u := *t
	for _, s := range []struct {
		name     string
		sum      *int64
		addition int64
	}{{"merchandise total", &u.Merchandise, extended}, {"discount total", &u.Discount, discount},
		{"tax total", &u.Tax, tax}, {"freight total", &u.Freight, freight}} {
		if *s.sum, err = format.AddAmount(*s.sum, s.addition); err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if _, err := u.total(); err != nil {
		return 0, err
	}
	*t = u
	return extended, nil
}

// Total is merchandise - discount + tax + freight of totals that AddLine
// built, which keeps it within the range of amounts (0 for totals built
// otherwise beyond it).
func (t InvoiceTotals) Total() int64 {
	v, _ := t.total()
	return v
}

// total is Total with the range checked at every step.
func (t InvoiceTotals) total() (int64, error) {
	v, err := format.AddAmount(t.Merchandise, -t.Discount)
	if err == nil {
		v, err = format.AddAmount(v, t.Tax)
	}
	if err == nil {
		v, err = format.AddAmount(v, t.Freight)
	}
	if err != nil {
		return 0, fmt.Errorf("invoice total: %w", err)
	}
	return v, nil
}
