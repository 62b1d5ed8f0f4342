package catalog

import (
	"fmt"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

var kinds = map[string]*kindSpec{
	// Whether a full load may delete a warehouse depends on inventory, so
	// an identical warehouses file is always compared row by row.
	"warehouses": {
		name: "warehouses", table: "warehouses", root: "Warehouses", record: "Warehouse",
		plan:  newPlan(warehouseRow{}),
		merge: mergeWarehouses,
	},
	"vendors": {
		name: "vendors", table: "vendors", skipSame: true, root: "Vendors", record: "Vendor",
		plan:  newPlan(vendorRow{}),
		merge: func(l *loader) error { return mergeSimple(l, "vendors", "vendor", trigger.CodeVendor) },
	},
	"customers": {
		name: "customers", table: "customers", skipSame: true, stamp: true, root: "Customers", record: "Customer",
		plan:  newPlan(customerRow{}),
		check: checkCustomers,
		merge: func(l *loader) error { return mergeSimple(l, "customers", "customer", trigger.CodeCustomer) },
	},
	"items": {
		name: "items", table: "skus", alsoWrites: []string{"items"}, skipSame: true, root: "Items", record: "Item",
		plan: newPlan(itemRow{}),
		group: &group{by: "item", what: "item-level", cols: itemCols,
			extra:    `(f.sku = '') <> (s.sku = '')`,
			extraMsg: `'item ' || s.item || ' has rows with and without a sku (line ' || f.src_line || '): an item has either SKUs or one row with an empty sku'`},
		refs: []ref{{what: "vendor", show: "s.vendor",
			cond: `s.vendor <> '' AND NOT EXISTS (SELECT 1 FROM vendors v WHERE v.vendor = s.vendor AND v.deleted_at IS NULL)`}},
		merge:  mergeItems,
		direct: itemsDirect,
		reload: itemsReload,
	},
	"invoices": {
		name: "invoices", table: "invoices", alsoWrites: []string{"invoice_lines"}, skipSame: true, root: "Invoices", record: "InvoiceLine",
		plan:  newPlan(invoiceRow{}),
		group: &group{by: "invoice", what: "invoice header", cols: invoiceHeaderCols, whole: true},
		check: checkInvoices,
		refs: []ref{
			{what: "customer", show: "s.customer",
				cond: `NOT EXISTS (SELECT 1 FROM customers c WHERE c.customer = s.customer AND c.deleted_at IS NULL)`},
			{what: "item/SKU", show: "s.item || '/' || s.sku",
				cond: `NOT EXISTS (SELECT 1 FROM skus k WHERE k.item = s.item AND k.sku = s.sku AND k.deleted_at IS NULL)`},
		},
		merge: mergeInvoices,
	},
	// Inventory is also changed by inventory transaction imports, so an
	// identical file is always compared row by row.
	"inventory": {
		name: "inventory", table: "inventory", root: "Inventory", record: "Stock",
		refersTo: []string{"items", "warehouses"},
		plan:     newPlan(inventoryRow{}),
		check:    checkInventory,
		refs: []ref{
			{what: "item/SKU", show: "s.item || '/' || s.sku", hard: true,
				cond: `NOT EXISTS (SELECT 1 FROM skus k WHERE k.item = s.item AND k.sku = s.sku AND k.deleted_at IS NULL)`},
			{what: "warehouse", show: "s.warehouse", hard: true,
				cond: `NOT EXISTS (SELECT 1 FROM warehouses w WHERE w.warehouse = s.warehouse)`},
		},
		merge: mergeInventory,
	},
}

// differs is an SQL condition true when any of cols differs between the
// rows aliased a and b.
func differs(a, b string, cols []string) string {
	if len(cols) == 0 {
		return "(false)"
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = fmt.Sprintf("%s.%s IS DISTINCT FROM %s.%s", a, c, b, c)
	}
	return "(" + strings.Join(parts, " OR ") + ")"
}

// setExcluded is the start of the SET list of an upsert taking cols from
// excluded, each followed by ", ".
func setExcluded(cols []string) string {
	var b strings.Builder
	for _, c := range cols {
		fmt.Fprintf(&b, "%s = excluded.%s, ", c, c)
	}
	return b.String()
}

// list writes cols with prefix, each followed by ", ".
func list(cols []string, prefix string) string {
	var b strings.Builder
	for _, c := range cols {
		b.WriteString(prefix + c + ", ")
	}
	return b.String()
}

// dataCols are the staged columns of a plan other than key.
func dataCols(p plan, key string) []string {
	var out []string
	for _, c := range p.cols {
		if c.col != key {
			out = append(out, c.col)
		}
	}
	return out
}

// countActions adds the actions of the records in table (stage, or firsts
// for invoices) to the result; the records without one are unchanged.
func (l *loader) countActions(table string) error {
	total, err := l.count(`SELECT count(*) FROM ` + table)
	if err != nil {
		return err
	}
	rows, err := l.conn.QueryContext(l.ctx, `SELECT action, count(*) FROM `+table+` WHERE action <> '' GROUP BY action`)
	if err != nil {
		return err
	}
	defer rows.Close()
	l.res.Unchanged += total
	for rows.Next() {
		var a string
		var n int64
		if err := rows.Scan(&a, &n); err != nil {
			return err
		}
		l.res.Unchanged -= n
		switch a {
		case trigger.Added:
			l.res.Added += n
		case trigger.Changed:
			l.res.Changed += n
		}
	}
	return rows.Err()
}

// classify sets the action of every staged row: A when the kind's table
// has no live record for it (isNew), C when the record differs (isChanged),
// empty when it is the same. joins bring the stored record next to the
// staged row s. Rows were staged as l.stagedAs (A when the table was empty
// before the load, empty otherwise), so only the rows that differ from that
// are written: nothing at all on a first load, only the changes on a reload.
func (l *loader) classify(joins, isNew, isChanged string) error {
	empty, err := l.tableEmpty()
	if err != nil {
		return err
	}
	l.firstLoad = empty
	switch {
	case l.firstLoad && l.stagedAs == trigger.Added:
		return nil
	case l.firstLoad:
		_, err = l.exec(`UPDATE stage SET action = 'A'`)
		return err
	case l.stagedAs == trigger.Added:
		// Another load filled the table while this one staged.
		if _, err := l.exec(`UPDATE stage SET action = ''`); err != nil {
			return err
		}
	}
	if _, err := l.exec(`UPDATE stage SET action = x.a FROM (
  SELECT s.rec, CASE WHEN ` + isNew + ` THEN 'A' ELSE 'C' END AS a FROM stage s ` + joins + `
  WHERE ` + isNew + ` OR ` + isChanged + `) AS x
WHERE stage.rec = x.rec`); err != nil {
		return err
	}
	// A reload changes few rows: the steps that follow find them through
	// this index instead of scanning the whole staging table each time.
	// (Both engines put the index of a temporary table with it.)
	_, err = l.exec(`CREATE INDEX stage_action ON stage(action) WHERE action <> ''`)
	return err
}

// bulk runs fn, which fills tables; on a first load it drops their
// secondary indexes first and builds them again afterwards, in the same
// transaction: building an index from a full table sorts once, where
// inserting a million rows in the order of another key scatters writes
// over the whole index. On PostgreSQL it does the same with the foreign
// keys between tables (skus -> items), added again with validation, one
// pass over the filled tables instead of a lookup per row (a first load
// of 1M SKUs: 27 -> 16 s of the server's CPU). Unique indexes stay: they
// are the checks the load relies on.
//
// The definitions come from the catalog (sqlite_schema.sql,
// pg_indexes.indexdef, pg_get_constraintdef), so the migrations stay the
// one place they are written. PostgreSQL's DDL is transactional: a load
// that fails or is killed leaves the indexes and constraints as they were.
// Its DROP holds an ACCESS EXCLUSIVE lock on the tables until the load
// commits, so the readers of other hosts (exports, inquiries) wait and,
// past the lock timeout, exit 75 and retry. That is acceptable for a first
// load only, whose tables are empty: there is nothing to read yet.
func (l *loader) bulk(fn func() error, tables ...string) error {
	if !l.firstLoad {
		return fn()
	}
	var rebuild []struct{ drop, create string }
	for _, t := range tables {
		rows, err := l.conn.QueryContext(l.ctx, l.secondaryQuery(tables), t)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r struct{ drop, create string }
			if err := rows.Scan(&r.drop, &r.create); err != nil {
				rows.Close()
				return err
			}
			rebuild = append(rebuild, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, r := range rebuild {
		if _, err := l.exec(r.drop); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return err
	}
	for _, r := range rebuild {
		if _, err := l.exec(r.create); err != nil {
			return err
		}
	}
	return nil
}

// secondaryQuery returns, for the table named by its one parameter, the
// statements that drop and create again each of its secondary indexes
// and, on PostgreSQL, each of its foreign keys to one of tables.
func (l *loader) secondaryQuery(tables []string) string {
	if l.dialect != db.Postgres {
		return `SELECT 'DROP INDEX "' || name || '"', sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql NOT LIKE 'CREATE UNIQUE %'`
	}
	refs := `'` + strings.Join(tables, `'::regclass, '`) + `'::regclass`
	return `SELECT 'DROP INDEX ' || quote_ident(indexname), indexdef FROM pg_indexes
WHERE schemaname = current_schema() AND tablename = ?1 AND indexdef NOT LIKE 'CREATE UNIQUE %'
UNION ALL
SELECT 'ALTER TABLE ' || quote_ident(?1) || ' DROP CONSTRAINT ' || quote_ident(conname),
  'ALTER TABLE ' || quote_ident(?1) || ' ADD CONSTRAINT ' || quote_ident(conname) || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE contype = 'f' AND conrelid = quote_ident(?1)::regclass AND confrelid IN (` + refs + `)`
}

// fold records the staged A and C actions of table as triggers of code.
func (l *loader) fold(code, source string) error {
	defer l.trace("fold "+code, time.Now())
	n, err := trigger.Fold(l.ctx, l.conn, code, source)
	l.res.Triggers += n
	return err
}

// deletesAllowed says whether a full load may delete missing records: not
// when rows were rejected, since the file is then not the complete set.
func (l *loader) deletesAllowed() bool {
	if l.opts.Mode != ModeFull {
		return false
	}
	if l.res.Rejected > 0 {
		l.res.DeletesSkipped = true
		l.warn("%s: %d rows rejected: the file is not a complete set, so no records are deleted", l.res.File, l.res.Rejected)
		return false
	}
	return true
}

// changeSeq returns the change sequence number of this load's
// transaction, taking the next one on the first call: every customer, SKU,
// item, invoice and stock row the load adds, changes or deletes is stamped
// with it (migrations 0007, 0008), which is what the engagement feed and the
// partner inventory exports read.
func (l *loader) changeSeq() (int64, error) {
	if l.seq > 0 {
		return l.seq, nil
	}
	var err error
	l.seq, err = NextChangeSeq(l.ctx, l.conn)
	return l.seq, err
}

// deleteGone deletes the records whose keys are in the temporary table gone
// from table (key columns k1 and, for two-part keys, k2): a record whose
// pending A trigger cancels is removed outright, never having been sent;
// the others become tombstones with a D trigger. A cancelled record is
// kept as a tombstone without a trigger while an export file not finished
// holds a delete of it from before the add (trigger.InFlight): given
// back, that delete is sent again and needs the record. Where an
// engagement feed sends the table's deletes (customers, SKUs) a tombstone
// is stamped with the change sequence, and once the feed is in use a
// cancelled record is kept too: the feed may have sent it.
func (l *loader) deleteGone(table, code, k1, k2 string) error {
	match := fmt.Sprintf("%s IN (SELECT record_key FROM %%s)", k1)
	if k2 != "" {
		match = fmt.Sprintf("(%s, %s) IN (SELECT record_key, sub_key FROM %%s)", k1, k2)
	}
	n, err := l.count(`SELECT count(*) FROM gone`)
	if err != nil || n == 0 {
		return err
	}
	l.res.Deleted += n
	if _, err := trigger.CancelAdds(l.ctx, l.conn, code, `SELECT record_key, sub_key FROM gone`, "cancelled"); err != nil {
		return err
	}
	feed := trigger.FeedKind(table) != ""
	keep, stamp := ` AND NOT `+trigger.InFlight(code, k1, k2), ""
	args := []any{l.now}
	if feed {
		keep += ` AND NOT ` + trigger.FeedInUse(table)
		stamp = `, change_seq = ?2`
		seq, err := l.changeSeq()
		if err != nil {
			return err
		}
		args = append(args, seq)
	}
	if _, err := l.exec(`DELETE FROM ` + table + ` WHERE ` + fmt.Sprintf(match, "cancelled") + keep); err != nil {
		return err
	}
	tombstone := `UPDATE ` + table + ` SET deleted_at = ?1, updated_at = ?1` + stamp + ` WHERE deleted_at IS NULL AND `
	if _, err := l.exec(tombstone+fmt.Sprintf(match, "cancelled"), args...); err != nil {
		return err
	}
	if _, err := l.exec(`DELETE FROM gone WHERE (record_key, sub_key) IN (SELECT record_key, sub_key FROM cancelled)`); err != nil {
		return err
	}
	if _, err := l.exec(tombstone+fmt.Sprintf(match, "gone"), args...); err != nil {
		return err
	}
	// In key order, however the keys came in (itemsReload and mergeItems
	// find an item's rows of its old form in different orders).
	return l.fold(code, `SELECT record_key, sub_key, 'D' AS capture FROM gone ORDER BY record_key, sub_key`)
}

// mergeSimple merges a kind held in one table with a one-column key.
func mergeSimple(l *loader, table, key, code string) error {
	cols := l.given(dataCols(l.k.plan, key))
	if err := l.classify(`LEFT JOIN `+table+` t ON t.`+key+` = s.`+key,
		`(t.`+key+` IS NULL OR t.deleted_at IS NOT NULL)`, differs("t", "s", cols)); err != nil {
		return err
	}
	stampCols, stampVals, stampSet, args := "", "", "", []any{l.now}
	if l.k.stamp {
		seq, err := l.changeSeq()
		if err != nil {
			return err
		}
		stampCols, stampVals, stampSet = stampColumns(table)
		args = append(args, seq)
	}
	err := l.bulk(func() error {
		_, err := l.exec(`INSERT INTO `+table+`(`+key+`, `+list(cols, "")+stampCols+`created_at, updated_at)
SELECT `+key+`, `+list(cols, "")+stampVals+`?1, ?1 FROM stage WHERE action <> ''
ON CONFLICT(`+key+`) DO UPDATE SET `+setExcluded(cols)+stampSet+`deleted_at = NULL, updated_at = excluded.updated_at`, args...)
		return err
	}, table)
	if err != nil {
		return err
	}
	if err := l.countActions("stage"); err != nil {
		return err
	}
	if err := l.fold(code, `SELECT `+key+` AS record_key, '' AS sub_key, action AS capture FROM stage WHERE action <> ''`); err != nil {
		return err
	}
	if !l.deletesAllowed() {
		return nil
	}
	if _, err := l.exec(`INSERT INTO gone(record_key) SELECT t.` + key + ` FROM ` + table + ` t
WHERE t.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.` + key + ` = t.` + key + `)`); err != nil {
		return err
	}
	return l.deleteGone(table, code, key, "")
}

// stampColumns are the parts of an upsert into table (customers, skus)
// that stamp the change sequence, parameter ?2: the columns and values to
// insert, and the SET list of a conflict, each ending in ", ". A record
// deleted before counts as added again.
func stampColumns(table string) (cols, vals, set string) {
	return "change_seq, added_seq, ", "?2, ?2, ", "change_seq = excluded.change_seq, added_seq = CASE WHEN " + table +
		".deleted_at IS NOT NULL THEN excluded.added_seq ELSE " + table + ".added_seq END, "
}

func checkCustomers(l *loader) error {
	return l.rejectWhere(`s.last_name = '' AND s.company_name = ''`, `'a customer needs a last_name or a company_name'`)
}

// warehouseReferrers are the tables whose rows name a warehouse by a
// foreign key.
var warehouseReferrers = []string{"inventory", "orders", "returns"}

// mergeWarehouses upserts warehouses. They have no trigger; a full load
// deletes missing warehouses that no stock, order or return refers to and
// keeps the others with a warning.
func mergeWarehouses(l *loader) error {
	cols := l.given(dataCols(l.k.plan, "warehouse"))
	if err := l.classify(`LEFT JOIN warehouses t ON t.warehouse = s.warehouse`, `t.warehouse IS NULL`, differs("t", "s", cols)); err != nil {
		return err
	}
	if _, err := l.exec(`INSERT INTO warehouses(warehouse, `+list(cols, "")+`created_at, updated_at)
SELECT warehouse, `+list(cols, "")+`?1, ?1 FROM stage WHERE action <> ''
ON CONFLICT(warehouse) DO UPDATE SET `+setExcluded(cols)+`updated_at = excluded.updated_at`, l.now); err != nil {
		return err
	}
	if err := l.countActions("stage"); err != nil {
		return err
	}
	if !l.deletesAllowed() {
		return nil
	}
	missing := `NOT EXISTS (SELECT 1 FROM stage s WHERE s.warehouse = w.warehouse)`
	// On PostgreSQL an import or an order on another host may be adding
	// the first stock row of a warehouse the file leaves out: the
	// warehouses to delete are locked first, which waits for it (its
	// stock row holds its warehouse), so that the checks below see its
	// stock and keep the warehouse. Checked unlocked, the delete failed
	// on the stock's foreign key.
	if l.dialect == db.Postgres {
		if _, err := l.exec(`SELECT 1 FROM warehouses w WHERE ` + missing + ` ORDER BY w.warehouse FOR UPDATE`); err != nil {
			return err
		}
	}
	// Stock, orders and returns name their warehouse by a foreign key:
	// a warehouse any of them names is kept, as the delete would fail.
	referred := make([]string, len(warehouseReferrers))
	for i, r := range warehouseReferrers {
		referred[i] = `EXISTS (SELECT 1 FROM ` + r + ` v WHERE v.warehouse = w.warehouse)`
	}
	rows, err := l.conn.QueryContext(l.ctx, `SELECT w.warehouse, `+strings.Join(referred, ", ")+` FROM warehouses w WHERE `+missing+`
  AND (`+strings.Join(referred, " OR ")+`) ORDER BY 1`)
	if err != nil {
		return err
	}
	type keptWarehouse struct {
		warehouse string
		by        []string
	}
	var kept []keptWarehouse
	for rows.Next() {
		var k keptWarehouse
		is := make([]bool, len(warehouseReferrers))
		dest := []any{&k.warehouse}
		for i := range is {
			dest = append(dest, &is[i])
		}
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return err
		}
		for i, r := range warehouseReferrers {
			if is[i] {
				k.by = append(k.by, r)
			}
		}
		kept = append(kept, k)
	}
	rows.Close()
	for _, k := range kept {
		verb := "refer"
		if len(k.by) == 1 && k.by[0] == "inventory" {
			verb = "refers"
		}
		l.warn("%s: warehouse %s is not in the file but %s %s to it: kept", l.res.File, k.warehouse, strings.Join(k.by, " and "), verb)
	}
	n, err := l.exec(`DELETE FROM warehouses AS w WHERE ` + missing + ` AND NOT (` + strings.Join(referred, " OR ") + `)`)
	l.res.Deleted += n
	return err
}
