package catalog

// InvoiceTotals sums the lines of an invoice, the one way every output
// does it (the invoice export, the engagement feed, the history
// inquiry): a line's extended price is quantity x unit price, and the
// invoice total is merchandise - discount + tax + freight. Amounts are
// ten-thousandths; a credit's lines carry negative quantities, discounts
// and taxes, so its totals are negative.
type InvoiceTotals struct {
	Merchandise, Discount, Tax, Freight int64
}

// AddLine adds one line and returns its extended price.
func (t *InvoiceTotals) AddLine(qty, unitPrice, discount, tax, freight int64) (extended int64) {
	extended = qty * unitPrice
	t.Merchandise += extended
	t.Discount += discount
	t.Tax += tax
	t.Freight += freight
	return extended
}

// Total is merchandise - discount + tax + freight.
func (t InvoiceTotals) Total() int64 { return t.Merchandise - t.Discount + t.Tax + t.Freight }
