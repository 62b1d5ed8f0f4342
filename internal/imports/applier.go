package imports

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/trigger"
)

type stockKey struct{ item, sku, warehouse, location string }

type skuKey struct{ item, sku string }

// placeKey is a warehouse and location of one item/SKU's stock.
type placeKey struct{ warehouse, location string }

// balance is the stock of one item/SKU, warehouse and location as the
// transactions of a file change it; written back when the file is done,
// if the row is still as it was read (writeStock; read: the on hand then).
type balance struct {
	onHand, reserved, threshold int64
	read                        int64
	exists, dirty               bool
	// refused says a transaction was refused on this balance (negative
	// stock, a quantity out of range): on PostgreSQL the stock it was
	// refused on is checked when the file is done (checkRefused).
	refused bool
}

// skuState is all the applier knows of one item/SKU, so that a
// transaction finds it with one map lookup (the lookups of separate maps
// per fact were 15% of an import's CPU).
type skuState struct {
	key skuKey
	// read says the SKU's row and stock rows were read (readStock); exists
	// and stocked are what it found: the SKU, and stock rows of it.
	// pending says prefetch is about to read them.
	read, exists, stocked, pending bool
	// event is the inventory trigger capture the file causes, if any.
	event string
	// stock holds the balances by warehouse and location: few per SKU,
	// found by a scan. A map of one balance took 380 bytes, 60% of what
	// a SKU held (evict). Past scanned of them, places indexes them.
	stock  []placed
	places map[placeKey]int
}

// scanned is how many balances of a SKU balance finds by a scan.
const scanned = 8

// placed is a balance of a SKU and its warehouse and location.
type placed struct {
	placeKey
	b *balance
}

// applier applies the transactions of one file, in order, on balances it
// reads from the database on first use.
type applier struct {
	ctx    context.Context
	conn   *sql.Conn
	fileID int64
	o      *Options
	now    string

	skus  map[skuKey]*skuState
	byUPC map[string]*skuKey
	byRef map[string]*skuKey
	// whs holds the warehouses looked up: the name as first read, so
	// that the balances' keys share one string per warehouse, or "" for
	// an unknown one.
	whs map[string]string

	stmts   map[string]*sql.Stmt
	history []historyRow
	// histAll is the INSERT of historyPerStmt rows on SQLite, a statement
	// of the driver on conn's connection (see execHistory).
	histAll driver.Stmt
	named   []driver.NamedValue
	// copyHistory writes the history by COPY (PostgreSQL), from copyBuf.
	copyHistory bool
	copyBuf     []byte
	// w writes the history while the next rows are applied. On
	// PostgreSQL only when ownConn says that nothing but the applier uses
	// conn until finish (not an adapter, which has queries of its own):
	// the connection takes no query while a COPY is under way, and connMu
	// keeps the applier's lookups and the writer's COPY apart.
	w       *historyWriter
	ownConn bool
	connMu  sync.Mutex
	// reads is the connection of the applier's lookups and stock reads:
	// conn, or, while the history streams (stream), a second connection
	// of the pool (streamReads).
	reads *sql.Conn
	// stream is the COPY of the whole history on conn (PostgreSQL), open
	// from the writer's first rows to finish; the writer writes each
	// buffer's rows to it.
	stream *io.PipeWriter
	// streamDone is closed when the stream's COPY has ended; streamErr
	// is then its error.
	streamDone chan struct{}
	streamErr  error
	// closeReads gives the second connection back.
	closeReads func()
	// refused is the stock rows transactions were refused on, kept on
	// PostgreSQL only (checkRefused).
	refused []stockRow
	pg      bool
	// held counts the SKUs, balances and lookups held (evict); seq is the change
	// sequence of the stock rows written, once taken; eventsKept says
	// import_events holds captures.
	held       int
	seq        int64
	eventsKept bool
}

// historyWriter writes the history rows, in their order, in a goroutine
// of its own: on SQLite binding and inserting them is most of an import's
// work, on PostgreSQL the server's work on a COPY was time the applier
// waited; checking and applying the next transactions meanwhile takes
// them off its path.
type historyWriter struct {
	todo chan *historyBatch // rows to write
	free chan *historyBatch // batches written, to fill again
	done chan struct{}
	err  error // why it stopped, once done is closed
}

// historyBatch is history rows on their way to the writer. On SQLite
// named holds their values as the statement binds them, made by the
// applier's goroutine: the writer's binding and inserting is the longer
// path (made by the writer, the import of 1,000,000 transactions took
// 3-5% longer).
type historyBatch struct {
	rows  []historyRow
	named []driver.NamedValue
}

// send hands the history rows kept to the writer, which it starts on
// first use, and gives the applier an empty buffer.
func (a *applier) send() error {
	w := a.w
	if w == nil {
		w = &historyWriter{todo: make(chan *historyBatch, 1), free: make(chan *historyBatch, 2), done: make(chan struct{})}
		a.w = w
		go func() {
			defer close(w.done)
			for b := range w.todo {
				if w.err = a.writeRows(b); w.err != nil {
					return
				}
				select {
				case w.free <- b:
				default:
				}
			}
		}()
	}
	var b *historyBatch
	select {
	case b = <-w.free:
	default:
		b = &historyBatch{rows: make([]historyRow, 0, cap(a.history))}
	}
	// The batch takes the rows kept; the applier keeps the next in the
	// batch's emptied buffer.
	b.rows, a.history = a.history, b.rows[:0]
	if !a.copyHistory {
		b.named = appendNamed(b.named[:0], b.rows)
	}
	select {
	case w.todo <- b:
	case <-w.done:
		return w.err
	}
	return nil
}

// writeRows writes history rows for the writer.
func (a *applier) writeRows(b *historyBatch) error {
	if a.reads != a.conn {
		return a.streamRows(b.rows)
	}
	a.connMu.Lock()
	defer a.connMu.Unlock()
	if a.copyHistory {
		return a.copyHistoryRows(b.rows)
	}
	return a.execHistory(b.named, len(b.rows))
}

// wait lets the writer write what it was given, stops it, and returns
// why it failed. The applier's connection is its own again.
func (a *applier) wait() error {
	w := a.w
	if w == nil {
		return nil
	}
	a.w = nil
	close(w.todo)
	<-w.done
	err := w.err
	if a.stream != nil {
		// The end of the history: the COPY commits its rows to the
		// transaction, or says why it failed.
		a.stream.CloseWithError(err)
		<-a.streamDone
		a.stream = nil
		if err == nil {
			err = a.streamErr
		}
	}
	return err
}

// historyCols are the history values bound per transaction; the file id
// and the time are the same for a whole file and go in as literals.
const historyCols = 20

// historyRow is the history (inventory_txns) of one transaction, as the
// applier keeps it until it is written: typed, so that a row costs no
// allocation per value (a million rows of 20 values boxed into []any were
// 10-15 million allocations, and their collection a tenth of an import's
// CPU).
type historyRow struct {
	line                                   int64
	code, effect                           string
	item, sku, warehouse, location         string
	qty, before, after                     int64
	toItem, toSKU, toWarehouse, toLocation string
	// to says the transaction changed a second balance (to_*);
	// toBefore and toAfter are NULL without one.
	to                              bool
	toBefore, toAfter               int64
	reason, reference, date, userID string
}

// appendNamed appends the historyCols values of each of rows to vals, as
// the history's INSERT (historySQL) binds them.
func appendNamed(vals []driver.NamedValue, rows []historyRow) []driver.NamedValue {
	for i := range rows {
		vals = rows[i].appendNamed(vals)
	}
	return vals
}

// appendNamed appends the historyCols values of h to vals, numbered from
// len(vals)+1, an empty text as NULL (see historySQL).
func (h *historyRow) appendNamed(vals []driver.NamedValue) []driver.NamedValue {
	n := len(vals)
	text := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var toBefore, toAfter any
	if h.to {
		toBefore, toAfter = h.toBefore, h.toAfter
	}
	for i, v := range [historyCols]any{h.line, text(h.code), text(h.effect), text(h.item), text(h.sku), text(h.warehouse),
		text(h.location), h.qty, h.before, h.after, text(h.toItem), text(h.toSKU), text(h.toWarehouse), text(h.toLocation),
		toBefore, toAfter, text(h.reason), text(h.reference), text(h.date), text(h.userID)} {
		vals = append(vals, driver.NamedValue{Ordinal: n + i + 1, Value: v})
	}
	return vals
}

// appendCopy appends h as a row of copyHistorySQL in COPY's text format:
// file (the file id, or \N), h's values, then now.
func (h *historyRow) appendCopy(b []byte, file, now string) []byte {
	b = append(b, file...)
	b = appendInts(b, h.line)
	b = appendTexts(b, h.code, h.effect, h.item, h.sku, h.warehouse, h.location)
	b = appendInts(b, h.qty, h.before, h.after)
	b = appendTexts(b, h.toItem, h.toSKU, h.toWarehouse, h.toLocation)
	if h.to {
		b = appendInts(b, h.toBefore, h.toAfter)
	} else {
		b = append(b, "\t\\N\t\\N"...)
	}
	b = appendTexts(b, h.reason, h.reference, h.date, h.userID)
	b = append(b, '\t')
	b = append(b, now...)
	return append(b, '\n')
}

// appendInts appends each of vs to a row of COPY text, after a tab.
func appendInts(b []byte, vs ...int64) []byte {
	for _, v := range vs {
		b = strconv.AppendInt(append(b, '\t'), v, 10)
	}
	return b
}

// appendTexts appends each of vs to a row of COPY text, after a tab.
func appendTexts(b []byte, vs ...string) []byte {
	for _, v := range vs {
		b = db.AppendCopyText(append(b, '\t'), v)
	}
	return b
}

// historyPerStmt rows go into one INSERT of the history on SQLite,
// historyPerCopy into one COPY on PostgreSQL. Up to four buffers of them
// are alive while the history writer works beside the applying: at
// 10,000 rows a 1,000,000-line import peaked at 130-135 MiB, at 2,500 at
// 81-86 MiB, as fast (3.9-4.2 s).
const (
	historyPerStmt = 100
	historyPerCopy = 2500
)

func newApplier(ctx context.Context, conn *sql.Conn, fileID int64, o *Options) (*applier, error) {
	a := &applier{ctx: ctx, conn: conn, reads: conn, fileID: fileID, o: o, now: db.Now(),
		skus: map[skuKey]*skuState{}, byUPC: map[string]*skuKey{}, byRef: map[string]*skuKey{},
		whs: map[string]string{}, stmts: map[string]*sql.Stmt{}, pg: db.DialectOf(conn) == db.Postgres}
	a.copyHistory = a.pg
	if err := a.prepare(); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// prepare prepares the lookups on the connection of the reads.
func (a *applier) prepare() error {
	queries := map[string]string{
		"upc":       `SELECT item, sku FROM skus WHERE upc = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"ref":       `SELECT item, sku FROM skus WHERE retail_ref = ? AND deleted_at IS NULL ORDER BY item, sku LIMIT 2`,
		"warehouse": `SELECT 1 FROM warehouses WHERE warehouse = ?`,
	}
	for name, q := range queries {
		if st := a.stmts[name]; st != nil {
			st.Close()
		}
		st, err := a.reads.PrepareContext(a.ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", name, err)
		}
		a.stmts[name] = st
	}
	return nil
}

// streamReads has the applier read on a second connection of pool, so
// that the history can stream into conn in one COPY (PostgreSQL, the
// applier alone on conn): one COPY a buffer of rows waited for the
// server to take each one in, with nothing sent meanwhile. The reads see
// the same: the file writes nothing they read (skus, warehouses,
// inventory) before finish, which writes on conn after the COPY. With no
// second connection to have, the applier reads on conn, as an adapter's
// does. 1,000,000 transactions: 3.77 s -> 2.85 s (go tool trace: the
// applier had waited 1.2 s for the writer, the writer for the server).
func (a *applier) streamReads(pool *db.DB) {
	if !a.copyHistory || !a.ownConn || pool == nil {
		return
	}
	reads := pool.SpareConn(a.ctx)
	if reads == nil {
		return
	}
	a.reads = reads
	if err := a.prepare(); err != nil {
		a.reads = a.conn
		reads.Close()
		a.prepare()
		return
	}
	a.closeReads = func() { reads.Close() }
}

// streamRows writes history rows to the COPY of the whole history on
// conn, which the first call starts.
func (a *applier) streamRows(rows []historyRow) error {
	if a.stream == nil {
		pr, pw := io.Pipe()
		a.stream, a.streamDone = pw, make(chan struct{})
		go func() {
			defer close(a.streamDone)
			a.streamErr = db.PgxConn(a.conn, func(c *pgx.Conn) error {
				_, err := c.PgConn().CopyFrom(a.ctx, pr, copyHistorySQL)
				return err
			})
			// A COPY that failed reads no more: the writer stops.
			pr.CloseWithError(cmp.Or(a.streamErr, io.ErrClosedPipe))
		}()
	}
	if _, err := a.stream.Write(a.encodeHistory(rows)); err != nil {
		// The COPY's own error says why.
		<-a.streamDone
		return cmp.Or(a.streamErr, err)
	}
	return nil
}

func (a *applier) close() {
	a.wait()
	for _, st := range a.stmts {
		st.Close()
	}
	if a.closeReads != nil {
		a.closeReads()
	}
	if a.histAll != nil {
		a.conn.Raw(func(any) error { return a.histAll.Close() })
	}
}

// fail marks a database error, which fails the whole file.
func fail(err error) error { return &fatalError{err: db.Classify(err)} }

// state is the state of item/SKU k, created on first use.
func (a *applier) state(k skuKey) *skuState {
	s := a.skus[k]
	if s == nil {
		s = &skuState{key: k}
		a.skus[k] = s
		a.held++
	}
	return s
}

// resolve finds the item/SKU of a record: item and sku, else the UPC, else
// the retail reference. Its stock has been read when it returns no error.
// known is the state of item/SKU when the caller has it already (prefetch
// found it), or nil.
func (a *applier) resolve(known *skuState, item, sku, upc, ref string) (*skuState, error) {
	s := known
	switch {
	case s != nil:
	case item != "":
		s = a.state(skuKey{item, sku})
	default:
		var k skuKey
		var err error
		if upc != "" {
			k, err = a.lookup(a.byUPC, "upc", "UPC", upc)
		} else {
			k, err = a.lookup(a.byRef, "ref", "retail reference", ref)
		}
		if err != nil {
			return nil, err
		}
		s = a.state(k)
	}
	// A SKU's stock is read once: its balances may have changed since.
	if !s.read {
		if err := a.readStock([]*skuState{s}); err != nil {
			return nil, err
		}
	}
	if !s.exists {
		if s.key.sku == "" {
			return nil, fmt.Errorf("unknown item %s (without a SKU)", s.key.item)
		}
		return nil, fmt.Errorf("unknown item/SKU %s/%s", s.key.item, s.key.sku)
	}
	return s, nil
}

func (a *applier) lookup(cache map[string]*skuKey, stmt, what, v string) (skuKey, error) {
	k, seen := cache[v]
	if !seen {
		a.connMu.Lock()
		defer a.connMu.Unlock()
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
		a.held++
	}
	switch {
	case k == nil:
		return skuKey{}, fmt.Errorf("unknown %s %s", what, v)
	case k.item == "":
		return skuKey{}, fmt.Errorf("%s %s belongs to more than one item/SKU: give item and sku", what, v)
	}
	return *k, nil
}

// warehouse returns warehouse w as the applier keeps it. Comparing the
// balances' keys of one SKU is then mostly comparing a pointer (the
// lookups of a SKU's balances by warehouse strings read per record cost
// twice as much).
func (a *applier) warehouse(w string) (string, error) {
	name, seen := a.whs[w]
	if !seen {
		a.connMu.Lock()
		err := a.stmts["warehouse"].QueryRowContext(a.ctx, w).Scan(new(int))
		a.connMu.Unlock()
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return "", fail(err)
		}
		if err == nil {
			name = w
		}
		a.whs[w] = name
		a.held++
	}
	if name == "" {
		return "", fmt.Errorf("unknown warehouse %s", w)
	}
	return name, nil
}

// balance is the balance of the resolved SKU s in a warehouse and
// location.
func (s *skuState) balance(warehouse, location string) *balance {
	k := placeKey{warehouse, location}
	if len(s.stock) <= scanned {
		for i := range s.stock {
			if p := &s.stock[i]; p.placeKey == k {
				return p.b
			}
		}
	} else {
		if s.places == nil {
			s.places = make(map[placeKey]int, len(s.stock))
			for i, p := range s.stock {
				s.places[p.placeKey] = i
			}
		}
		if i, ok := s.places[k]; ok {
			return s.stock[i].b
		}
		s.places[k] = len(s.stock)
	}
	b := &balance{}
	s.stock = append(s.stock, placed{k, b})
	return b
}

// stockQuery reads the SKUs of a list of item/SKU pairs, with their stock
// rows if they have any.
const stockQuery = `SELECT k.item, k.sku, v.warehouse, v.location, v.on_hand, v.reserved, coalesce(v.threshold, 0)
FROM skus k LEFT JOIN inventory v ON v.item = k.item AND v.sku = k.sku WHERE k.deleted_at IS NULL AND (k.item, k.sku) IN (VALUES `

// prefetch reads the stock of the SKUs that the good records of a batch
// name by item and whose stock is not read yet, with one query for all of
// them: on PostgreSQL the round trip per SKU was what an import of many
// SKUs waited on. It keeps the state of each SKU it looks up in the
// record, where resolve finds it without looking it up again.
func (a *applier) prefetch(batch []checkedRecord) error {
	var unread []*skuState
	want := func(item, sku string) *skuState {
		if item == "" {
			return nil
		}
		s := a.state(skuKey{item, sku})
		if !s.read && !s.pending {
			s.pending = true
			unread = append(unread, s)
		}
		return s
	}
	for i := range batch {
		if batch[i].err != nil {
			continue
		}
		t := &batch[i].t
		t.from = want(t.row.Item, t.row.SKU)
		if t.effect == EffectItem {
			t.to = want(t.row.ToItem, t.row.ToSKU)
		}
	}
	return a.readStock(unread)
}

// readStock reads the balances of all the stock rows of the SKUs at
// once, and whether each exists: one round trip rather than one per SKU,
// warehouse and location. It runs once per SKU (skuState.read says it
// did). Nothing of the file is written before finish, so what it reads is
// the stock as it was before the file.
func (a *applier) readStock(skus []*skuState) error {
	if len(skus) == 0 {
		return nil
	}
	vals := make([]any, 0, 2*len(skus))
	for _, s := range skus {
		s.exists, s.stocked, s.stock, s.places = false, false, nil, nil
		vals = append(vals, s.key.item, s.key.sku)
	}
	a.connMu.Lock()
	defer a.connMu.Unlock()
	rows, err := a.reads.QueryContext(a.ctx, stockQuery+"(?, ?)"+strings.Repeat(", (?, ?)", len(skus)-1)+")", vals...)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k skuKey
		var warehouse, location sql.NullString
		var onHand, reserved sql.NullInt64
		var threshold int64
		if err := rows.Scan(&k.item, &k.sku, &warehouse, &location, &onHand, &reserved, &threshold); err != nil {
			return fail(err)
		}
		s := a.skus[k]
		if s == nil {
			continue // not asked for: the query compares bytewise
		}
		s.exists = true
		if warehouse.Valid {
			a.held++
			s.stocked = true
			// The warehouse as the applier keeps it, when it looked it up.
			wh := warehouse.String
			if w := a.whs[wh]; w != "" {
				wh = w
			}
			s.stock = append(s.stock, placed{placeKey{wh, location.String}, &balance{
				onHand: onHand.Int64, read: onHand.Int64, reserved: reserved.Int64, threshold: threshold, exists: true}})
		}
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	for _, s := range skus {
		s.read, s.pending = true, false
	}
	return nil
}

// change is one side of a transaction: a balance and its new on hand.
type change struct {
	sku           *skuState
	key           stockKey
	b             *balance
	before, after int64
}

// apply checks a transaction against the state and applies it to the
// balances and the history, or returns why it is rejected.
func (a *applier) apply(t txn) error {
	r := t.row
	from, err := a.resolve(t.from, r.Item, r.SKU, r.UPC, r.RetailRef)
	if err != nil {
		return err
	}
	wh, err := a.warehouse(r.Warehouse)
	if err != nil {
		return err
	}
	src := stockKey{from.key.item, from.key.sku, wh, r.Location}
	var changes [2]change
	n := 0
	add := func(s *skuState, k stockKey, delta int64, set bool) error {
		held := len(s.stock)
		b := s.balance(k.warehouse, k.location)
		a.held += len(s.stock) - held
		c := change{sku: s, key: k, b: b, before: b.onHand, after: delta}
		if !set {
			var err error
			if c.after, err = format.AddQuantity(b.onHand, delta); err != nil {
				a.refuse(k, b)
				return fmt.Errorf("on hand of %s/%s in %s %s (now %d) %+d: %w", k.item, k.sku, k.warehouse, loc(k.location), b.onHand, delta, err)
			}
		}
		// Available stock is a quantity too (docs/formats.md, "Numbers").
		if _, err := format.AddQuantity(c.after, -b.reserved); err != nil {
			a.refuse(k, b)
			return fmt.Errorf("available stock of %s/%s in %s %s (on hand %d less reserved %d): %w",
				k.item, k.sku, k.warehouse, loc(k.location), c.after, b.reserved, err)
		}
		changes[n] = c
		n++
		return nil
	}
	switch t.effect {
	case EffectAdjust:
		err = add(from, src, t.qty, false)
	case EffectOverlay:
		err = add(from, src, t.qty, true)
	case EffectReceipt:
		err = add(from, src, t.qty, false)
	case EffectReturn, EffectNegative, EffectSale:
		err = add(from, src, -t.qty, false)
	case EffectTransfer:
		dst := stockKey{from.key.item, from.key.sku, "", r.ToLocation}
		if dst.warehouse, err = a.warehouse(or(r.ToWarehouse, r.Warehouse)); err == nil {
			if err = add(from, src, -t.qty, false); err == nil {
				err = add(from, dst, t.qty, false)
			}
		}
	case EffectItem:
		var to *skuState
		if to, err = a.resolve(t.to, r.ToItem, r.ToSKU, "", ""); err != nil {
			return fmt.Errorf("to side: %w", err)
		}
		// check compares the fields as written; a side named by its UPC
		// or retail reference may be the other one (found in review: the
		// two changes of one balance took 62 to 67).
		if to == from {
			return fmt.Errorf("an item transfer to the same item/SKU changes nothing: both sides are %s/%s", from.key.item, from.key.sku)
		}
		dst := stockKey{to.key.item, to.key.sku, "", or(r.ToLocation, r.Location)}
		if dst.warehouse, err = a.warehouse(or(r.ToWarehouse, r.Warehouse)); err == nil {
			if err = add(from, src, -t.qty, false); err == nil {
				err = add(to, dst, t.qty, false)
			}
		}
	default:
		err = fmt.Errorf("transaction code %s has no effect %q", t.code, t.effect)
	}
	if err != nil {
		return err
	}
	for _, c := range changes[:n] {
		if c.after < 0 && c.after < c.before && !a.o.AllowNegative {
			a.refuse(c.key, c.b)
			return fmt.Errorf("on hand of %s/%s in %s %s would be %d (now %d): negative stock is not allowed (import.allow_negative_on_hand)",
				c.key.item, c.key.sku, c.key.warehouse, loc(c.key.location), c.after, c.before)
		}
	}
	for _, c := range changes[:n] {
		capture(c)
		c.b.onHand, c.b.dirty = c.after, true
	}
	h := historyRow{line: int64(t.line), code: t.code, effect: t.effect, item: src.item, sku: src.sku, warehouse: src.warehouse,
		location: src.location, qty: t.qty, before: changes[0].before, after: changes[0].after,
		reason: r.Reason, reference: r.Reference, date: r.Date, userID: r.User}
	if n == 2 {
		d := changes[1]
		h.toItem, h.toSKU, h.toWarehouse, h.toLocation = d.key.item, d.key.sku, d.key.warehouse, d.key.location
		h.to, h.toBefore, h.toAfter = true, d.before, d.after
	}
	a.history = append(a.history, h)
	return a.addHistory()
}

// refuse notes that a transaction was refused on the stock row k as the
// file saw it (balance b): on PostgreSQL, for checkRefused.
func (a *applier) refuse(k stockKey, b *balance) {
	if a.pg && !b.refused {
		b.refused = true
		a.refused = append(a.refused, stockRow{k, b})
	}
}

// checkRefused fails the file as busy if a stock row a transaction was
// refused on is no longer as the file read it (on PostgreSQL; SQLite's
// import holds the write lock from its start). A SKU's stock is read when
// the file first names it, and another host's import or order may commit
// between two such reads: a refusal decided on the stock before it, beside
// a change applied on the stock after it, is an outcome of neither order
// of the two (TestRefusalOnStockChangedMeanwhile), and a record refused
// then reads as a bad record (exit 2) that the next run would apply. The
// rows the file changes are checked the same way when written
// (writeStock). With the change counter held, as every writer of stock
// holds it from before it writes until it commits, the rows checked stay
// as they are until the file commits: they are checked once, before the
// file writes any (finish), or when it writes none (Run).
func (a *applier) checkRefused() error {
	if len(a.refused) == 0 {
		return nil
	}
	if err := catalog.HoldChangeCounter(a.ctx, a.conn); err != nil {
		return err
	}
	var rows stockColumns
	for _, k := range a.refused {
		rows.add(k)
	}
	var changed int64
	err := db.PgxConn(a.conn, func(c *pgx.Conn) error {
		return c.QueryRow(a.ctx, `SELECT count(*)
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS v(item, sku, warehouse, location, read, reserved)
  LEFT JOIN inventory i ON i.item = v.item AND i.sku = v.sku AND i.warehouse = v.warehouse AND i.location = v.location
WHERE coalesce(i.on_hand, 0) <> v.read OR coalesce(i.reserved, 0) <> v.reserved`,
			rows.item, rows.sku, rows.warehouse, rows.location, rows.read, rows.reserved).Scan(&changed)
	})
	if err != nil {
		return db.Classify(err)
	}
	if changed > 0 {
		return stockChanged()
	}
	a.refused = nil
	return nil
}

func loc(l string) string {
	if l == "" {
		return "(no location)"
	}
	return "location " + l
}

// capture applies the inventory threshold rule to one change.
func capture(c change) {
	avail := func(onHand int64) int64 { return onHand - c.b.reserved }
	if c.b.exists && !trigger.InventoryRule(avail(c.before), avail(c.after), c.b.threshold) {
		return
	}
	if c.sku.event != "" {
		return
	}
	// resolve read the SKU's stock rows before any change of it.
	c.sku.event = trigger.Changed
	if !c.sku.stocked {
		c.sku.event = trigger.Added
	}
}

// insertRows runs head VALUES row, row, ... tail for the values vals,
// width of them a row, many rows a statement: one round trip for hundreds
// of rows. row is the placeholders of one row (with literals of its own).
func (a *applier) insertRows(head, row string, width int, vals []any, tail string) (affected int64, err error) {
	// 500 rows of up to 5 values stay under SQLite's 32766 parameters.
	const perStmt = 500
	for len(vals) > 0 {
		n := min(perStmt, len(vals)/width)
		q := head + row + strings.Repeat(", "+row, n-1) + tail
		res, err := a.conn.ExecContext(a.ctx, q, vals[:n*width]...)
		if err != nil {
			return affected, err
		}
		r, _ := res.RowsAffected()
		affected += r
		vals = vals[n*width:]
	}
	return affected, nil
}

// stockRow is a stock row of the file, and its balance.
type stockRow struct {
	stockKey
	b *balance
}

// writeStock writes the balances of the stock rows the file changed
// (dirty, in key order).
//
// On PostgreSQL another import or an order may have changed a row since
// the file read it, and the file's checks (negative stock), its
// history's before and after and its inventory triggers' threshold rule
// were worked out from what it read. Each row is written only if it is
// still as the file read it (on hand, reserved, threshold), and a row
// the file adds only if it is still not there; otherwise the file fails,
// whole, as busy, and the next run applies it to the stock as it is
// then. Writing the balances worked out from the read wiped the other's
// change out; writing the file's changes added to the rows kept the
// stock right but not the checks and triggers (found in review: two
// files of -21 and -20 from 62 crossed a threshold of 30 with no
// trigger). An UPDATE that meets a row another transaction holds waits
// for it and then checks the row's newest version. SQLite's import holds
// the write lock from its start: no row changes meanwhile.
func (a *applier) writeStock(dirty []stockRow, seq int64) error {
	if db.DialectOf(a.conn) != db.Postgres {
		row := fmt.Sprintf("(?, ?, ?, ?, ?, 0, '%s', %d)", a.now, seq)
		const into = `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at, change_seq) VALUES `
		vals := make([]any, 0, 5*len(dirty))
		for _, k := range dirty {
			vals = append(vals, k.item, k.sku, k.warehouse, k.location, k.b.onHand)
		}
		_, err := a.insertRows(into, row, 5, vals, ` ON CONFLICT(item, sku, warehouse, location) DO UPDATE SET on_hand = excluded.on_hand,
  updated_at = excluded.updated_at, change_seq = excluded.change_seq`)
		return db.Classify(err)
	}
	// The rows there when read, with the balance they were read with, and
	// the rows that were not, to add: each set in one statement, its
	// columns as arrays. 50,000 rows as UPDATEs from VALUES lists of 250
	// rows took 1.9 s, each list joined by a scan of the stock; from
	// unnest the planner looks each row up by the key.
	var found, added stockColumns
	for _, k := range dirty {
		if k.b.exists {
			found.add(k)
		} else {
			added.add(k)
		}
	}
	var updated, inserted int64
	err := db.PgxConn(a.conn, func(c *pgx.Conn) error {
		if len(found.item) > 0 {
			tag, err := c.Exec(a.ctx, `UPDATE inventory SET on_hand = v.on_hand, updated_at = $9, change_seq = $10
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
  AS v(item, sku, warehouse, location, on_hand, read, reserved, threshold)
WHERE inventory.item = v.item AND inventory.sku = v.sku AND inventory.warehouse = v.warehouse AND inventory.location = v.location
  AND inventory.on_hand = v.read AND inventory.reserved = v.reserved AND coalesce(inventory.threshold, 0) = v.threshold`,
				found.item, found.sku, found.warehouse, found.location, found.onHand, found.read, found.reserved, found.threshold, a.now, seq)
			if err != nil {
				return err
			}
			updated = tag.RowsAffected()
		}
		if len(added.item) > 0 {
			tag, err := c.Exec(a.ctx, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at, change_seq)
SELECT item, sku, warehouse, location, on_hand, 0, $6, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[])
  AS v(item, sku, warehouse, location, on_hand)
ON CONFLICT(item, sku, warehouse, location) DO NOTHING`, added.item, added.sku, added.warehouse, added.location, added.onHand, a.now, seq)
			if err != nil {
				return err
			}
			inserted = tag.RowsAffected()
		}
		return nil
	})
	if db.IsForeignKeyViolation(err) {
		// foreign_key_violation: a SKU or warehouse the file adds stock
		// to was deleted (a catalog load) since the applier read it.
		return stockChanged()
	}
	if err != nil {
		return db.Classify(err)
	}
	if updated < int64(len(found.item)) || inserted < int64(len(added.item)) {
		return stockChanged()
	}
	return nil
}

// addedMeanwhile makes C (changed) the inventory trigger capture of each
// SKU the file found without stock rows (A, added) that has some now, on
// PostgreSQL: another host's import, order or load added them since the
// file read the SKU (TestFirstStockOfSKUAtOnce). One after the other, the
// file would have found them and captured C; with both A, an export that
// sent the first's add between the two commits sent a second add. It
// runs with the change counter held, taken by every writer of stock
// before it writes and held until it commits: every writer before the
// file has committed, every other waits for it. The rows it adds to
// such a SKU are another host's only: the file's own are written after.
func (a *applier) addedMeanwhile() error {
	if !a.pg {
		return nil
	}
	var items, skus []string
	for _, s := range a.skus {
		if s.event == trigger.Added {
			items, skus = append(items, s.key.item), append(skus, s.key.sku)
		}
	}
	if len(items) == 0 {
		return nil
	}
	return db.Classify(db.PgxConn(a.conn, func(c *pgx.Conn) error {
		rows, err := c.Query(a.ctx, `SELECT DISTINCT v.item, v.sku FROM unnest($1::text[], $2::text[]) AS v(item, sku)
WHERE EXISTS (SELECT 1 FROM inventory i WHERE i.item = v.item AND i.sku = v.sku)`, items, skus)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k skuKey
			if err := rows.Scan(&k.item, &k.sku); err != nil {
				return err
			}
			a.skus[k].event = trigger.Changed
		}
		return rows.Err()
	}))
}

// stockColumns is stock rows of writeStock, a slice per column.
type stockColumns struct {
	item, sku, warehouse, location    []string
	onHand, read, reserved, threshold []int64
}

func (c *stockColumns) add(k stockRow) {
	c.item, c.sku = append(c.item, k.item), append(c.sku, k.sku)
	c.warehouse, c.location = append(c.warehouse, k.warehouse), append(c.location, k.location)
	c.onHand, c.read = append(c.onHand, k.b.onHand), append(c.read, k.b.read)
	c.reserved, c.threshold = append(c.reserved, k.b.reserved), append(c.threshold, k.b.threshold)
}

// stockChanged is the error of a file whose stock another transaction
// changed since the file read it.
func stockChanged() error {
	return fmt.Errorf("%w: stock this file changes, or refused a transaction on, was changed since it read it (by another import, an order or a load that committed meanwhile); "+
		"nothing of the file is applied, and the next run applies it to the stock as it is then", db.ErrBusy)
}

func (a *applier) historySQL(rows int) string {
	// A transaction that comes from no file (a return) has no file id.
	file := "NULL"
	if a.fileID > 0 {
		file = fmt.Sprint(a.fileID)
	}
	// execHistory binds an empty text as NULL, cheaper to bind than a
	// string: the text columns turn it back into ''.
	vals := make([]string, historyCols)
	for i := range vals {
		vals[i] = "?"
		if historyText[i] {
			vals[i] = "coalesce(?, '')"
		}
	}
	one := fmt.Sprintf("(%s, %s, '%s')", file, strings.Join(vals, ", "), a.now)
	return `INSERT INTO inventory_txns(file_id, line, code, effect, item, sku, warehouse, location, quantity,
  before_on_hand, after_on_hand, to_item, to_sku, to_warehouse, to_location, to_before, to_after,
  reason, reference, txn_date, "user", applied_at) VALUES ` + strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// addHistory writes the history rows kept once there are enough of them
// for a statement (SQLite) or a COPY (PostgreSQL).
func (a *applier) addHistory() error {
	per := historyPerStmt
	if a.copyHistory {
		per = historyPerCopy
	}
	if len(a.history) < per {
		return nil
	}
	var err error
	if a.copyHistory && !a.ownConn {
		err = a.flushHistory()
	} else {
		err = a.send()
	}
	if err != nil {
		return fail(err)
	}
	return nil
}

// flushHistory writes the history rows kept: on PostgreSQL by COPY, which
// takes thousands of rows in one stream; on SQLite, where a statement
// costs no round trip, by multi-row INSERTs.
func (a *applier) flushHistory() error {
	// The writer's rows come first: they are the earlier ones.
	err := a.wait()
	n := len(a.history)
	switch {
	case err != nil:
	case n == 0:
		return nil
	case a.copyHistory:
		err = a.copyHistoryRows(a.history)
	default:
		a.named = appendNamed(a.named[:0], a.history)
		err = a.execHistory(a.named, n)
	}
	if err != nil {
		return db.Classify(err)
	}
	a.history = a.history[:0]
	return nil
}

// historyText says which of the historyCols values are text columns.
var historyText = [historyCols]bool{false, true, true, true, true, true, true, false, false, false,
	true, true, true, true, false, false, true, true, true, true}

// execHistory inserts n history rows, their values named, on SQLite through the
// driver's statement itself: database/sql's conversion of every argument
// and binding an empty string as text were a quarter of the cost of the
// history (1,000,000 rows of 20 values inserted alone: 4.4 s of CPU
// through database/sql, 3.4 s this way).
func (a *applier) execHistory(named []driver.NamedValue, n int) error {
	return a.conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare", dc)
		}
		st := a.histAll
		if n != historyPerStmt || st == nil {
			var err error
			if st, err = prep.PrepareContext(a.ctx, a.historySQL(n)); err != nil {
				return err
			}
			if n == historyPerStmt {
				a.histAll = st
			} else {
				defer st.Close()
			}
		}
		exec, ok := st.(driver.StmtExecContext)
		if !ok {
			return fmt.Errorf("driver statement %T cannot execute", st)
		}
		_, err := exec.ExecContext(a.ctx, named)
		return err
	})
}

// copyHistorySQL is the COPY of copyHistoryRows: the file id, the
// historyCols values of a transaction and the time applied.
const copyHistorySQL = `COPY inventory_txns(file_id, line, code, effect, item, sku, warehouse, location, quantity,
  before_on_hand, after_on_hand, to_item, to_sku, to_warehouse, to_location, to_before, to_after,
  reason, reference, txn_date, "user", applied_at) FROM STDIN`

// copyHistoryRows copies the history rows of rows into inventory_txns in
// COPY's text format, written here: pgx's CopyFrom found the encoding of
// each of the 22 values of a row by its type, a fifth of the client's
// CPU of an import.
func (a *applier) copyHistoryRows(rows []historyRow) error {
	b := a.encodeHistory(rows)
	return db.PgxConn(a.conn, func(c *pgx.Conn) error {
		_, err := c.PgConn().CopyFrom(a.ctx, bytes.NewReader(b), copyHistorySQL)
		return err
	})
}

// encodeHistory is the history rows of rows in COPY's text format
// (copyHistorySQL), in copyBuf.
func (a *applier) encodeHistory(rows []historyRow) []byte {
	// A transaction that comes from no file (a return) has none.
	file := `\N`
	if a.fileID > 0 {
		file = strconv.FormatInt(a.fileID, 10)
	}
	b := a.copyBuf[:0]
	for i := range rows {
		b = rows[i].appendCopy(b, file, a.now)
	}
	a.copyBuf = b
	return b
}

// writeBack writes what the file did to the SKUs held so far: the rest of
// the history, the changed balances and the inventory trigger captures,
// which wait in import_events for finish to fold them.
func (a *applier) writeBack() error {
	if err := a.flushHistory(); err != nil {
		return err
	}
	// The stock rows written carry the transaction's change sequence,
	// which the partner inventory exports read. They go in key order (on
	// SQLite the order of the writes; on PostgreSQL the arrays of
	// writeStock, whose plan may still visit the rows in another order:
	// two imports that deadlock on them end as two that meet on a row
	// changed since it was read, one of them busy, exit 75).
	var dirty []stockRow
	events := 0
	for _, s := range a.skus {
		for _, p := range s.stock {
			if p.b.dirty {
				dirty = append(dirty, stockRow{stockKey{s.key.item, s.key.sku, p.warehouse, p.location}, p.b})
			}
		}
		if s.event != "" {
			events++
		}
	}
	slices.SortFunc(dirty, func(x, y stockRow) int {
		return cmp.Or(cmp.Compare(x.item, y.item), cmp.Compare(x.sku, y.sku), cmp.Compare(x.warehouse, y.warehouse), cmp.Compare(x.location, y.location))
	})
	if len(dirty) > 0 {
		if a.seq == 0 {
			var err error
			if a.seq, err = catalog.NextChangeSeq(a.ctx, a.conn); err != nil {
				return db.Classify(err)
			}
		}
		if err := a.addedMeanwhile(); err != nil {
			return err
		}
		if err := a.checkRefused(); err != nil {
			return err
		}
		if err := a.writeStock(dirty, a.seq); err != nil {
			return err
		}
	}
	if events == 0 {
		return nil
	}
	if !a.eventsKept {
		steps := []string{`DROP TABLE IF EXISTS import_events`,
			`CREATE TEMP TABLE import_events (record_key TEXT NOT NULL, sub_key TEXT NOT NULL, capture TEXT NOT NULL)`}
		for _, q := range steps {
			if _, err := a.conn.ExecContext(a.ctx, q); err != nil {
				return err
			}
		}
		a.eventsKept = true
	}
	vals := make([]any, 0, events*3)
	for _, s := range a.skus {
		if s.event != "" {
			vals = append(vals, s.key.item, s.key.sku, s.event)
		}
	}
	_, err := a.insertRows(`INSERT INTO import_events VALUES `, "(?, ?, ?)", 3, vals, "")
	return err
}

// maxHeld is how many SKUs, balances, UPCs, retail references and
// warehouses an applier holds: past it, it writes them back and reads
// those the file names again anew (evict). A variable for the tests.
var maxHeld = 1 << 16

// evict writes back the SKUs held and lets them go, when there are more
// than maxHeld of them and their balances. Held until the file was done,
// 1,000,000 transactions of 632,770 SKUs peaked at 750 MiB; written back,
// at 104-108 MiB (and took 42-60 s instead of 104 s). The bench's 10,000 SKUs in
// 5 warehouses are 60,000 of them: never written back before the end.
func (a *applier) evict() error {
	if a.held < maxHeld {
		return nil
	}
	if err := a.writeBack(); err != nil {
		return err
	}
	clear(a.skus)
	clear(a.byUPC)
	clear(a.byRef)
	clear(a.whs)
	a.held = 0
	if a.reads != a.conn {
		// The second connection does not see the stock the file wrote:
		// the applier reads in the file's transaction from now on.
		a.reads = a.conn
		if err := a.prepare(); err != nil {
			return fail(err)
		}
		a.closeReads()
		a.closeReads = nil
	}
	return nil
}

// finish writes the rest of the history, the changed balances and the
// inventory triggers, and returns how many triggers were created or folded.
func (a *applier) finish() (int64, error) {
	if err := a.writeBack(); err != nil {
		return 0, err
	}
	if !a.eventsKept {
		return 0, nil
	}
	defer a.conn.ExecContext(context.Background(), `DROP TABLE IF EXISTS import_events`)
	// A SKU written back (evict) before it changed again has a capture of
	// each part: A if its first was.
	return trigger.Fold(a.ctx, a.conn, trigger.CodeInventory, `SELECT record_key, sub_key, min(capture) AS capture FROM import_events GROUP BY record_key, sub_key`)
}
