package export

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

// The Customer Engagement feed (issue 7) sends customers, items, sales and
// returns to a customer engagement system in batches. It has no triggers:
// every load stamps the rows it writes with a change sequence number
// (migration 0007), and each file kind of the feed keeps a watermark, the
// largest number it has sent. A run reads, per kind, the records changed
// after the watermark from one read snapshot of the database, writes them
// with the export file lifecycle (claim, temporary file, fsync, rename,
// complete) and moves the watermark in the transaction that makes the file
// complete; so every change is in exactly one complete file, also when a
// run dies (the next run finishes or abandons its file, as for any export).

// EngagementKinds are the file kinds of the engagement feed, in the order a
// run writes them.
var EngagementKinds = func() []string {
	names := make([]string, len(feedKinds))
	for i, fk := range feedKinds {
		names[i] = fk.name
	}
	return names
}()

// ErrNoFeedYet means a resend (--since) was asked for before every kind of
// the feed had its first feed, which sends everything anyway.
var ErrNoFeedYet = errors.New("the engagement feed has not run yet")

// window says which records a feed file holds: every live record on a
// kind's first feed, the records changed after the watermark on the next
// ones, or for a resend the records changed at or after since.
type window struct {
	first bool
	mark  int64
	since string
}

// feedKind is one file kind of the feed: its file format (kind) and the
// query of its records.
type feedKind struct {
	*kind
	// from is the FROM clause of the kind's records; where returns the
	// condition that selects a window's records and its arguments.
	from  string
	where func(w window) (string, []any)
	// records streams the records that match cond in key order.
	records func(ctx context.Context, q *sql.Conn, w window, cond string, args []any, emit func(node) error) error
}

var itemFeedAttrs = []string{"action", "item_number", "sku_code", "description", "sku_description", "item_class", "vendor_number",
	"status", "color", "size", "width", "upc", "retail_reference_number", "price", "cost"}

var invoiceFeedCSV = []csvCol{{"invoice_number", false, "invoice_number"}, {"order_number", false, "order_number"},
	{"customer_number", false, "customer_number"}, {"invoice_date", false, "invoice_date"},
	{"line", true, "line"}, {"item_number", true, "item_number"}, {"sku_code", true, "sku_code"}, {"quantity", true, "quantity"},
	{"unit_price", true, "unit_price"}, {"extended_price", true, "extended_price"}, {"discount", true, "discount"}, {"tax", true, "tax"},
	{"merchandise_total", false, "merchandise_total"}, {"discount_total", false, "discount_total"}, {"tax_total", false, "tax_total"},
	{"freight_total", false, "freight_total"}, {"invoice_total", false, "invoice_total"}}

var feedKinds = []*feedKind{
	{
		kind: &kind{name: "engagement_customers", msgType: "CECUSTOMERS", wrapper: "Customers", private: true, csv: flat(customerAttrs...)},
		from: "customers c",
		where: func(w window) (string, []any) {
			return w.pick("c.deleted_at IS NULL", "c.change_seq > ?", "c.updated_at >= ?")
		},
		records: func(ctx context.Context, q *sql.Conn, w window, cond string, args []any, emit func(node) error) error {
			return flatRecords(ctx, q, "Customer", customerCols(w.action("c")), `FROM customers c WHERE `+cond+`
ORDER BY c.customer`, customerAttrs, emit, args...)
		},
	},
	{
		kind: &kind{name: "engagement_items", msgType: "CEITEMS", wrapper: "Items", csv: flat(itemFeedAttrs...)},
		from: "skus k JOIN items i ON i.item = k.item",
		// A SKU changed, or a live SKU of an item whose item-level fields
		// changed (a load stamps the item then, not each of its SKUs).
		where: func(w window) (string, []any) {
			return w.pick("k.deleted_at IS NULL",
				"(k.change_seq > ? OR (i.change_seq > ? AND k.deleted_at IS NULL))",
				"(k.updated_at >= ? OR (i.updated_at >= ? AND k.deleted_at IS NULL))")
		},
		records: func(ctx context.Context, q *sql.Conn, w window, cond string, args []any, emit func(node) error) error {
			return itemFeedRecords(ctx, q, `SELECT `+w.action("k")+`, k.item, k.sku, i.description, k.sku_description, i.item_class,
  i.vendor, i.status, k.color, k.size, k.width, k.upc, k.retail_ref, k.price, k.cost
FROM skus k JOIN items i ON i.item = k.item WHERE `+cond+` ORDER BY k.item, k.sku`, emit, args...)
		},
	},
	invoiceFeed("engagement_sales", "CESALES", "Sales", "Sale", "I"),
	invoiceFeed("engagement_returns", "CERETURNS", "Returns", "Return", "C"),
}

// pick returns the condition of the window (first feed, after the
// watermark, resend since) and its argument.
func (w window) pick(first, after, since string) (string, []any) {
	switch {
	case w.since != "":
		return strings.ReplaceAll(since, "?", "?1"), []any{w.since}
	case w.first:
		return first, nil
	}
	return strings.ReplaceAll(after, "?", "?1"), []any{w.mark}
}

// action is the action of a record of table alias x (customers, skus):
// D for a tombstone, A when the record was added after the watermark (every
// record of a first feed), C otherwise.
func (w window) action(x string) string {
	if w.first {
		return fmt.Sprintf("CASE WHEN %s.deleted_at IS NOT NULL THEN 'D' ELSE 'A' END", x)
	}
	return fmt.Sprintf("CASE WHEN %[1]s.deleted_at IS NOT NULL THEN 'D' WHEN %[1]s.added_seq > %[2]d THEN 'A' ELSE 'C' END", x, w.mark)
}

// invoiceFeed is the feed of the invoices of one type: sales (I) or
// returns (C). An invoice goes out once, when it was added (its
// change_seq), or for a resend when it was loaded at or after since;
// deleted invoices are never sent.
func invoiceFeed(name, msgType, wrapper, element, typ string) *feedKind {
	return &feedKind{
		kind: &kind{name: name, msgType: msgType, wrapper: wrapper, private: true, csv: invoiceFeedCSV},
		from: "invoices h",
		where: func(w window) (string, []any) {
			cond, args := w.pick("true", "h.change_seq > ?", "h.created_at >= ?")
			return `h.deleted_at IS NULL AND h.invoice_type = '` + typ + `' AND ` + cond, args
		},
		records: func(ctx context.Context, q *sql.Conn, w window, cond string, args []any, emit func(node) error) error {
			return invoiceNodes(ctx, q, invoiceShape{element, "Lines", "Line"}, `SELECT '', h.invoice, h.order_no, h.customer, '',
  h.invoice_date, n.line_no, n.item, n.sku, n.quantity, n.unit_price, n.discount, n.tax, n.freight
FROM invoices h LEFT JOIN invoice_lines n ON n.invoice = h.invoice WHERE `+cond+` ORDER BY h.invoice, n.line_no`, emit, args...)
		},
	}
}

// itemFeedRecords emits one Item per SKU row of query.
func itemFeedRecords(ctx context.Context, q *sql.Conn, query string, emit func(node) error, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	vals := make([]string, len(itemFeedAttrs)-2)
	ptrs := make([]any, len(vals), len(itemFeedAttrs))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var price, cost sql.NullInt64
	ptrs = append(ptrs, &price, &cost)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		n := node{name: "Item", attrs: make([]attr, len(itemFeedAttrs))}
		for i, v := range vals {
			n.attrs[i] = attr{itemFeedAttrs[i], v}
		}
		n.attrs[len(vals)] = attr{"price", amount(price)}
		n.attrs[len(vals)+1] = attr{"cost", amount(cost)}
		if err := emit(n); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Engagement runs the Customer Engagement feed: for each of its file kinds
// it writes one file of the records changed since the kind's watermark (or,
// with o.Since, at or after that time) into o.Dir (default
// <outbox>/engagement) and moves the watermark with the file. A kind with
// nothing new writes no file.
func Engagement(ctx context.Context, d *db.DB, o Options) (*Result, error) {
	if o.Format != "" && o.Format != "xml" && o.Format != "csv" {
		return nil, fmt.Errorf("unknown format %q: want xml or csv", o.Format)
	}
	if o.Dir == "" {
		o.Dir = kindDir(o.Outbox, "engagement")
	}
	total := &Result{Kind: "engagement", DryRun: o.DryRun, Files: []File{}, Watermarks: map[string]int64{}}
	if o.Since != "" {
		var missing []string
		for _, k := range EngagementKinds {
			var n int
			err := d.QueryRowContext(ctx, `SELECT count(*) FROM feed_watermarks WHERE kind = ? AND change_seq IS NOT NULL`, k).Scan(&n)
			if err != nil {
				return total, db.Classify(err)
			}
			if n == 0 {
				missing = append(missing, k)
			}
		}
		if len(missing) > 0 {
			return total, fmt.Errorf("export engagement --since: %w for %s: run it once without --since (the first feed sends everything)",
				ErrNoFeedYet, strings.Join(missing, ", "))
		}
	}
	for _, fk := range feedKinds {
		res, err := feed(ctx, d, fk, o)
		if res != nil {
			total.Files = append(total.Files, res.Files...)
			total.Completed += res.Completed
			total.Abandoned += res.Abandoned
			total.Unfinished += res.Unfinished
			total.ReadyRecords += res.ReadyRecords
			for k, v := range res.Watermarks {
				total.Watermarks[k] = v
			}
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// feed writes the file of one kind of the feed, if it has anything new.
func feed(ctx context.Context, d *db.DB, fk *feedKind, o Options) (*Result, error) {
	o.defaults(fk.kind)
	conn, res, end, err := begin(ctx, d, fk.kind, &o)
	if err != nil {
		return res, err
	}
	defer end()
	res.Watermarks = map[string]int64{}
	if !o.DryRun {
		if err := openWatermark(ctx, conn, fk.name); err != nil {
			return res, err
		}
	}
	f, err := feedFile(ctx, d, conn, fk, &o)
	if f != nil {
		res.Files = append(res.Files, *f)
		if o.DryRun {
			res.ReadyRecords = f.Records
		}
	}
	if err != nil {
		return res, err
	}
	if mark, ok := watermark(ctx, conn, fk.name); ok {
		res.Watermarks[fk.name] = mark
	}
	return res, nil
}

// openWatermark makes sure the watermark row of kind exists before its
// feed reads: from then on loads keep deleted records as tombstones until
// the feed sends them.
//
// A writer under way on PostgreSQL may have decided without it, and
// removed a record outright (trigger.FeedInUse) that the feed's snapshot,
// taken before that writer commits, still sees and sends: its delete
// would never go out. Every such writer has taken a change number first,
// and holds the counter's row until it ends; a new watermark row commits
// only once it can lock that row, so the first snapshot begins after
// them, and every writer that takes a number later sees the row.
func openWatermark(ctx context.Context, conn *sql.Conn, kind string) error {
	err := db.WithTx(ctx, conn, true, func() error {
		res, err := conn.ExecContext(ctx, `INSERT INTO feed_watermarks(kind, updated_at) VALUES (?, ?) ON CONFLICT(kind) DO NOTHING`,
			kind, db.Now())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		return catalog.HoldChangeCounter(ctx, conn)
	})
	if err != nil {
		return fmt.Errorf("export %s: %w", kind, db.Classify(err))
	}
	return nil
}

// raiseWatermark moves the watermark of kind up to high without a file,
// when there is nothing to send up to high: the next feed is not a first
// feed, and tombstones up to high may go.
func raiseWatermark(ctx context.Context, conn *sql.Conn, kind string, high int64) error {
	err := db.WithTx(ctx, conn, true, func() error {
		_, err := conn.ExecContext(ctx, `UPDATE feed_watermarks SET change_seq = CASE WHEN change_seq >= ?1 THEN change_seq ELSE ?1 END,
  updated_at = ?2 WHERE kind = ?3`, high, db.Now(), kind)
		return err
	})
	if err != nil {
		return fmt.Errorf("export %s: move watermark: %w", kind, db.Classify(err))
	}
	return nil
}

// watermark reads the watermark of kind, for the result: ok is false when
// the kind has none.
func watermark(ctx context.Context, conn *sql.Conn, kind string) (mark int64, ok bool) {
	var m sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT change_seq FROM feed_watermarks WHERE kind = ?`, kind).Scan(&m); err == nil && m.Valid {
		return m.Int64, true
	}
	return 0, false
}

// feedFile reads the kind's new records from one snapshot of the database,
// on a connection of its own, and writes and delivers them as one file
// through conn. Counting and writing in the same snapshot makes the count
// of the envelope exact, and the change sequence read in it is the highest
// number of any row it sees: the new watermark.
func feedFile(ctx context.Context, d *db.DB, conn *sql.Conn, fk *feedKind, o *Options) (*File, error) {
	s, err := openSnapshot(ctx, d, fk.name)
	if err != nil {
		return nil, err
	}
	defer s.close()
	snap, endSnap, mark, high := s.conn, s.end, s.mark, s.high
	w := window{first: !mark.Valid, mark: mark.Int64, since: o.Since}
	cond, args := fk.where(w)
	var records int64
	if err := snap.QueryRowContext(ctx, `SELECT count(*) FROM `+fk.from+` WHERE `+cond, args...).Scan(&records); err != nil {
		return nil, fmt.Errorf("export %s: %w", fk.name, db.Classify(err))
	}
	if records == 0 {
		endSnap()
		if o.DryRun || o.Since != "" || (mark.Valid && mark.Int64 >= high) {
			return nil, nil
		}
		return nil, raiseWatermark(ctx, conn, fk.name, high)
	}
	if o.DryRun {
		files, err := planFiles(ctx, conn, fk.name, o, records, records)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", fk.name, db.Classify(err))
		}
		files[0].Kind = fk.name
		return &files[0], nil
	}
	if err := prepareDir(fk.kind, o.Dir); err != nil {
		return nil, err
	}
	// The file records the changes it covers; a resend covers none, so
	// completing it leaves the watermark.
	f, fileID, err := startFile(ctx, conn, fk.kind, o, func(fileID int64, _ string) (int64, int64, error) {
		if o.Since != "" {
			return records, 0, nil
		}
		_, err := conn.ExecContext(ctx, `UPDATE files SET change_to = ? WHERE id = ?`, high, fileID)
		return records, 0, err
	})
	if err != nil {
		return nil, err
	}
	f.Kind = fk.name
	wr, err := writeFile(fk.kind, o, f.Path, records, func(emit func(node) error) error {
		return fk.records(ctx, snap, w, cond, args, emit)
	})
	endSnap()
	if err := finish(ctx, conn, fk.name, fileID, &f, wr, err, "the next feed sends its records", o.Marker); err != nil {
		return nil, err
	}
	return &f, nil
}

// moveWatermark moves the watermark of an engagement file's kind up to the
// change sequence the file covers; other files cover none. It runs in the
// transaction that makes the file complete.
func moveWatermark(ctx context.Context, conn *sql.Conn, fileID int64) error {
	_, err := conn.ExecContext(ctx, `UPDATE feed_watermarks SET
  change_seq = CASE WHEN feed_watermarks.change_seq >= f.change_to THEN feed_watermarks.change_seq ELSE f.change_to END,
  file_id = f.id, updated_at = ?1
FROM files f WHERE f.id = ?2 AND f.change_to IS NOT NULL AND feed_watermarks.kind = f.kind`, db.Now(), fileID)
	return err
}

// ParseSince reads the time of a resend: an RFC 3339 timestamp (any
// offset; a missing one means UTC) or a date (midnight UTC), returned in
// the UTC layout of the stored timestamps.
func ParseSince(s string) (string, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(db.TimeLayout), nil
		}
	}
	return "", fmt.Errorf("%q is not a timestamp: want YYYY-MM-DDThh:mm:ssZ (or another RFC 3339 offset) or YYYY-MM-DD", s)
}

// snapshot is a read transaction on a connection of its own, with the
// watermark of a kind and the change counter as that snapshot sees them:
// the exports that send "what changed since the last file" (the
// engagement feed, partner inventory) read everything they send in it.
type snapshot struct {
	conn *sql.Conn
	mark sql.NullInt64 // the kind's watermark; NULL before its first file
	high int64         // the change counter: the highest change this snapshot sees
	inTx bool
}

// openSnapshot begins the snapshot of kind: a read transaction that never
// blocks a writer, whose statements all see the database as its first
// read found it.
//
// Every number of the change sequence is taken (catalog.NextChangeSeq) in
// the transaction that stamps it, under the lock of its sequences row,
// held until commit: a writer that takes a larger number commits after
// the one that took the smaller. So a snapshot that sees the counter at
// high sees every row stamped up to high and none above, and the
// watermark may move to high without skipping a row committed later.
func openSnapshot(ctx context.Context, d *db.DB, kind string) (*snapshot, error) {
	s, err := beginSnapshot(ctx, d)
	if err != nil {
		return nil, err
	}
	err = s.conn.QueryRowContext(ctx, `SELECT (SELECT change_seq FROM feed_watermarks WHERE kind = ?),
  coalesce((SELECT last FROM sequences WHERE kind = ?), 0)`, kind, catalog.ChangeCounter).Scan(&s.mark, &s.high)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("export %s: %w", kind, db.Classify(err))
	}
	return s, nil
}

// beginSnapshot begins a read transaction on a connection of its own
// whose statements all see the database as its first read found it.
func beginSnapshot(ctx context.Context, d *db.DB) (*snapshot, error) {
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	if _, err := conn.ExecContext(ctx, db.SnapshotStatement(conn)); err != nil {
		conn.Close()
		return nil, db.Classify(err)
	}
	return &snapshot{conn: conn, inTx: true}, nil
}

// end ends the read transaction (the writes that follow need no snapshot).
func (s *snapshot) end() {
	if s.inTx {
		s.conn.ExecContext(context.Background(), "ROLLBACK")
		s.inTx = false
	}
}

// close ends the transaction and gives the connection back.
func (s *snapshot) close() {
	s.end()
	s.conn.Close()
}
