package imports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

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
}

// historyCols are the history values bound per transaction; the file id
// and the time are the same for a whole file and go in as literals.
const historyCols = 20

// historyPerStmt rows go into one INSERT of the history.
const historyPerStmt = 100

func newApplier(ctx context.Context, conn *sql.Conn, fileID int64, o *Options) (*applier, error) {
	a := &applier{ctx: ctx, conn: conn, fileID: fileID, o: o, now: db.Now(),
		balances: map[stockKey]*balance{}, known: map[skuKey]bool{}, byUPC: map[string]*skuKey{}, byRef: map[string]*skuKey{},
		whs: map[string]bool{}, hadStock: map[skuKey]bool{}, events: map[skuKey]string{}, stmts: map[string]*sql.Stmt{}}
	queries := map[string]string{
		"sku":       `SELECT 1 FROM skus WHERE item = ? AND sku = ? AND deleted_at IS NULL`,
		"upc":       `SELECT item, sku FROM skus WHERE upc = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"ref":       `SELECT item, sku FROM skus WHERE retail_ref = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"warehouse": `SELECT 1 FROM warehouses WHERE warehouse = ?`,
		"balance":   `SELECT on_hand, reserved, coalesce(threshold, 0) FROM inventory WHERE item = ? AND sku = ? AND warehouse = ? AND location = ?`,
		"stocked":   `SELECT EXISTS (SELECT 1 FROM inventory WHERE item = ? AND sku = ?)`,
		"write": `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at, change_seq) VALUES (?, ?, ?, ?, ?, 0, ?, ?)
ON CONFLICT(item, sku, warehouse, location) DO UPDATE SET on_hand = excluded.on_hand, updated_at = excluded.updated_at,
  change_seq = excluded.change_seq`,
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
			err := a.stmts["sku"].QueryRowContext(a.ctx, item, sku).Scan(new(int))
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return k, fail(err)
			}
			ok = err == nil
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

func (a *applier) balance(k stockKey) (*balance, error) {
	if b, ok := a.balances[k]; ok {
		return b, nil
	}
	b := &balance{}
	err := a.stmts["balance"].QueryRowContext(a.ctx, k.item, k.sku, k.warehouse, k.location).Scan(&b.onHand, &b.reserved, &b.threshold)
	switch {
	case err == nil:
		b.exists = true
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fail(err)
	}
	a.balances[k] = b
	return b, nil
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
	stocked, seen := a.hadStock[k]
	if !seen {
		if err := a.stmts["stocked"].QueryRowContext(a.ctx, k.item, k.sku).Scan(&stocked); err != nil {
			return fail(err)
		}
		a.hadStock[k] = stocked
	}
	a.events[k] = trigger.Changed
	if !stocked {
		a.events[k] = trigger.Added
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
	if len(a.history) < historyCols*historyPerStmt {
		return nil
	}
	if a.histAll == nil {
		st, err := a.conn.PrepareContext(a.ctx, a.historySQL(historyPerStmt))
		if err != nil {
			return fail(err)
		}
		a.histAll = st
	}
	if _, err := a.histAll.ExecContext(a.ctx, a.history...); err != nil {
		return fail(err)
	}
	a.history = a.history[:0]
	return nil
}

// finish writes the rest of the history, the changed balances and the
// inventory triggers, and returns how many triggers were created or folded.
func (a *applier) finish() (int64, error) {
	if n := len(a.history) / historyCols; n > 0 {
		if _, err := a.conn.ExecContext(a.ctx, a.historySQL(n), a.history...); err != nil {
			return 0, db.Classify(err)
		}
		a.history = a.history[:0]
	}
	// The stock rows written carry the transaction's change sequence,
	// which the partner inventory exports read.
	var seq int64
	for k, b := range a.balances {
		if !b.dirty {
			continue
		}
		if seq == 0 {
			var err error
			if seq, err = catalog.NextChangeSeq(a.ctx, a.conn); err != nil {
				return 0, db.Classify(err)
			}
		}
		if _, err := a.stmts["write"].ExecContext(a.ctx, k.item, k.sku, k.warehouse, k.location, b.onHand, a.now, seq); err != nil {
			return 0, db.Classify(err)
		}
	}
	if len(a.events) == 0 {
		return 0, nil
	}
	steps := []string{`DROP TABLE IF EXISTS temp.import_events`,
		`CREATE TEMP TABLE import_events (record_key TEXT NOT NULL, sub_key TEXT NOT NULL, capture TEXT NOT NULL)`}
	for _, q := range steps {
		if _, err := a.conn.ExecContext(a.ctx, q); err != nil {
			return 0, err
		}
	}
	defer a.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS temp.import_events`)
	st, err := a.conn.PrepareContext(a.ctx, `INSERT INTO import_events VALUES (?, ?, ?)`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	for k, capture := range a.events {
		if _, err := st.ExecContext(a.ctx, k.item, k.sku, capture); err != nil {
			return 0, err
		}
	}
	return trigger.Fold(a.ctx, a.conn, trigger.CodeInventory, `SELECT record_key, sub_key, capture FROM import_events`)
}
