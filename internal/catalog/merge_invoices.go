package catalog

import (
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/trigger"
)

// invoiceHeaderCols are the header columns, repeated on every line.
var invoiceHeaderCols = []string{"order_no", "customer", "invoice_type", "invoice_date"}

// invoiceLineCols are the line columns besides invoice and line_no.
var invoiceLineCols = []string{"item", "sku", "quantity", "unit_price", "discount", "tax", "freight"}

func checkInvoices(l *loader) error {
	if err := l.rejectWhere(`s.invoice_type NOT IN ('I','C')`, `'field invoice_type "' || s.invoice_type || '": must be I (invoice) or C (credit)'`); err != nil {
		return err
	}
	if err := l.rejectWhere(`s.quantity = 0`, `'field quantity: must not be 0'`); err != nil {
		return err
	}
	return l.checkInvoiceTotals()
}

// checkInvoiceTotals sums every staged invoice as the outputs will
// (InvoiceTotals) and rejects the line at which an extended price or a
// total leaves the range of amounts; the invoice's other lines follow it
// (group.whole). Every amount stored is then one the outputs can sum.
func (l *loader) checkInvoiceTotals() error {
	rows, err := l.conn.QueryContext(l.ctx, `SELECT rec, invoice, quantity, unit_price, coalesce(discount, 0), coalesce(tax, 0),
  coalesce(freight, 0) FROM stage ORDER BY invoice, line_no`)
	if err != nil {
		return err
	}
	type bad struct {
		rec int64
		msg string
	}
	var bads []bad
	var cur, failed string
	var sum InvoiceTotals
	for rows.Next() {
		var rec, qty, price, disc, tax, freight int64
		var invoice string
		if err := rows.Scan(&rec, &invoice, &qty, &price, &disc, &tax, &freight); err != nil {
			rows.Close()
			return err
		}
		if invoice != cur {
			cur, sum = invoice, InvoiceTotals{}
		}
		if invoice == failed {
			continue
		}
		if _, err := sum.AddLine(qty, price, disc, tax, freight); err != nil {
			failed = invoice
			bads = append(bads, bad{rec, fmt.Sprintf("invoice %s: %v", invoice, err)})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(bads) == 0 {
		return err
	}
	if _, err := l.exec(`CREATE TEMP TABLE badtotals (rec INTEGER PRIMARY KEY, msg TEXT NOT NULL)`); err != nil {
		return err
	}
	ins := newStager(l, "badtotals", 2, "")
	defer ins.close()
	for _, b := range bads {
		if err := ins.add([]any{b.rec, b.msg}); err != nil {
			return err
		}
	}
	if err := ins.flush(); err != nil {
		return err
	}
	return l.rejectFrom(`stage s JOIN badtotals b ON b.rec = s.rec`, `true`, `b.msg`)
}

// mergeInvoices merges invoices as wholes: an invoice is its rows grouped
// by invoice number, and the file carries all its lines, so lines missing
// from the file are removed from the invoice. The table firsts holds each
// invoice's first row and its action.
func mergeInvoices(l *loader) error {
	// Header columns the file leaves out keep their stored values; lines
	// are replaced whole.
	invoiceHeaderCols := l.given(invoiceHeaderCols)
	// An invoice is stamped with the change sequence of the load that
	// added it, or brought it back after a delete, and keeps it through
	// later changes: the engagement feed sends an invoice once.
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	steps := []stmt{
		{q: `UPDATE firsts SET action = coalesce((SELECT CASE
    WHEN h.deleted_at IS NOT NULL THEN 'A'
    WHEN ` + differs("h", "f", invoiceHeaderCols) + ` THEN 'C'
    WHEN EXISTS (SELECT 1 FROM stage s LEFT JOIN invoice_lines n ON n.invoice = s.invoice AND n.line_no = s.line_no
      WHERE s.invoice = firsts.key AND (n.invoice IS NULL OR ` + differs("n", "s", invoiceLineCols) + `)) THEN 'C'
    WHEN (SELECT count(*) FROM invoice_lines n WHERE n.invoice = firsts.key)
      <> (SELECT count(*) FROM stage s WHERE s.invoice = firsts.key) THEN 'C'
    ELSE '' END
  FROM invoices h, stage f WHERE h.invoice = firsts.key AND f.rec = firsts.first), 'A')`},
		{q: `INSERT INTO invoices(invoice, ` + list(invoiceHeaderCols, "") + `change_seq, created_at, updated_at)
SELECT s.invoice, ` + list(invoiceHeaderCols, "s.") + `?2, ?1, ?1 FROM firsts JOIN stage s ON s.rec = firsts.first WHERE firsts.action <> ''
ON CONFLICT(invoice) DO UPDATE SET ` + setExcluded(invoiceHeaderCols) + `change_seq = CASE WHEN invoices.deleted_at IS NOT NULL
  THEN excluded.change_seq ELSE invoices.change_seq END, deleted_at = NULL, updated_at = excluded.updated_at`, args: []any{l.now, seq}},
		{q: `DELETE FROM invoice_lines WHERE invoice IN (SELECT key FROM firsts WHERE action <> '')`},
		{q: `INSERT INTO invoice_lines(invoice, line_no, ` + strings.TrimSuffix(list(invoiceLineCols, ""), ", ") + `)
SELECT s.invoice, s.line_no, ` + strings.TrimSuffix(list(invoiceLineCols, "s."), ", ") + ` FROM stage s JOIN firsts ON firsts.key = s.invoice WHERE firsts.action <> ''`},
	}
	if err := l.execAll(steps); err != nil {
		return err
	}
	if err := l.countActions("firsts"); err != nil {
		return err
	}
	if err := l.fold(trigger.CodeInvoice, `SELECT key AS record_key, '' AS sub_key, action AS capture FROM firsts WHERE action <> ''`); err != nil {
		return err
	}
	if !l.deletesAllowed() {
		return nil
	}
	if _, err := l.exec(`INSERT INTO gone(record_key) SELECT h.invoice FROM invoices h
WHERE h.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM firsts WHERE firsts.key = h.invoice)`); err != nil {
		return err
	}
	return l.deleteGone("invoices", trigger.CodeInvoice, "invoice", "")
}
