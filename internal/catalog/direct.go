package catalog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

// errNotDirect ends a direct first load that met something only the staged
// load handles (a rejected row, the rows of an item apart, a duplicate key,
// an unknown reference, an empty file): its transaction is rolled back and
// the file is loaded again through the staging table, which rejects and
// warns as it always has.
var errNotDirect = errors.New("not a direct load")

// stageAlways, set by tests, makes every load go through the staging table,
// to compare its tables with a direct load's.
var stageAlways bool

// loadDirect is a first load (the kind's table is empty) of a CSV file
// without the staging table: the kind's direct function writes the rows
// into the state as they are read, in the load's one write transaction,
// and checks in Go, one record at a time, what the staged load checks in
// SQL over the whole file. Memory holds one batch and one record.
//
// SQLite checks no foreign key of the load's writes: each holds by
// construction (a SKU's item is written before it, in the same
// transaction) or is checked once below (the run of the ledger row), and
// checking a SKU's item costs a lookup in items per row.
// TestDirectFirstLoadKeys lists the keys and fails on one not vouched for
// here.
func (l *loader) loadDirect(d *db.DB, f *os.File, path string) (*Result, error) {
	return l.loadStreamed(d, f, path, "first load", true, func(rr format.RowReader) error {
		// Checked again under the lock: another load may have come first.
		filled, err := l.count(`SELECT count(*) FROM (SELECT 1 FROM ` + l.k.table + ` UNION ALL SELECT 1 FROM ` +
			strings.Join(l.k.alsoWrites, ` UNION ALL SELECT 1 FROM `) + ` LIMIT 1) AS x`)
		if err != nil {
			return err
		}
		if filled != 0 {
			return errNotDirect
		}
		// A run that is not there fails the ledger row's key in the
		// staged load, which words it.
		if l.opts.RunID != 0 && !l.opts.DryRun {
			runs, err := l.count(`SELECT count(*) FROM runs WHERE id = ?`, l.opts.RunID)
			if err != nil {
				return err
			}
			if runs == 0 {
				return errNotDirect
			}
		}
		l.firstLoad = true
		return l.k.direct(l, rr)
	})
}

// loadStreamed is a load of a CSV file (what: "first load", "reload")
// without the staging table: apply takes the file's rows as they are
// read, in the load's one write transaction (on SQLite without foreign key
// checks when keysOff: db.WithoutKeyChecks). When the file needs more
// (see errNotDirect) it returns errNotDirect with nothing applied and no
// warning given, and the caller stages the file from its start.
func (l *loader) loadStreamed(d *db.DB, f *os.File, path, what string, keysOff bool, apply func(format.RowReader) error) (*Result, error) {
	if fm, err := format.Detect(path, l.opts.Format); err != nil || fm != format.CSV {
		return nil, errNotDirect
	}
	// Warnings wait for the end: a load that goes on staged gives its own.
	var warnings []string
	warn := l.opts.Warn
	l.opts.Warn = func(msg string) { warnings = append(warnings, msg) }
	hash := sha256.New()
	cr := &countingReader{r: io.TeeReader(f, hash), progress: l.opts.Progress}
	rr, err := l.openRows(cr, path)
	if err != nil {
		// The staged load words the file's problems.
		return nil, errNotDirect
	}
	l.header = rr.Header()
	l.setPresent(rr)
	start := time.Now()
	tx := func() error {
		return db.WithTx(l.ctx, l.conn, !l.opts.DryRun, func() error {
			if err := l.applyAlone(); err != nil {
				return err
			}
			if err := apply(rr); err != nil {
				return err
			}
			if l.res.Read == 0 {
				return errNotDirect
			}
			l.readerDone(rr, path)
			l.res.SHA256 = hex.EncodeToString(hash.Sum(nil))
			return l.record(path, cr.n)
		})
	}
	if keysOff {
		err = db.WithoutKeyChecks(l.ctx, l.conn, tx)
	} else {
		err = tx()
	}
	l.trace("direct "+what, start)
	l.opts.Warn = warn
	if errors.Is(err, errNotDirect) {
		if l.opts.Debug != nil {
			l.opts.Debug(what + ": the file needs the staging table")
		}
		return nil, err
	}
	if err == nil {
		if l.opts.Debug != nil {
			l.opts.Debug(what + ": written without the staging table")
		}
		for _, w := range warnings {
			warn(w)
		}
	}
	return l.done(d, path, err)
}

// readDirect runs the parser over rr and hands write each batch of rows,
// flattened as the parser makes them (rec, line, then the plan's columns).
// A rejected row or a file the parser stops on ends it with errNotDirect.
func (l *loader) readDirect(rr format.RowReader, write func(vals []any) error) error {
	batches, stop := l.startParse(rr)
	defer stop()
	for b := range batches {
		if b.err != nil || len(b.rejects) > 0 {
			return errNotDirect
		}
		l.res.Read += b.read
		if err := write(b.vals); err != nil {
			return err
		}
	}
	// The parser stops early when the load is interrupted: that is not the
	// end of the file.
	return l.ctx.Err()
}

// itemsDirect writes the SKU rows of a first load into items, skus and
// triggers as they are read. The checks of the staged load hold by what it
// verifies on the way: every row of an item follows the item's first row
// (an item met again after another is a conflict on the items' key), with
// the same item-level fields and the same form (SKUs or none), and no SKU
// twice; every vendor is known (checked once the items are in, each
// vendor once). Rows and triggers are those the staged load writes, in
// the same order, stamped with the same change sequence.
func itemsDirect(l *loader, rr format.RowReader) error {
	seq, err := l.changeSeq()
	if err != nil {
		return err
	}
	w := &itemWriter{l: l, itemLayout: newItemLayout(l), stmts: &db.Prepared{Conn: l.conn},
		seen: map[string]bool{}, vendors: map[string]bool{}, lists: map[valuesList]string{}}
	defer w.stmts.Close()
	// The sequence number and the time (digits and punctuation only) are
	// the same on every row: written into the statement, they are not
	// bound again for each row.
	stamp := fmt.Sprintf("%d, ", seq)
	now := "'" + l.now + "', '" + l.now + "'"
	w.itemsInto = `items(item, ` + list(w.itemCols, "") + `change_seq, created_at, updated_at)`
	w.itemsMore = stamp + now
	w.skusInto = `skus(item, sku, ` + list(w.skuCols, "") + `change_seq, added_seq, created_at, updated_at)`
	w.skusMore = stamp + stamp + now
	if l.dialect == db.Postgres {
		w.copying = true
		stamp, now := strconv.FormatInt(seq, 10), db.CopyText(l.now)
		w.itemsTail = stamp + "\t" + now + "\t" + now
		w.skusTail = stamp + "\t" + stamp + "\t" + now + "\t" + now
		w.triggersTail = trigger.Added + "\tready\t" + now + "\t" + now
	}
	err = l.bulk(func() error {
		err := l.readDirect(rr, w.write)
		if err == nil {
			err = w.copyRows()
		}
		// The connection is the transaction's again only once the last
		// COPY is done, whatever ended the read.
		if werr := w.wait(); err == nil {
			err = werr
		}
		return err
	}, "items", "skus")
	if err != nil {
		return err
	}
	// The references (the vendor: kindSpec.refs) are checked on the
	// distinct vendors of the file, a few thousand, rather than on every
	// item written.
	var vendors []any
	for v := range w.vendors {
		vendors = append(vendors, v)
	}
	if err := l.knownVendors(vendors); err != nil {
		return err
	}
	l.res.Added = l.res.Read
	return nil
}

// itemWriter writes the batches of a direct first load of items.
type itemWriter struct {
	l *loader
	itemLayout
	itemsInto, itemsMore string
	skusInto, skusMore   string
	stmts                *db.Prepared
	cur                  []any // the first row of the item being read
	seen                 map[string]bool
	vendors              map[string]bool // the items' vendors but ''
	// lists holds the VALUES lists of the statements, each built once:
	// every batch but the last has the same number of rows.
	lists                       map[valuesList]string
	items, skus, triggers       []any
	itemRows, skuRows, trigRows int
	// copying is true on PostgreSQL, where the rows go in by COPY, a few
	// thousand at a time (copyRows), each row followed by its tail of
	// values (the change sequence and the times; the trigger's capture,
	// status and times).
	copying                           bool
	itemsTail, skusTail, triggersTail string
	// copied is the batch being copied, nil when none is; done gives it
	// back with the COPYs' error, and spare is a batch given back, whose
	// slices the next one reuses.
	copied, spare *copyBatch
	done          chan error
}

// copyBatch is a batch of a direct first load's rows on their way to
// PostgreSQL, and the buffer its COPY text is made in.
type copyBatch struct {
	items, skus, triggers       []any
	itemRows, skuRows, trigRows int
	buf                         []byte
}

// copyBatchRows is how many SKU rows a direct first load on PostgreSQL
// copies at a time: three COPYs (items, SKUs, triggers) a round trip
// each.
const copyBatchRows = 4096

// write checks and writes one batch of rows: the items they start, then
// their SKUs, then their triggers (a SKU's item is always in first).
func (w *itemWriter) write(vals []any) error {
	if !w.copying {
		w.items, w.skus, w.triggers = w.items[:0], w.skus[:0], w.triggers[:0]
		w.itemRows, w.skuRows, w.trigRows = 0, 0, 0
	}
	for start := 0; start < len(vals); start += w.width {
		row := vals[start : start+w.width]
		item, sku := row[w.item].(string), row[w.sku].(string)
		if w.cur == nil || item != w.cur[w.item].(string) {
			w.cur = row
			clear(w.seen)
			w.items = append(w.items, row[w.item])
			if v := row[w.vendor].(string); v != "" {
				w.vendors[v] = true
			}
			for _, p := range w.itemVals {
				w.items = append(w.items, row[p])
			}
			w.itemRows++
		} else {
			for _, p := range w.group {
				if row[p] != w.cur[p] {
					return errNotDirect
				}
			}
			if (sku == "") != (w.cur[w.sku].(string) == "") {
				return errNotDirect
			}
		}
		if w.seen[sku] {
			return errNotDirect
		}
		w.seen[sku] = true
		// The row's values as the parser boxed them: boxed again, each
		// would cost an allocation.
		w.skus = append(w.skus, row[w.item], row[w.sku])
		for _, p := range w.skuVals {
			w.skus = append(w.skus, row[p])
		}
		w.skuRows++
		w.triggers = append(w.triggers, row[w.item], row[w.sku])
		w.trigRows++
	}
	if w.copying {
		if w.skuRows < copyBatchRows {
			return nil
		}
		return w.copyRows()
	}
	if err := w.insert(w.itemsInto, w.itemsMore, w.itemRows, w.items); err != nil {
		return err
	}
	if err := w.insert(w.skusInto, w.skusMore, w.skuRows, w.skus); err != nil {
		return err
	}
	if w.trigRows == 0 {
		return nil
	}
	// The SKUs are new (skus was empty): none has a pending trigger, else
	// the insert fails and the staged load folds them.
	n, err := trigger.AddNew(w.l.ctx, w.stmts, trigger.CodeItem, `SELECT column1 AS record_key, column2 AS sub_key FROM (VALUES `+
		w.values(w.trigRows, 2, "")+`) AS v`, w.triggers...)
	if db.IsConstraint(err) {
		return errNotDirect
	}
	w.l.res.Triggers += n
	return err
}

// copyRows copies the rows written since the last copy: the items, then
// their SKUs, then their triggers, as insert and trigger.AddNew would
// insert them, but without binding each value of a statement (1,000,000
// SKU rows: the triggers' INSERTs were 5.8 s of the server's time, the
// SKUs' 4.9 s). A key that is there already fails the COPY as it fails
// the INSERT: the load goes staged.
//
// The COPYs run in a goroutine of their own, which has the connection to
// itself until wait: the next batch is read and checked meanwhile (the
// server's work on a batch took as long as the parse of the next, and
// each waited for the other).
func (w *itemWriter) copyRows() error {
	if !w.copying || w.skuRows == 0 {
		return nil
	}
	if err := w.wait(); err != nil {
		return err
	}
	if w.done == nil {
		w.done = make(chan error, 1)
	}
	b := w.spare
	if b == nil {
		b = &copyBatch{}
	}
	// The batch takes the rows written; the next rows go into the slices
	// of the batch given back.
	b.items, w.items = w.items, b.items[:0]
	b.skus, w.skus = w.skus, b.skus[:0]
	b.triggers, w.triggers = w.triggers, b.triggers[:0]
	b.itemRows, b.skuRows, b.trigRows = w.itemRows, w.skuRows, w.trigRows
	w.itemRows, w.skuRows, w.trigRows = 0, 0, 0
	w.l.res.Triggers += int64(b.trigRows)
	w.copied, w.spare = b, nil
	go func() {
		w.done <- w.copyBatch(b)
	}()
	return nil
}

// wait waits for the batch being copied, if any, and returns its error.
func (w *itemWriter) wait() error {
	if w.copied == nil {
		return nil
	}
	err := <-w.done
	w.spare, w.copied = w.copied, nil
	return err
}

// copyBatch copies the rows of b: the items, then the SKUs, then the
// triggers.
func (w *itemWriter) copyBatch(b *copyBatch) error {
	if err := w.copy(b, w.itemsInto, "", b.items, b.itemRows, w.itemsTail); err != nil {
		return err
	}
	if err := w.copy(b, w.skusInto, "", b.skus, b.skuRows, w.skusTail); err != nil {
		return err
	}
	return w.copy(b, `triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)`, trigger.CodeItem,
		b.triggers, b.trigRows, w.triggersTail)
}

// copy copies rows rows of args into into, each row's values after head
// and before tail (COPY text), made in b's buffer.
func (w *itemWriter) copy(b *copyBatch, into, head string, args []any, rows int, tail string) error {
	if rows == 0 {
		return nil
	}
	buf := b.buf[:0]
	width := len(args) / rows
	var err error
	for r := range rows {
		if buf, err = db.AppendCopyRow(buf, head, args[r*width:(r+1)*width], tail); err != nil {
			return err
		}
	}
	b.buf = buf
	err = db.PgxConn(w.l.conn, func(c *pgx.Conn) error {
		_, err := c.PgConn().CopyFrom(w.l.ctx, bytes.NewReader(buf), `COPY `+into+` FROM STDIN`)
		return err
	})
	if db.IsConstraint(err) {
		return errNotDirect
	}
	return err
}

// insert inserts rows rows of args into into, each row's values followed
// by more. A key that is there already is a record of the file met twice.
func (w *itemWriter) insert(into, more string, rows int, args []any) error {
	if rows == 0 {
		return nil
	}
	_, err := w.stmts.ExecContext(w.l.ctx, `INSERT INTO `+into+` VALUES `+w.values(rows, len(args)/rows, more), args...)
	if db.IsConstraint(err) {
		return errNotDirect
	}
	return err
}

// valuesList is a VALUES list of valueRows.
type valuesList struct {
	rows, width int
	more        string
}

// values is valueRows(rows, width, more), built once per load.
func (w *itemWriter) values(rows, width int, more string) string {
	k := valuesList{rows, width, more}
	v, ok := w.lists[k]
	if !ok {
		v = valueRows(rows, width, more)
		w.lists[k] = v
	}
	return v
}

// valueRows is the VALUES list of rows rows of width parameters, each
// followed by more when it is not empty.
func valueRows(rows, width int, more string) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",")
	if more != "" {
		one += ", " + more
	}
	one += ")"
	return strings.Join(slices.Repeat([]string{one}, rows), ",")
}

// knownVendors checks vendors, an item's vendor each, with the staged
// load's reference checks of items (kindSpec.refs, over the staged row s),
// a thousand at a time: errNotDirect when one is unknown, for the staged
// load to warn or reject.
func (l *loader) knownVendors(vendors []any) error {
	for len(vendors) > 0 {
		ask := vendors[:min(len(vendors), 1000)]
		vendors = vendors[len(ask):]
		for _, r := range l.k.refs {
			unknown, err := l.count(`SELECT count(*) FROM (SELECT 1 FROM (SELECT column1 AS vendor FROM (VALUES `+
				valueRows(len(ask), 1, "")+`) AS v) AS s WHERE `+r.cond+` LIMIT 1) AS x`, ask...)
			if err != nil {
				return err
			}
			if unknown > 0 {
				return errNotDirect
			}
		}
	}
	return nil
}

// itemLayout is where the values of an items file are in a parsed row.
type itemLayout struct {
	// width is a parsed row's number of values; item, sku, vendor, group
	// (the item-level columns), itemVals and skuVals the positions in it
	// of the values of each; itemCols and skuCols the columns the file
	// has.
	width, item, sku, vendor int
	group, itemVals, skuVals []int
	itemCols, skuCols        []string
}

func newItemLayout(l *loader) itemLayout {
	r := itemLayout{width: len(l.k.plan.cols) + 2, itemCols: l.given(itemCols), skuCols: l.given(skuCols)}
	pos := map[string]int{}
	for i, c := range l.k.plan.cols {
		pos[c.col] = i + 2 // after rec and src_line
	}
	r.item, r.sku, r.vendor = pos["item"], pos["sku"], pos["vendor"]
	for _, c := range itemCols {
		r.group = append(r.group, pos[c])
	}
	for _, c := range r.itemCols {
		r.itemVals = append(r.itemVals, pos[c])
	}
	for _, c := range r.skuCols {
		r.skuVals = append(r.skuVals, pos[c])
	}
	return r
}
