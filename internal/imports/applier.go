package imports

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

type stockKey struct{ item, sku, warehouse, location string }

type skuKey struct{ item, sku string }

// balance is the stock of one item/SKU, warehouse and location as the
// transactions of a file change it; written back when the file is done.
type balance struct {
	onHand, reserved, threshold int64
	exists, dirty               bool
}

// applier applies the transactions of one file, in order, on balances it
// reads from the database on first use.
type applier struct {
	ctx    context.Context
	conn   *sql.Conn
	fileID int64
	o      *Options
	now    string

	balances map[stockKey]*balance
	known    map[skuKey]bool
	byUPC    map[string]*skuKey
	byRef    map[string]*skuKey
	whs      map[string]bool
	hadStock map[skuKey]bool
	events   map[skuKey]string

	stmts   map[string]*sql.Stmt
	history []any
	histAll *sql.Stmt
	// copyHistory writes the history by COPY (PostgreSQL).
	copyHistory bool
}

// historyCols are the history values bound per transaction; the file id
// and the time are the same for a whole file and go in as literals.
const historyCols = 20

// historyPerStmt rows go into one INSERT of the history on SQLite,
// historyPerCopy into one COPY on PostgreSQL.
const (
	historyPerStmt = 100
	historyPerCopy = 10000
)

func newApplier(ctx context.Context, conn *sql.Conn, fileID int64, o *Options) (*applier, error) {
	a := &applier{ctx: ctx, conn: conn, fileID: fileID, o: o, now: db.Now(),
		balances: map[stockKey]*balance{}, known: map[skuKey]bool{}, byUPC: map[string]*skuKey{}, byRef: map[string]*skuKey{},
		whs: map[string]bool{}, hadStock: map[skuKey]bool{}, events: map[skuKey]string{}, stmts: map[string]*sql.Stmt{},
		copyHistory: db.DialectOf(conn) == db.Postgres}
	queries := map[string]string{
		"upc":       `SELECT item, sku FROM skus WHERE upc = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"ref":       `SELECT item, sku FROM skus WHERE retail_ref = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"warehouse": `SELECT 1 FROM warehouses WHERE warehouse = ?`,
		// A SKU's row, with its stock rows if it has any.
		"stock": `SELECT v.warehouse, v.location, v.on_hand, v.reserved, coalesce(v.threshold, 0)
FROM skus k LEFT JOIN inventory v ON v.item = k.item AND v.sku = k.sku WHERE k.item = ? AND k.sku = ? AND k.deleted_at IS NULL`,
	}
	for name, q := range queries {
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("prepare %s: %w", name, err)
		}
		a.stmts[name] = st
	}
	return a, nil
}

func (a *applier) close() {
	for _, st := range a.stmts {
		st.Close()
	}
	if a.histAll != nil {
		a.histAll.Close()
	}
}

// fail marks a database error, which fails the whole file.
func fail(err error) error { return &fatalError{err: db.Classify(err)} }

// resolve finds the item/SKU of a record: item and sku, else the UPC, else
// the retail reference.
func (a *applier) resolve(item, sku, upc, ref string) (skuKey, error) {
	if item != "" {
		k := skuKey{item, sku}
		ok, seen := a.known[k]
		if !seen {
			// A SKU whose stock was read (found by its UPC) exists; its
			// balances may have changed since and must not be read again.
			_, ok = a.hadStock[k]
			if !ok {
				var err error
				if ok, err = a.readStock(k); err != nil {
					return k, err
				}
			}
			a.known[k] = ok
		}
		if !ok {
			if sku == "" {
				return k, fmt.Errorf("unknown item %s (without a SKU)", item)
			}
			return k, fmt.Errorf("unknown item/SKU %s/%s", item, sku)
		}
		return k, nil
	}
	if upc != "" {
		return a.lookup(a.byUPC, "upc", "UPC", upc)
	}
	return a.lookup(a.byRef, "ref", "retail reference", ref)
}

func (a *applier) lookup(cache map[string]*skuKey, stmt, what, v string) (skuKey, error) {
	k, seen := cache[v]
	if !seen {
		rows, err := a.stmts[stmt].QueryContext(a.ctx, v)
		if err != nil {
			return skuKey{}, fail(err)
		}
		var found []skuKey
		for rows.Next() {
			var s skuKey
			if err := rows.Scan(&s.item, &s.sku); err != nil {
				rows.Close()
				return skuKey{}, fail(err)
			}
			found = append(found, s)
		}
		rows.Close()
		switch len(found) {
		case 1:
			k = &found[0]
		case 0:
			k = nil
		default:
			k = &skuKey{} // ambiguous
		}
		cache[v] = k
	}
	switch {
	case k == nil:
		return skuKey{}, fmt.Errorf("unknown %s %s", what, v)
	case k.item == "":
		return skuKey{}, fmt.Errorf("%s %s belongs to more than one item/SKU: give item and sku", what, v)
	}
	return *k, nil
}

func (a *applier) warehouse(w string) error {
	ok, seen := a.whs[w]
	if !seen {
		err := a.stmts["warehouse"].QueryRowContext(a.ctx, w).Scan(new(int))
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		ok = err == nil
		a.whs[w] = ok
	}
	if !ok {
		return fmt.Errorf("unknown warehouse %s", w)
	}
	return nil
}

// balance is the balance of k, whose SKU exists.
func (a *applier) balance(k stockKey) (*balance, error) {
	sk := skuKey{k.item, k.sku}
	if _, read := a.hadStock[sk]; !read {
		if _, err := a.readStock(sk); err != nil {
			return nil, err
		}
	}
	b, ok := a.balances[k]
	if !ok {
		b = &balance{}
		a.balances[k] = b
	}
	return b, nil
}

// readStock reads the balances of all the stock rows of SKU k at once, and
// says whether the SKU exists. It runs once per SKU (hadStock says it
// did): one round trip per SKU rather than one per warehouse and location,
// which on PostgreSQL is what an import of many rows spends its time on.
// Nothing of the file is written before finish, so what it reads is the
// stock as it was before the file.
func (a *applier) readStock(k skuKey) (exists bool, err error) {
	rows, err := a.stmts["stock"].QueryContext(a.ctx, k.item, k.sku)
	if err != nil {
		return false, fail(err)
	}
	defer rows.Close()
	stocked := false
	for rows.Next() {
		exists = true
		var warehouse, location sql.NullString
		var onHand, reserved sql.NullInt64
		var threshold int64
		if err := rows.Scan(&warehouse, &location, &onHand, &reserved, &threshold); err != nil {
			return false, fail(err)
		}
		if !warehouse.Valid {
			continue // the SKU without stock rows
		}
		stocked = true
		a.balances[stockKey{k.item, k.sku, warehouse.String, location.String}] = &balance{
			onHand: onHand.Int64, reserved: reserved.Int64, threshold: threshold, exists: true}
	}
	if err := rows.Err(); err != nil {
		return false, fail(err)
	}
	a.hadStock[k] = stocked
	return exists, nil
}

// change is one side of a transaction: a balance and its new on hand.
type change struct {
	key           stockKey
	b             *balance
	before, after int64
}

// apply checks a transaction against the state and applies it to the
// balances and the history, or returns why it is rejected.
func (a *applier) apply(t txn) error {
	r := t.row
	from, err := a.resolve(r.Item, r.SKU, r.UPC, r.RetailRef)
	if err != nil {
		return err
	}
	if err := a.warehouse(r.Warehouse); err != nil {
		return err
	}
	src := stockKey{from.item, from.sku, r.Warehouse, r.Location}
	var changes []change
	add := func(k stockKey, delta int64, set bool) error {
		b, err := a.balance(k)
		if err != nil {
			return err
		}
		c := change{key: k, b: b, before: b.onHand, after: delta}
		if !set {
			var err error
			if c.after, err = format.AddQuantity(b.onHand, delta); err != nil {
				return fmt.Errorf("on hand of %s/%s in %s %s (now %d) %+d: %w", k.item, k.sku, k.warehouse, loc(k.location), b.onHand, delta, err)
			}
		}
		// Available stock is a quantity too (docs/formats.md, "Numbers").
		if _, err := format.AddQuantity(c.after, -b.reserved); err != nil {
			return fmt.Errorf("available stock of %s/%s in %s %s (on hand %d less reserved %d): %w",
				k.item, k.sku, k.warehouse, loc(k.location), c.after, b.reserved, err)
		}
		changes = append(changes, c)
		return nil
	}
	switch t.effect {
	case EffectAdjust:
		err = add(src, t.qty, false)
	case EffectOverlay:
		err = add(src, t.qty, true)
	case EffectReceipt:
		err = add(src, t.qty, false)
	case EffectReturn, EffectNegative, EffectSale:
		err = add(src, -t.qty, false)
	case EffectTransfer:
		dst := stockKey{from.item, from.sku, or(r.ToWarehouse, r.Warehouse), r.ToLocation}
		if err = a.warehouse(dst.warehouse); err == nil {
			if err = add(src, -t.qty, false); err == nil {
				err = add(dst, t.qty, false)
			}
		}
	case EffectItem:
		var to skuKey
		if to, err = a.resolve(r.ToItem, r.ToSKU, "", ""); err != nil {
			return fmt.Errorf("to side: %w", err)
		}
		dst := stockKey{to.item, to.sku, or(r.ToWarehouse, r.Warehouse), or(r.ToLocation, r.Location)}
		if err = a.warehouse(dst.warehouse); err == nil {
			if err = add(src, -t.qty, false); err == nil {
				err = add(dst, t.qty, false)
			}
		}
	default:
		err = fmt.Errorf("transaction code %s has no effect %q", t.code, t.effect)
	}
	if err != nil {
		return err
	}
	for _, c := range changes {
		if c.after < 0 && c.after < c.before && !a.o.AllowNegative {
			return fmt.Errorf("on hand of %s/%s in %s %s would be %d (now %d): negative stock is not allowed (import.allow_negative_on_hand)",
				c.key.item, c.key.sku, c.key.warehouse, loc(c.key.location), c.after, c.before)
		}
	}
	for _, c := range changes {
		if err := a.capture(c); err != nil {
			return err
		}
		c.b.onHand, c.b.dirty = c.after, true
	}
	h := []any{t.line, t.code, t.effect, src.item, src.sku, src.warehouse, src.location, t.qty,
		changes[0].before, changes[0].after, "", "", "", "", nil, nil, r.Reason, r.Reference, r.Date, r.User}
	if len(changes) == 2 {
		d := changes[1]
		h[10], h[11], h[12], h[13], h[14], h[15] = d.key.item, d.key.sku, d.key.warehouse, d.key.location, d.before, d.after
	}
	return a.addHistory(h)
}

func loc(l string) string {
	if l == "" {
		return "(no location)"
	}
	return "location " + l
}

// capture applies the inventory threshold rule to one change.
func (a *applier) capture(c change) error {
	avail := func(onHand int64) int64 { return onHand - c.b.reserved }
	if c.b.exists && !trigger.InventoryRule(avail(c.before), avail(c.after), c.b.threshold) {
		return nil
	}
	k := skuKey{c.key.item, c.key.sku}
	if a.events[k] != "" {
		return nil
	}
	// balance read the SKU's stock rows before any change of it.
	a.events[k] = trigger.Changed
	if !a.hadStock[k] {
		a.events[k] = trigger.Added
	}
	return nil
}

// insertRows runs head VALUES row, row, ... tail for the values vals,
// width of them a row, many rows a statement: one round trip for hundreds
// of rows. row is the placeholders of one row (with literals of its own).
func (a *applier) insertRows(head, row string, width int, vals []any, tail string) error {
	// 500 rows of up to 5 values stay under SQLite's 32766 parameters.
	const perStmt = 500
	for len(vals) > 0 {
		n := min(perStmt, len(vals)/width)
		q := head + row + strings.Repeat(", "+row, n-1) + tail
		if _, err := a.conn.ExecContext(a.ctx, q, vals[:n*width]...); err != nil {
			return err
		}
		vals = vals[n*width:]
	}
	return nil
}

func (a *applier) historySQL(rows int) string {
	// A transaction that comes from no file (a return) has no file id.
	file := "NULL"
	if a.fileID > 0 {
		file = fmt.Sprint(a.fileID)
	}
	one := fmt.Sprintf("(%s, %s, '%s')", file, strings.TrimSuffix(strings.Repeat("?,", historyCols), ","), a.now)
	return `INSERT INTO inventory_txns(file_id, line, code, effect, item, sku, warehouse, location, quantity,
  before_on_hand, after_on_hand, to_item, to_sku, to_warehouse, to_location, to_before, to_after,
  reason, reference, txn_date, "user", applied_at) VALUES ` + strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

func (a *applier) addHistory(h []any) error {
	a.history = append(a.history, h...)
	per := historyPerStmt
	if a.copyHistory {
		per = historyPerCopy
	}
	if len(a.history) < historyCols*per {
		return nil
	}
	if err := a.flushHistory(); err != nil {
		return fail(err)
	}
	return nil
}

// flushHistory writes the history rows kept: on PostgreSQL by COPY, which
// takes thousands of rows in one stream; on SQLite, where a statement
// costs no round trip, by multi-row INSERTs.
func (a *applier) flushHistory() error {
	n := len(a.history) / historyCols
	var err error
	switch {
	case n == 0:
		return nil
	case a.copyHistory:
		err = a.copyHistoryRows(n)
	case n == historyPerStmt:
		if a.histAll == nil {
			if a.histAll, err = a.conn.PrepareContext(a.ctx, a.historySQL(historyPerStmt)); err != nil {
				return db.Classify(err)
			}
		}
		_, err = a.histAll.ExecContext(a.ctx, a.history...)
	default:
		_, err = a.conn.ExecContext(a.ctx, a.historySQL(n), a.history...)
	}
	if err != nil {
		return db.Classify(err)
	}
	a.history = a.history[:0]
	return nil
}

// historyColumns are the columns of inventory_txns that COPY fills: the
// file id, the historyCols values of a transaction and the time applied.
var historyColumns = []string{"file_id", "line", "code", "effect", "item", "sku", "warehouse", "location", "quantity",
	"before_on_hand", "after_on_hand", "to_item", "to_sku", "to_warehouse", "to_location", "to_before", "to_after",
	"reason", "reference", "txn_date", "user", "applied_at"}

// copyHistoryRows copies the n history rows kept into inventory_txns.
func (a *applier) copyHistoryRows(n int) error {
	var file any // a transaction from no file (a return) has none
	if a.fileID > 0 {
		file = a.fileID
	}
	rows := make([][]any, n)
	for i := range rows {
		row := make([]any, 0, historyCols+2)
		row = append(row, file)
		row = append(row, a.history[i*historyCols:(i+1)*historyCols]...)
		rows[i] = append(row, a.now)
	}
	return db.PgxConn(a.conn, func(c *pgx.Conn) error {
		_, err := c.CopyFrom(a.ctx, pgx.Identifier{"inventory_txns"}, historyColumns, pgx.CopyFromRows(rows))
		return err
	})
}

// finish writes the rest of the history, the changed balances and the
// inventory triggers, and returns how many triggers were created or folded.
func (a *applier) finish() (int64, error) {
	if err := a.flushHistory(); err != nil {
		return 0, err
	}
	// The stock rows written carry the transaction's change sequence,
	// which the partner inventory exports read. They go in key order, so
	// that two imports writing the same rows at once on PostgreSQL take
	// their row locks in the same order and do not deadlock.
	var dirty []stockKey
	for k, b := range a.balances {
		if b.dirty {
			dirty = append(dirty, k)
		}
	}
	slices.SortFunc(dirty, func(x, y stockKey) int {
		return cmp.Or(cmp.Compare(x.item, y.item), cmp.Compare(x.sku, y.sku), cmp.Compare(x.warehouse, y.warehouse), cmp.Compare(x.location, y.location))
	})
	if len(dirty) > 0 {
		seq, err := catalog.NextChangeSeq(a.ctx, a.conn)
		if err != nil {
			return 0, db.Classify(err)
		}
		vals := make([]any, 0, len(dirty)*5)
		for _, k := range dirty {
			vals = append(vals, k.item, k.sku, k.warehouse, k.location, a.balances[k].onHand)
		}
		if err := a.insertRows(`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at, change_seq) VALUES `,
			fmt.Sprintf("(?, ?, ?, ?, ?, 0, '%s', %d)", a.now, seq), 5, vals,
			` ON CONFLICT(item, sku, warehouse, location) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at,
  change_seq = excluded.change_seq`); err != nil {
			return 0, db.Classify(err)
		}
	}
	if len(a.events) == 0 {
		return 0, nil
	}
	steps := []string{`DROP TABLE IF EXISTS import_events`,
		`CREATE TEMP TABLE import_events (record_key TEXT NOT NULL, sub_key TEXT NOT NULL, capture TEXT NOT NULL)`}
	for _, q := range steps {
		if _, err := a.conn.ExecContext(a.ctx, q); err != nil {
			return 0, err
		}
	}
	defer a.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS import_events`)
	vals := make([]any, 0, len(a.events)*3)
	for k, capture := range a.events {
		vals = append(vals, k.item, k.sku, capture)
	}
	if err := a.insertRows(`INSERT INTO import_events VALUES `, "(?, ?, ?)", 3, vals, ""); err != nil {
		return 0, err
	}
	return trigger.Fold(a.ctx, a.conn, trigger.CodeInventory, `SELECT record_key, sub_key, capture FROM import_events`)
}
