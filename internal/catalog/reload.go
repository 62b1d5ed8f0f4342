package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

// loadReload is a reload (the kind's table has rows) of a CSV file without
// the staging table: the kind's reload function reads the stored records
// of each batch's keys, compares them with the file's rows in Go and
// writes only what differs.
func (l *loader) loadReload(d *db.DB, f *os.File, path string) (*Result, error) {
	l.pool = d
	return l.loadStreamed(d, f, path, "reload", false, func(rr format.RowReader) error {
		// Checked again under the lock: the table may have been emptied,
		// which makes this a first load.
		empty, err := l.tableEmpty()
		if err != nil {
			return err
		}
		if empty {
			return errNotDirect
		}
		return l.k.reload(l, rr)
	})
}

// itemsReload merges the SKU rows of a reload into items, skus and
// triggers as mergeItems does with the staging table. The file's items
// must come in strictly increasing key order (bytewise, the order of both
// engines' keys: db refuses a PostgreSQL database of another collation),
// each item's rows together, with the same item-level fields and form,
// and no SKU twice: else errNotDirect. The stored rows of each batch's
// items are read in key order; in a full load the live SKUs of the items
// between them, which the file does not have, go to gone in SQL.
func itemsReload(l *loader, rr format.RowReader) error {
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	for _, t := range []string{"gone", "cancelled"} {
		if _, err := l.exec(l.dropTempSQL(t)); err != nil {
			return err
		}
		if _, err := l.exec(keysTempDDL(t)); err != nil {
			return err
		}
	}
	m := newItemMerge(l, seq)
	defer m.stmts.Close()
	if m.ahead = startReadAhead(l, m.reader); m.ahead != nil {
		defer m.ahead.stop()
	}
	if err := l.readDirect(rr, m.add); err != nil {
		return err
	}
	if l.res.Read == 0 {
		return errNotDirect
	}
	if err := m.merge(len(m.rows), true); err != nil {
		return err
	}
	if err := m.flush(); err != nil {
		return err
	}
	l.res.Unchanged = l.res.Read - l.res.Added - l.res.Changed
	// mergeItems looks for the rows of an item's old form only when the
	// load added rows.
	if m.formGone && l.res.Added == 0 && l.opts.Mode != ModeFull {
		if _, err := l.exec(`DELETE FROM gone`); err != nil {
			return err
		}
	}
	return l.deleteItemsGone(seq)
}

// itemMerge compares the rows of a reload of items with the stored ones.
type itemMerge struct {
	l    *loader
	full bool
	itemLayout
	reader                  storedReader // on the load's connection
	itemsUpsert, skusUpsert upsert
	stmts                   *db.Prepared
	rows                    []any // read, not yet merged: whole items, then the item the last batch ends with
	// ahead, when set, reads each batch's stored rows while the batches
	// before, pending (oldest first), are compared; free holds batches to
	// use again.
	ahead *readAhead
	// batchRows is the fewest rows of a batch merged at once (but the
	// last): the parser's batches are taken together up to it.
	batchRows                   int
	pending, free               []*itemBatch
	merged                      string
	started                     bool
	vendors                     map[string]bool // known live vendors
	items, skus, triggers, gone []any
	itemRows, skuRows, trigRows int
	goneRows                    int
	formGone                    bool
	lit                         []byte
	order                       []int
	actions                     []string
}

// pgMergeRows is itemMerge.batchRows on PostgreSQL, where reading a
// batch's stored rows is a round trip and a statement's planning: with
// the parser's 256 rows, the read-ahead's 7,800 reads of 1,000,000 rows
// were what the merge waited for. (SQLite reads as fast in batches of
// 256.)
const pgMergeRows = 2048

// itemBatch is the rows of whole items that one merge compares, their
// keys and the keys padded (inList), and the stored rows of the keys once
// read; err is the read's when it was read ahead.
type itemBatch struct {
	rows, keys, in []any
	items          []storedItem
	skus           []storedSku
	err            error
}

// storedReader reads the stored items and SKUs of batches with the
// statements of one connection: the load's, or the read-ahead's.
type storedReader struct {
	ctx                 context.Context
	stmts               *db.Prepared
	width               int // of a parsed row
	readItems, readSkus string
}

// upsert is an INSERT of rows from VALUES: into, the values that follow
// each row's parameters, and the conflict clause.
type upsert struct{ into, more, conflict string }

// storedItem and storedSku are stored rows: their values of the columns
// the file has as one literal (itemMerge.literals).
type storedItem struct {
	item    string
	lit     sql.NullString
	deleted bool
}

type storedSku struct {
	item, sku string
	lit       sql.NullString
	deleted   bool
}

// flushRows is how many rows of a table a merge gathers before it writes
// them with one statement.
const flushRows = 200

func newItemMerge(l *loader, seq int64) *itemMerge {
	m := &itemMerge{l: l, full: l.opts.Mode == ModeFull, itemLayout: newItemLayout(l),
		stmts: &db.Prepared{Conn: l.conn}, vendors: map[string]bool{}}
	if l.dialect == db.Postgres {
		m.batchRows = pgMergeRows
	}
	m.reader = storedReader{ctx: l.ctx, stmts: m.stmts, width: m.width,
		readItems: `SELECT item, deleted_at IS NOT NULL, ` + m.literals(m.itemCols) + ` FROM items WHERE `,
		readSkus:  `SELECT item, sku, deleted_at IS NOT NULL, ` + m.literals(m.skuCols) + ` FROM skus WHERE `}
	// The upserts of mergeItems, from VALUES instead of the staging
	// table; the sequence number and the time are the same on every row.
	stamp := fmt.Sprintf("%d, ", seq)
	now := "'" + l.now + "', '" + l.now + "'"
	stampCols, _, stampSet := stampColumns("skus")
	m.itemsUpsert = upsert{`items(item, ` + list(m.itemCols, "") + `change_seq, created_at, updated_at)`, stamp + now,
		`ON CONFLICT(item) DO UPDATE SET ` + setExcluded(m.itemCols) + `change_seq = excluded.change_seq, deleted_at = NULL, updated_at = excluded.updated_at
WHERE ` + differs("items", "excluded", m.itemCols) + ` OR items.deleted_at IS NOT NULL`}
	m.skusUpsert = upsert{`skus(item, sku, ` + list(m.skuCols, "") + stampCols + `created_at, updated_at)`, stamp + stamp + now,
		`ON CONFLICT(item, sku) DO UPDATE SET ` + setExcluded(m.skuCols) + stampSet + `deleted_at = NULL, updated_at = excluded.updated_at`}
	return m
}

// add takes one batch of parsed rows: it checks their order and their
// items' consistency and merges the items it completes.
func (m *itemMerge) add(vals []any) error {
	start := len(m.rows)
	m.rows = append(m.rows, vals...)
	// first is the start of the last item of m.rows so far (the items
	// before it are in order, and merged when the last was one of them).
	first := -1
	if start > 0 {
		first = m.itemStart(start - m.width)
	}
	for at := start; at < len(m.rows); at += m.width {
		row := m.rows[at : at+m.width]
		item := row[m.item].(string)
		if first >= 0 {
			cur := m.rows[first : first+m.width]
			switch prev := cur[m.item].(string); {
			case item == prev:
				for _, p := range m.group {
					if row[p] != cur[p] {
						return errNotDirect
					}
				}
				if (row[m.sku].(string) == "") != (cur[m.sku].(string) == "") {
					return errNotDirect
				}
				continue
			case item < prev:
				return errNotDirect
			}
		}
		first = at
	}
	if len(m.rows) < m.batchRows*m.width {
		return nil
	}
	// The last item may go on in the next batch.
	return m.merge(first, false)
}

// itemStart is the start in m.rows of the first row of the item of the
// row at at.
func (m *itemMerge) itemStart(at int) int {
	item := m.rows[at+m.item]
	for at >= m.width && m.rows[at-m.width+m.item] == item {
		at -= m.width
	}
	return at
}

// merge merges the rows m.rows[:end], whole items, with the stored ones,
// and keeps the rest; last is the end of the file: in a full load the
// stored records after the file's last item are gone too. With a
// read-ahead it compares the batches before while this one's stored rows
// are read, up to readAheadBatches behind, and all at the end of the file.
func (m *itemMerge) merge(end int, last bool) error {
	if end <= 0 && !last {
		return nil
	}
	b := m.batch()
	// The batch takes the rows; the rest goes on in its old buffer.
	b.rows, m.rows = m.rows[:end], append(b.rows[:0], m.rows[end:]...)
	b.keys = b.keys[:0]
	for at := 0; at < len(b.rows); at += m.width {
		if at == 0 || b.rows[at+m.item] != b.rows[at-m.width+m.item] {
			b.keys = append(b.keys, b.rows[at+m.item])
		}
	}
	if err := m.checkVendors(b.rows); err != nil {
		return err
	}
	b.in = inList(b.keys)
	if m.full {
		if err := m.goneBetween(b.keys, b.in, last); err != nil {
			return err
		}
	}
	if len(b.keys) > 0 {
		m.merged, m.started = b.keys[len(b.keys)-1].(string), true
	}
	if m.ahead == nil {
		if err := m.reader.readStored(b); err != nil {
			return err
		}
		return m.compare(b)
	}
	m.ahead.todo <- b
	m.pending = append(m.pending, b)
	for len(m.pending) > readAheadBatches || last && len(m.pending) > 0 {
		if err := m.comparePending(); err != nil {
			return err
		}
	}
	return nil
}

// comparePending compares the oldest batch read ahead, once its stored
// rows are in (the read-ahead gives the batches back in order).
func (m *itemMerge) comparePending() error {
	b := <-m.ahead.done
	m.pending = m.pending[1:]
	if b.err != nil {
		return b.err
	}
	return m.compare(b)
}

// batch is a batch to fill: one compared before, or a new one.
func (m *itemMerge) batch() *itemBatch {
	if n := len(m.free); n > 0 {
		b := m.free[n-1]
		m.free = m.free[:n-1]
		return b
	}
	return &itemBatch{}
}

// inList is keys padded to one of a few lengths (by repeating the last),
// so that a few statements are prepared for their IN lists.
func inList(keys []any) []any {
	if len(keys) == 0 {
		return nil
	}
	n := 8
	for n < len(keys) {
		n *= 2
	}
	in := slices.Grow(slices.Clone(keys), n-len(keys))
	for len(in) < n {
		in = append(in, keys[len(keys)-1])
	}
	return in
}

// params is an IN list of n parameters.
func params(n int) string {
	return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

// goneBetween adds to gone the live SKUs of a full load's stored items
// between the last item merged and the last of keys (to the end of the
// table after the last batch) that are not in keys, padded as in: the
// items the file does not have.
func (m *itemMerge) goneBetween(keys, in []any, last bool) error {
	conds := []string{`deleted_at IS NULL`}
	var args []any
	if m.started {
		conds = append(conds, `item > ?`)
		args = append(args, m.merged)
	}
	if !last {
		conds = append(conds, `item <= ?`)
		args = append(args, keys[len(keys)-1])
	}
	if len(in) > 0 {
		conds = append(conds, `item NOT IN `+params(len(in)))
		args = append(args, in...)
	}
	_, err := m.stmts.ExecContext(m.l.ctx, `INSERT INTO gone(record_key, sub_key) SELECT item, sku FROM skus WHERE `+
		strings.Join(conds, " AND ")+` ON CONFLICT DO NOTHING`, args...)
	return err
}

// readStored reads, in key order, the stored items and SKUs of b's
// keys: those from the first key to the last when they are not many more
// than the file's (a dense file, as a full extract: a range in each
// table); otherwise those of b.in (an IN list: a seek per item). compare
// passes over the others.
func (r *storedReader) readStored(b *itemBatch) error {
	b.items, b.skus = b.items[:0], b.skus[:0]
	if len(b.keys) == 0 {
		return nil
	}
	item := func(rs *sql.Rows) error {
		var s storedItem
		err := rs.Scan(&s.item, &s.deleted, &s.lit)
		b.items = append(b.items, s)
		return err
	}
	sku := func(rs *sql.Rows) error {
		var s storedSku
		err := rs.Scan(&s.item, &s.sku, &s.deleted, &s.lit)
		b.skus = append(b.skus, s)
		return err
	}
	const between = `item >= ? AND item <= ?`
	list := `item IN ` + params(len(b.in))
	lo, hi := b.keys[0], b.keys[len(b.keys)-1]
	limit := 4*len(b.keys) + 64
	n, err := r.query(r.readItems+between+` ORDER BY item LIMIT ?`, item, lo, hi, limit)
	if err != nil {
		return err
	}
	if n == limit {
		b.items = b.items[:0]
		if _, err := r.query(r.readItems+list+` ORDER BY item`, item, b.in...); err != nil {
			return err
		}
	}
	limit = 4*len(b.rows)/r.width + 64
	if n, err = r.query(r.readSkus+between+` ORDER BY item, sku LIMIT ?`, sku, lo, hi, limit); err != nil || n < limit {
		return err
	}
	b.skus = b.skus[:0]
	_, err = r.query(r.readSkus+list+` ORDER BY item, sku`, sku, b.in...)
	return err
}

// query runs q with args and hands each row to scan; n is the number of
// rows.
func (r *storedReader) query(q string, scan func(*sql.Rows) error, args ...any) (n int, err error) {
	rows, err := r.stmts.QueryContext(r.ctx, q, args...)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// literals is an SQL expression of the columns cols of a stored row, their
// values separated by the unit separator (US, 0x1f): text as it is, other
// values as their SQL literal (on SQLite quote(), which keeps the type of
// a value: 1 and '1' differ, as they do for IS DISTINCT FROM; a real never
// has the literal of a staged integer, and counts as changed). same
// writes a staged row the same way: as the text of a file never holds a
// US (format.CheckText), two rows have the same literals exactly when no
// column IS DISTINCT FROM the other's. (The text columns are NOT NULL;
// one NULL makes the whole NULL, which is never the same. They hold text
// only: loads bind Go strings, and TEXT affinity stores a number as text;
// a BLOB put there by hand would read as its bytes.) Reading one value
// instead of one per column takes about a third off reading a million
// rows.
func (m *itemMerge) literals(cols []string) string {
	if len(cols) == 0 {
		return "''"
	}
	parts := make([]string, len(cols))
	for i, c := range cols {
		switch {
		case m.l.k.plan.typeOf(c) == "text":
			parts[i] = c
		case m.l.dialect == db.Postgres:
			parts[i] = "coalesce(" + c + "::text, 'NULL')"
		default:
			parts[i] = "quote(" + c + ")"
		}
	}
	sep := " || char(31) || "
	if m.l.dialect == db.Postgres {
		sep = " || chr(31) || "
	}
	return strings.Join(parts, sep)
}

// same reports whether a stored row's literals (itemMerge.literals) are
// those of the staged values at positions pos of row.
func (m *itemMerge) same(lit sql.NullString, row []any, pos []int) bool {
	b := m.lit[:0]
	for i, p := range pos {
		if i > 0 {
			b = append(b, 0x1f)
		}
		switch v := row[p].(type) {
		case nil:
			b = append(b, "NULL"...)
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case string:
			b = append(b, v...)
		default:
			// Not a staged value: never the same.
			return false
		}
	}
	m.lit = b
	return lit.Valid && string(b) == lit.String
}

// compare merges the rows of whole items of b with their stored items
// and SKUs, in the same order (with others between them, which it passes
// over), and queues the writes; b is then free for the next batch.
func (m *itemMerge) compare(b *itemBatch) error {
	defer func() { m.free = append(m.free, b) }()
	rows := b.rows
	si, ki := 0, 0
	for at := 0; at < len(rows); {
		key := rows[at+m.item].(string)
		for si < len(b.items) && b.items[si].item < key {
			si++
		}
		for ki < len(b.skus) && b.skus[ki].item < key {
			ki++
		}
		end := at
		for end < len(rows) && rows[end+m.item].(string) == key {
			end += m.width
		}
		var item *storedItem
		if si < len(b.items) && b.items[si].item == key {
			item = &b.items[si]
			si++
		}
		kEnd := ki
		for kEnd < len(b.skus) && b.skus[kEnd].item == key {
			kEnd++
		}
		if item == nil && kEnd > ki {
			return errNotDirect // SKUs without their item: not the staged join's case
		}
		if err := m.compareItem(key, rows[at:end], item, b.skus[ki:kEnd]); err != nil {
			return err
		}
		at, ki = end, kEnd
	}
	return nil
}

// compareItem classifies the file's rows of one item against its stored
// row and SKUs (sorted by sku) as mergeItems's classify does, and queues
// the writes.
func (m *itemMerge) compareItem(key string, rows []any, item *storedItem, stored []storedSku) error {
	n := len(rows) / m.width
	itemDiffers := item == nil || !m.same(item.lit, rows, m.itemVals)
	if item == nil || item.deleted || itemDiffers {
		m.items = append(m.items, key)
		for _, p := range m.itemVals {
			m.items = append(m.items, rows[p])
		}
		m.itemRows++
	}
	// The file's rows in sku order, to go along the stored ones.
	m.order = m.order[:0]
	for i := range n {
		m.order = append(m.order, i)
	}
	sku := func(i int) string { return rows[i*m.width+m.sku].(string) }
	slices.SortStableFunc(m.order, func(a, b int) int { return strings.Compare(sku(a), sku(b)) })
	m.actions = slices.Grow(m.actions[:0], n)[:n]
	form := sku(0) == ""
	k := 0
	for j, i := range m.order {
		s := sku(i)
		if j > 0 && s == sku(m.order[j-1]) {
			return errNotDirect
		}
		for ; k < len(stored) && stored[k].sku < s; k++ {
			if err := m.missing(stored[k], form); err != nil {
				return err
			}
		}
		row := rows[i*m.width : (i+1)*m.width]
		switch {
		case k == len(stored) || stored[k].sku != s || stored[k].deleted || item.deleted:
			m.actions[i] = trigger.Added
		case itemDiffers || !m.same(stored[k].lit, row, m.skuVals):
			m.actions[i] = trigger.Changed
		default:
			m.actions[i] = ""
		}
		if k < len(stored) && stored[k].sku == s {
			k++
		}
	}
	for ; k < len(stored); k++ {
		if err := m.missing(stored[k], form); err != nil {
			return err
		}
	}
	// In the file's order, as the staged load folds them.
	for i, a := range m.actions {
		if a == "" {
			continue
		}
		if a == trigger.Added {
			m.l.res.Added++
		} else {
			m.l.res.Changed++
		}
		row := rows[i*m.width : (i+1)*m.width]
		m.skus = append(m.skus, key, row[m.sku])
		for _, p := range m.skuVals {
			m.skus = append(m.skus, row[p])
		}
		m.skuRows++
		m.triggers = append(m.triggers, key, row[m.sku], a)
		m.trigRows++
		// An item of thousands of SKUs would otherwise make one
		// statement of more parameters than the engine takes (SQLite
		// 32,766, PostgreSQL 65,535). Its row is queued first, so it is
		// written before its SKUs.
		if m.skuRows >= flushRows {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	if m.skuRows >= flushRows || m.itemRows >= flushRows {
		return m.flush()
	}
	return nil
}

// missing takes a stored SKU of an item in the file that the file does
// not have: gone when it is live and of the item's other form (whatever
// the mode, as long as the load adds rows) or the load is full.
func (m *itemMerge) missing(k storedSku, form bool) error {
	if k.deleted {
		return nil
	}
	if (k.sku == "") != form {
		m.formGone = true
		return m.addGone(k.item, k.sku)
	} else if m.full {
		return m.addGone(k.item, k.sku)
	}
	return nil
}

// addGone queues a gone key, and writes the queue when it is full: one
// item may have thousands.
func (m *itemMerge) addGone(item, sku string) error {
	m.gone = append(m.gone, item, sku)
	m.goneRows++
	if m.goneRows >= flushRows {
		return m.flushGone()
	}
	return nil
}

// checkVendors checks the vendor of each item of rows (knownVendors),
// each vendor once per load.
func (m *itemMerge) checkVendors(rows []any) error {
	var ask []any
	for at := 0; at < len(rows); at += m.width {
		v := rows[at+m.vendor].(string)
		if !m.vendors[v] && !slices.Contains(ask, any(v)) {
			ask = append(ask, v)
		}
	}
	if len(ask) == 0 {
		return nil
	}
	if err := m.l.knownVendors(ask); err != nil {
		return err
	}
	for _, v := range ask {
		m.vendors[v.(string)] = true
	}
	return nil
}

// flush writes the queued items, SKUs and triggers, in that order (a
// SKU's item is in first), and the queued gone keys.
func (m *itemMerge) flush() error {
	if err := m.write(m.itemsUpsert, m.itemRows, m.items); err != nil {
		return err
	}
	if err := m.write(m.skusUpsert, m.skuRows, m.skus); err != nil {
		return err
	}
	if m.trigRows > 0 {
		n, err := trigger.Fold(m.l.ctx, m.stmts, trigger.CodeItem, `SELECT column1 AS record_key, column2 AS sub_key, column3 AS capture FROM (VALUES `+
			valueRows(m.trigRows, 3, "")+`) AS v`, m.triggers...)
		if err != nil {
			return err
		}
		m.l.res.Triggers += n
	}
	m.items, m.skus, m.triggers = m.items[:0], m.skus[:0], m.triggers[:0]
	m.itemRows, m.skuRows, m.trigRows = 0, 0, 0
	return m.flushGone()
}

// write runs u for rows rows of args.
func (m *itemMerge) write(u upsert, rows int, args []any) error {
	if rows == 0 {
		return nil
	}
	_, err := m.stmts.ExecContext(m.l.ctx, `INSERT INTO `+u.into+` VALUES `+valueRows(rows, len(args)/rows, u.more)+"\n"+u.conflict, args...)
	return err
}

func (m *itemMerge) flushGone() error {
	if m.goneRows == 0 {
		return nil
	}
	_, err := m.stmts.ExecContext(m.l.ctx, `INSERT INTO gone(record_key, sub_key) VALUES `+valueRows(m.goneRows, 2, "")+` ON CONFLICT DO NOTHING`, m.gone...)
	m.gone, m.goneRows = m.gone[:0], 0
	return err
}
