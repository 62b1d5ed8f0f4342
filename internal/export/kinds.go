package export

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

// kind is one export: its trigger file code, message type, XML wrapper,
// CSV columns and the query that yields its records.
type kind struct {
	name    string
	code    string
	msgType string
	// oracleType is the type of each Message in Oracle's framing: the
	// name of Oracle's message, in Oracle's spelling.
	oracleType string
	wrapper    string
	// private files carry customer data.
	private bool
	csv     []csvCol
	// records streams the records of the triggers of set in key order.
	records func(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error
}

// Kinds lists the export kinds that run from triggers.
var Kinds = []string{"items", "vendors", "invoices", "customers", "inventory"}

var kinds = map[string]*kind{
	"items": {name: "items", code: trigger.CodeItem, msgType: "CWITEMOUT", oracleType: "CWItemOut", wrapper: "Items",
		csv: []csvCol{{"action", true, "action"}, {"item_number", false, "item_number"}, {"description", false, "description"},
			{"item_class", false, "item_class"}, {"vendor_number", false, "vendor_number"}, {"status", false, "status"},
			{"sku_code", true, "sku_code"}, {"sku_description", true, "description"}, {"color", true, "color"}, {"size", true, "size"},
			{"width", true, "width"}, {"upc", true, "upc"}, {"retail_reference_number", true, "retail_reference_number"},
			{"price", true, "price"}, {"cost", true, "cost"}},
		records: itemRecords},
	"vendors": {name: "vendors", code: trigger.CodeVendor, msgType: "CWVENDOROUT", oracleType: "CWVendorOut", wrapper: "Vendors",
		csv: flat("action", "vendor_number", "name", "address1", "address2", "city", "state", "postal_code", "country", "contact", "email", "phone"),
		records: func(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error {
			return flatRecords(ctx, q, "Vendor", []string{"t.capture", "v.vendor", "v.name", "v.address1", "v.address2", "v.city",
				"v.state", "v.postal_code", "v.country", "v.contact", "v.email", "v.phone"}, `FROM triggers t JOIN vendors v ON v.vendor = t.record_key
WHERE `+set.where("t")+` ORDER BY t.record_key`, []string{"action", "vendor_number", "name", "address1", "address2", "city", "state",
				"postal_code", "country", "contact", "email", "phone"}, emit)
		}},
	"customers": {name: "customers", code: trigger.CodeCustomer, msgType: "CWCUSTOMERDOWNLOAD", oracleType: "CWCustomerDownload", wrapper: "Customers",
		private: true, csv: flat(customerAttrs...),
		records: func(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error {
			return flatRecords(ctx, q, "Customer", customerCols("t.capture"), `FROM triggers t
JOIN customers c ON c.customer = t.record_key WHERE `+set.where("t")+` ORDER BY t.record_key`, customerAttrs, emit)
		}},
	"invoices": {name: "invoices", code: trigger.CodeInvoice, msgType: "CWINVOICEOUT", oracleType: "CWInvoiceOut", wrapper: "Invoices", private: true,
		csv: append(flat("action", "invoice_number", "order_number", "customer_number", "invoice_type", "invoice_date",
			"merchandise_total", "discount_total", "tax_total", "freight_total", "invoice_total"),
			csvCol{"line", true, "line"}, csvCol{"item_number", true, "item_number"}, csvCol{"sku_code", true, "sku_code"},
			csvCol{"quantity", true, "quantity"}, csvCol{"unit_price", true, "unit_price"}, csvCol{"extended_price", true, "extended_price"},
			csvCol{"discount", true, "discount"}, csvCol{"tax", true, "tax"}),
		records: invoiceRecords},
	"inventory": {name: "inventory", code: trigger.CodeInventory, msgType: "CWINVENTORYDOWNLOAD", oracleType: "CWInventoryDownload", wrapper: "InventoryItems",
		csv: []csvCol{{"action", false, "action"}, {"item_number", false, "item_number"}, {"sku_code", false, "sku_code"},
			{"warehouse", true, "warehouse"}, {"on_hand", true, "on_hand"}, {"reserved", true, "reserved"}, {"available", true, "available"}},
		records: inventoryRecords},
}

// customerAttrs and customerCols keep the customer record in one place for
// the trigger export and the mass download.
var customerAttrs = []string{"action", "customer_number", "alt_customer_number", "customer_class", "first_name", "last_name",
	"company_name", "address1", "address2", "city", "state", "postal_code", "country", "email", "phone", "email_opt_in"}

// customerCols are the columns of the customer record of customers c,
// action the expression of its action.
func customerCols(action string) []string {
	return []string{action, "c.customer", "c.alt_customer", "c.customer_class", "c.first_name", "c.last_name", "c.company_name",
		"c.address1", "c.address2", "c.city", "c.state", "c.postal_code", "c.country", "c.email", "c.phone",
		"CASE c.email_opt_in WHEN 1 THEN 'Y' ELSE 'N' END"}
}

// massCustomers is the mass customer download: the customer record of
// every sold-to customer of the chosen classes, all with action A.
var massCustomers = &kind{name: "mass_customers", msgType: "CWCUSTOMERDOWNLOAD", oracleType: "CWCustomerDownload", wrapper: "Customers", private: true,
	csv: flat(customerAttrs...)}

func flat(names ...string) []csvCol {
	cols := make([]csvCol, len(names))
	for i, n := range names {
		cols[i] = csvCol{header: n, attr: n}
	}
	return cols
}

// flatRecords emits one element per row of SELECT cols from, its
// attributes names, the values of cols (rowValues).
func flatRecords(ctx context.Context, q *sql.Conn, element string, cols []string, from string, names []string, emit func(node) error, args ...any) error {
	n := node{name: element, attrs: make([]attr, len(names))}
	return rowValues(ctx, q, "", cols, from, args, func(vals []string) error {
		for i, name := range names {
			n.attrs[i] = attr{name, vals[i]}
		}
		return emit(n)
	})
}

// rowValues calls row with the values of each row of with + SELECT cols from,
// NULL as "", other values as their text; vals is reused from row to row.
//
// The database joins the values of a row into one, separated by the unit
// separator (US, 0x1f), and the values are substrings of it: read one
// value per column, each became a string of its own in the driver, the
// most of the CPU of the read. 1,000,000 records, CSV, CPU seconds:
// export mass-customers 3.5-3.6 before, 2.2 after, as much as the sqlite3
// shell's dump (2.2-2.4); on PostgreSQL posbridge's 1.6 before, 0.9 after,
// the server's unchanged at about 1; export items 7.2-7.7 before, 6.4-6.6
// after. Loads refuse a US in a value (format.CheckText); one put in
// behind their back makes a row split into too many values, and from that
// row on the values are read one per column.
func rowValues(ctx context.Context, q *sql.Conn, with string, cols []string, from string, args []any, row func(vals []string) error) error {
	sep, text := "char(31)", "coalesce(%s, '')"
	if db.DialectOf(q) == db.Postgres {
		sep, text = "chr(31)", "coalesce((%s)::text, '')"
	}
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = fmt.Sprintf(text, c)
	}
	rows, err := q.QueryContext(ctx, with+`SELECT `+strings.Join(exprs, " || "+sep+" || ")+` `+from, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]string, len(cols))
	var line string
	var done int64
	for rows.Next() {
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if strings.Count(line, "\x1f") != len(cols)-1 {
			rows.Close()
			return columnValues(ctx, q, `SELECT `+strings.Join(cols, ", ")+` `+from, args, vals, done, row)
		}
		rest := line
		for i := range vals[:len(vals)-1] {
			j := strings.IndexByte(rest, 0x1f)
			vals[i], rest = rest[:j], rest[j+1:]
		}
		vals[len(vals)-1] = rest
		if err := row(vals); err != nil {
			return err
		}
		done++
	}
	return rows.Err()
}

// columnValues is rowValues after the first skip rows of query, scanning
// one value per column.
func columnValues(ctx context.Context, q *sql.Conn, query string, args []any, vals []string, skip int64, row func(vals []string) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	ns := make([]sql.NullString, len(vals))
	ptrs := make([]any, len(vals))
	for i := range ns {
		ptrs[i] = &ns[i]
	}
	for ; rows.Next(); skip-- {
		if skip > 0 {
			continue
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i := range ns {
			vals[i] = ns[i].String
		}
		if err := row(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

func amount(v sql.NullInt64) string {
	if !v.Valid {
		return ""
	}
	return format.FormatAmount(v.Int64)
}

// itemRecords emits each item of the file with all its live SKUs, plus the
// deleted SKUs whose trigger is in the file (a SKU deleted after its
// change was claimed still goes out, with its last data).
func itemRecords(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error {
	// One item's node, SKUs and their attributes at a time, the storage
	// reused from item to item (emit keeps none of it).
	var cur node
	var skuAttrs []attr
	allAdded, deleted := true, false
	flush := func() error {
		if cur.name == "" {
			return nil
		}
		action := trigger.Changed
		switch {
		case deleted:
			action = trigger.Deleted
		case allAdded:
			action = trigger.Added
		}
		cur.attrs[0].value = action
		err := emit(cur)
		cur.name, cur.kids, skuAttrs = "", cur.kids[:0], skuAttrs[:0]
		return err
	}
	// Each SKU's trigger in the file, if it has one. A file's claimed
	// triggers are found by its id alone (triggers_file), so on SQLite,
	// whose joins are nested loops, each SKU's lookup read all of the
	// file's: 10,000 SKU triggers took 12.7 s to read, 1,000,000 would
	// take hours (a read after the claim: a file of fewer than besideMin,
	// or one the read beside failed). Copied out first, they are looked
	// up by record on an index SQLite makes for the copy (20 ms). The
	// claimable ones are found by record through triggers_pending:
	// copied, 1,000,000 took 0.3 s more.
	with, withTrigger := "", `triggers t ON `+set.where("t")+` AND`
	if set.byFile {
		with = `WITH file_triggers AS MATERIALIZED (SELECT t.record_key, t.sub_key, t.capture FROM triggers t WHERE ` + set.where("t") + `) `
		withTrigger = `file_triggers t ON`
	}
	err := rowValues(ctx, q, with, []string{"i.item", "i.description", "i.item_class", "i.vendor", "i.status",
		"CASE WHEN i.deleted_at IS NULL THEN '' ELSE 'D' END", "k.sku", "k.sku_description", "k.color", "k.size", "k.width",
		"k.upc", "k.retail_ref", "k.price", "k.cost", "t.capture"}, `FROM items i
JOIN skus k ON k.item = i.item
LEFT JOIN `+withTrigger+` t.record_key = k.item AND t.sub_key = k.sku
WHERE i.item IN (SELECT f.record_key FROM triggers f WHERE `+set.where("f")+`) AND (k.deleted_at IS NULL OR t.capture IS NOT NULL)
ORDER BY i.item, k.sku`, nil, func(v []string) error {
		item, capture := v[0], v[15]
		if cur.name == "" || cur.attrs[1].value != item {
			if err := flush(); err != nil {
				return err
			}
			cur.name, cur.wrap = "Item", "SKUs"
			cur.attrs = append(cur.attrs[:0], attr{"action", ""}, attr{"item_number", item}, attr{"description", v[1]},
				attr{"item_class", v[2]}, attr{"vendor_number", v[3]}, attr{"status", v[4]})
			allAdded, deleted = true, v[5] != ""
		}
		if capture != trigger.Added {
			allAdded = false
		}
		price, err := amountText(v[13])
		if err != nil {
			return fmt.Errorf("item %s SKU %s: price: %w", item, v[6], err)
		}
		cost, err := amountText(v[14])
		if err != nil {
			return fmt.Errorf("item %s SKU %s: cost: %w", item, v[6], err)
		}
		// A SKU's attributes are a window of skuAttrs; when it grows, the
		// SKUs before keep theirs in the old array.
		at := len(skuAttrs)
		skuAttrs = append(skuAttrs, attr{"action", capture}, attr{"sku_code", v[6]}, attr{"description", v[7]},
			attr{"color", v[8]}, attr{"size", v[9]}, attr{"width", v[10]}, attr{"upc", v[11]}, attr{"retail_reference_number", v[12]},
			attr{"price", price}, attr{"cost", cost})
		cur.kids = append(cur.kids, node{name: "SKU", attrs: skuAttrs[at:len(skuAttrs):len(skuAttrs)]})
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// amountText is amount of an integer read as its text.
func amountText(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", err
	}
	return format.FormatAmount(n), nil
}

// invoiceShape names the elements of an invoice record: the header, the
// wrapper of its lines, and a line.
type invoiceShape struct{ header, lines, line string }

func invoiceRecords(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error {
	return invoiceNodes(ctx, q, invoiceShape{"InvoiceHeader", "InvoiceDetails", "InvoiceDetail"}, `SELECT t.capture, h.invoice, h.order_no,
  h.customer, h.invoice_type, h.invoice_date, n.line_no, n.item, n.sku, n.quantity, n.unit_price, n.discount, n.tax, n.freight
FROM triggers t JOIN invoices h ON h.invoice = t.record_key LEFT JOIN invoice_lines n ON n.invoice = h.invoice
WHERE `+set.where("t")+` ORDER BY t.record_key, n.line_no`, emit)
}

// invoiceNodes emits one record per invoice of query, which yields the
// action, the header and its lines in invoice and line order; the totals
// are summed from the lines. An empty action or invoice type is left out.
func invoiceNodes(ctx context.Context, q *sql.Conn, shape invoiceShape, query string, emit func(node) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var cur *node
	var sum catalog.InvoiceTotals
	flush := func() error {
		if cur == nil {
			return nil
		}
		cur.attrs = append(cur.attrs, attr{"merchandise_total", format.FormatAmount(sum.Merchandise)},
			attr{"discount_total", format.FormatAmount(sum.Discount)}, attr{"tax_total", format.FormatAmount(sum.Tax)},
			attr{"freight_total", format.FormatAmount(sum.Freight)}, attr{"invoice_total", format.FormatAmount(sum.Total())})
		n := *cur
		cur = nil
		return emit(n)
	}
	for rows.Next() {
		var capture, invoice, order, customer, typ, date string
		var line, qty sql.NullInt64
		var item, sku sql.NullString
		var price, d, tx, fr sql.NullInt64
		if err := rows.Scan(&capture, &invoice, &order, &customer, &typ, &date, &line, &item, &sku, &qty, &price, &d, &tx, &fr); err != nil {
			return err
		}
		if cur == nil || cur.get("invoice_number") != invoice {
			if err := flush(); err != nil {
				return err
			}
			cur = &node{name: shape.header, wrap: shape.lines, attrs: []attr{{"action", capture}, {"invoice_number", invoice},
				{"order_number", order}, {"customer_number", customer}, {"invoice_type", typ}, {"invoice_date", date}}}
			sum = catalog.InvoiceTotals{}
		}
		if !line.Valid {
			continue
		}
		ext, err := sum.AddLine(qty.Int64, price.Int64, d.Int64, tx.Int64, fr.Int64)
		if err != nil {
			return fmt.Errorf("invoice %s line %d: %w", invoice, line.Int64, err)
		}
		cur.kids = append(cur.kids, node{name: shape.line, attrs: []attr{{"line", strconv.FormatInt(line.Int64, 10)},
			{"item_number", item.String}, {"sku_code", sku.String}, {"quantity", strconv.FormatInt(qty.Int64, 10)},
			{"unit_price", amount(price)}, {"extended_price", format.FormatAmount(ext)}, {"discount", amount(d)}, {"tax", amount(tx)}}})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

func inventoryRecords(ctx context.Context, q *sql.Conn, set triggerSet, o *Options, emit func(node) error) error {
	allocatable := ""
	if o.ExcludeNonAllocatable {
		allocatable = ` AND v.warehouse IN (SELECT warehouse FROM warehouses WHERE allocatable = 1)`
	}
	// Locations are summed here rather than with GROUP BY, which would sort
	// every row: the trigger index and the inventory key give the order.
	rows, err := q.QueryContext(ctx, `SELECT t.capture, t.record_key, t.sub_key, v.warehouse, v.on_hand, v.reserved
FROM triggers t LEFT JOIN inventory v ON v.item = t.record_key AND v.sku = t.sub_key`+allocatable+`
WHERE `+set.where("t")+` ORDER BY t.record_key, t.sub_key, v.warehouse`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var cur *node
	var sums [][2]int64 // on hand and reserved per warehouse of cur
	flush := func() error {
		if cur == nil {
			return nil
		}
		for i := range cur.kids {
			w := &cur.kids[i]
			avail, err := format.AddQuantity(sums[i][0], -sums[i][1])
			if err != nil {
				return fmt.Errorf("stock of %s/%s in %s: available: %w", cur.get("item_number"), cur.get("sku_code"), w.attrs[0].value, err)
			}
			w.attrs = []attr{{"warehouse", w.attrs[0].value}, {"on_hand", strconv.FormatInt(sums[i][0], 10)},
				{"reserved", strconv.FormatInt(sums[i][1], 10)}, {"available", strconv.FormatInt(avail, 10)}}
		}
		n := *cur
		cur, sums = nil, sums[:0]
		return emit(n)
	}
	for rows.Next() {
		var capture, item, sku string
		var wh sql.NullString
		var onHand, reserved sql.NullInt64
		if err := rows.Scan(&capture, &item, &sku, &wh, &onHand, &reserved); err != nil {
			return err
		}
		if cur == nil || cur.get("item_number") != item || cur.get("sku_code") != sku {
			if err := flush(); err != nil {
				return err
			}
			cur = &node{name: "InventoryItem", attrs: []attr{{"action", capture}, {"item_number", item}, {"sku_code", sku}}}
		}
		if !wh.Valid {
			continue
		}
		n := len(cur.kids)
		if n == 0 || cur.kids[n-1].get("warehouse") != wh.String {
			cur.kids = append(cur.kids, node{name: "Warehouse", attrs: []attr{{"warehouse", wh.String}}})
			sums = append(sums[:n], [2]int64{})
			n++
		}
		// The stock of a warehouse is a quantity like the stock of one
		// location (docs/formats.md, "Numbers").
		var err error
		if sums[n-1][0], err = format.AddQuantity(sums[n-1][0], onHand.Int64); err == nil {
			sums[n-1][1], err = format.AddQuantity(sums[n-1][1], reserved.Int64)
		}
		if err != nil {
			return fmt.Errorf("stock of %s/%s in %s: %w", item, sku, wh.String, err)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}
