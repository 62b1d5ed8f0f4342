package inquiry

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
)

// addLine adds an invoice line to the totals of its invoice and returns
// its extended price, by the arithmetic every invoice output shares
// (catalog.InvoiceTotals).
func (t *Totals) addLine(qty, unitPrice, discount, tax, freight int64) (format.Amount, error) {
	sum := catalog.InvoiceTotals{Merchandise: int64(t.Merchandise), Discount: int64(t.Discount), Tax: int64(t.Tax), Freight: int64(t.Freight)}
	ext, err := sum.AddLine(qty, unitPrice, discount, tax, freight)
	if err != nil {
		return 0, err
	}
	*t = Totals{Merchandise: format.Amount(sum.Merchandise), Discount: format.Amount(sum.Discount), Tax: format.Amount(sum.Tax),
		Freight: format.Amount(sum.Freight), Total: format.Amount(sum.Total())}
	return format.Amount(ext), nil
}

// add adds an invoice's totals to its order's; an order's totals stay
// within the range of amounts like an invoice's, or it is an error.
func (t *Totals) add(u Totals) error {
	for _, s := range []struct {
		name     string
		sum      *format.Amount
		addition format.Amount
	}{{"merchandise total", &t.Merchandise, u.Merchandise}, {"discount total", &t.Discount, u.Discount},
		{"tax total", &t.Tax, u.Tax}, {"freight total", &t.Freight, u.Freight}, {"total", &t.Total, u.Total}} {
		sum, err := format.AddAmount(int64(*s.sum), int64(s.addition))
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		*s.sum = format.Amount(sum)
	}
	return nil
}

// History answers an order history inquiry: the live customer q names and
// its orders as its live invoices show them, newest first (by last
// invoice date, then order number descending), each with its invoices
// (oldest first) and totals; credits count negative. Lines come with
// q.Detail. An unknown (or deleted) customer gives a nil Customer and no
// orders, not an error; a query that cannot be asked is an error
// wrapping ErrQuery.
func History(ctx context.Context, d *db.DB, q HistoryQuery) (*HistoryResult, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	res := &HistoryResult{Query: q, Orders: []Order{}}
	c, err := historyCustomer(ctx, d, q)
	if err != nil || c == nil {
		return res, err
	}
	res.Customer = c
	n := q.Orders
	if n == 0 {
		n = DefaultOrders
	}
	query, args := ordersQuery(c.Customer, q.Order, n)
	orders, err := db.QueryAll(ctx, d, func(s db.Scanner) (Order, error) {
		o := Order{Invoices: []Invoice{}}
		return o, s.Scan(&o.Order, &o.FirstDate, &o.LastDate)
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("order history: %w", err)
	}
	if len(orders) == 0 {
		return res, nil
	}
	index := make(map[string]int, len(orders))
	numbers := make([]string, len(orders))
	for i, o := range orders {
		index[o.Order] = i
		numbers[i] = o.Order
	}
	query, args = invoicesQuery(c.Customer, numbers)
	rows, err := d.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("order history: %w", db.Classify(err))
	}
	defer rows.Close()
	var cur *Invoice
	for rows.Next() {
		var inv Invoice
		var order string
		var line, qty, price, disc, tax, freight sql.NullInt64
		var item, sku sql.NullString
		if err := rows.Scan(&inv.Invoice, &order, &inv.Type, &inv.Date, &line, &item, &sku, &qty, &price, &disc, &tax, &freight); err != nil {
			return nil, fmt.Errorf("order history: %w", err)
		}
		o := &orders[index[order]]
		if cur == nil || cur.Invoice != inv.Invoice {
			o.Invoices = append(o.Invoices, inv)
			cur = &o.Invoices[len(o.Invoices)-1]
		}
		if !line.Valid {
			continue
		}
		ext, err := cur.addLine(qty.Int64, price.Int64, disc.Int64, tax.Int64, freight.Int64)
		if err != nil {
			return nil, fmt.Errorf("order history: invoice %s line %d: %w", inv.Invoice, line.Int64, err)
		}
		if q.Detail {
			cur.Lines = append(cur.Lines, Line{Line: int(line.Int64), Item: item.String, SKU: sku.String, Quantity: qty.Int64,
				UnitPrice: format.Amount(price.Int64), Extended: ext, Discount: format.Amount(disc.Int64), Tax: format.Amount(tax.Int64)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("order history: %w", db.Classify(err))
	}
	for i := range orders {
		for _, inv := range orders[i].Invoices {
			if err := orders[i].add(inv.Totals); err != nil {
				return nil, fmt.Errorf("order history: order %s: %w", orders[i].Order, err)
			}
		}
	}
	res.Orders = orders
	return res, nil
}

// ordersQuery selects the newest n orders of a customer (or the one
// order): the index invoices_customer (customer, order_no, invoice_date)
// holds them; only the customer's orders are sorted.
func ordersQuery(customer, order string, n int) (string, []any) {
	filter, args := "", []any{customer}
	if order != "" {
		filter, args = ` AND order_no = ?`, append(args, order)
	}
	return `SELECT order_no, min(invoice_date), max(invoice_date) FROM invoices
WHERE customer = ? AND deleted_at IS NULL` + filter + `
GROUP BY order_no ORDER BY max(invoice_date) DESC, order_no DESC LIMIT ?`, append(args, n)
}

// invoicesQuery selects the invoices of a customer's orders with their
// lines, an order's invoices oldest first.
func invoicesQuery(customer string, orders []string) (string, []any) {
	args := []any{customer}
	for _, o := range orders {
		args = append(args, o)
	}
	return `SELECT h.invoice, h.order_no, h.invoice_type, h.invoice_date,
  n.line_no, n.item, n.sku, n.quantity, n.unit_price, n.discount, n.tax, n.freight
FROM invoices h LEFT JOIN invoice_lines n ON n.invoice = h.invoice
WHERE h.customer = ? AND h.deleted_at IS NULL AND h.order_no IN (?` + strings.Repeat(", ?", len(orders)-1) + `)
ORDER BY h.order_no, h.invoice_date, h.invoice, n.line_no`, args
}

// customerQuery selects the live customer of a history query.
// Alternate numbers are compared without regard to case, like a search.
func customerQuery(q HistoryQuery) (string, []any) {
	if q.AltCustomer != "" {
		return `SELECT ` + customerCols + ` FROM customers
WHERE alt_customer <> '' AND lower(alt_customer) = ? AND deleted_at IS NULL ORDER BY customer LIMIT 2`, []any{fold(q.AltCustomer)}
	}
	return customerByNumber, []any{q.Customer}
}

// historyCustomer finds the live customer of a history query, or nil.
func historyCustomer(ctx context.Context, d *db.DB, q HistoryQuery) (*Customer, error) {
	query, args := customerQuery(q)
	found, err := db.QueryAll(ctx, d, func(s db.Scanner) (Customer, error) { return scanCustomer(s) }, query, args...)
	switch {
	case err != nil:
		return nil, fmt.Errorf("order history: %w", err)
	case len(found) == 0:
		return nil, nil
	case len(found) > 1:
		return nil, queryErr(input("alt_customer"), fmt.Sprintf(" %q is the alternate number of more than one customer (%s, %s, ...): give ",
			q.AltCustomer, found[0].Customer, found[1].Customer), input("customer"))
	}
	return &found[0], nil
}
