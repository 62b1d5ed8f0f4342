package catalog

import (
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
	return l.rejectWhere(`s.quantity = 0`, `'field quantity: must not be 0'`)
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
	steps := []struct {
		q    string
		args []any
	}{
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
	for _, s := range steps {
		if _, err := l.exec(s.q, s.args...); err != nil {
			return err
		}
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
