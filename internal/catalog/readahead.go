package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
)

// readAheadOff, set by tests, makes a reload read each batch's stored
// rows on the load's connection, to compare the two ways.
var readAheadOff bool

// readAhead reads the stored rows of a reload's batches (itemMerge) on a
// second connection of the database, one batch ahead: while the load's
// connection compares a batch and writes what differs, the next batch's
// stored rows are read. Reading them was half of a reload's time on the
// load's connection.
//
// What it reads is what the load's connection would read at that point.
// On SQLite in WAL mode:
//   - The load's write transaction began with BEGIN IMMEDIATE before the
//     read transaction here took its snapshot (its first read, in
//     startReadAhead): no other writer commits until the load ends, so the
//     snapshot is the database as the load's transaction found it. The
//     load's own writes are not committed, and not seen here.
//   - The batches' keys ascend strictly (itemMerge.add refuses others):
//     a batch's range of items, first key to last, lies after every key of
//     the batches before it. The load's connection writes, before it
//     compares a batch, only rows of the items of the batches before it:
//     their items and SKUs (upserts by key, which change no other row: no
//     SQL trigger, no cascade on update); besides them only tables not
//     read here: sequences (the change sequence), triggers and the
//     temporary table gone. It deletes nothing until the last batch is
//     compared (deleteItemsGone), and the read transaction ends before
//     the load commits. So the stored items and SKUs of a batch's range
//     are the same in the snapshot and on the load's connection.
//
// On PostgreSQL the read-ahead reads without a transaction (READ
// COMMITTED, as the load's statements): what other sessions have
// committed, less the load's own writes, which only touch the batches
// before (as above). The load's transaction holds the lock of its kind
// (applyAlone) from before the first read to its end, so no other load
// of items commits meanwhile. The only other writer of items and SKUs is
// trigger.PurgeTombstones (after an export's file, trigger purge, giving a
// file back), which deletes tombstones: a
// tombstone read ahead and purged before its batch is compared reads as
// a row that is not there would (a SKU in the file is added either way,
// one not in it was not live), so it makes no difference.
//
// Not in SQLite's other journal modes (errNotWAL).
//
// 1,000,000 rows, 1% changed, on PostgreSQL: 3.45 s -> 3.37 s alone; the
// reads were round trips of batches of 256 rows, which the merge waited
// for (go tool trace); with batches of pgMergeRows, 2.33 s (--force of
// the same file 3.12 s -> 1.80 s).
type readAhead struct {
	conn   *sql.Conn
	reader storedReader
	// todo takes the batches to read, in order; done gives them back
	// read, in the same order. Each holds all the merge has sent and not
	// taken back, so that neither side waits for room.
	todo, done chan *itemBatch
	cancel     context.CancelFunc
	begun      bool // the read transaction
	// cacheSize is the connection's cache_size, set back by close when
	// cacheSet.
	cacheSize int64
	cacheSet  bool
}

// startReadAhead opens the read transaction of a reload's read-ahead on a
// second connection, with the statements of main (the load's reader);
// nil when the reload reads on its own connection: not SQLite in WAL
// mode, no connection free, or the transaction could not begin.
func startReadAhead(l *loader, main storedReader) *readAhead {
	if readAheadOff || l.pool == nil {
		return nil
	}
	conn := l.pool.SpareConn(l.ctx)
	if conn == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(l.ctx)
	r := &readAhead{conn: conn, cancel: cancel, todo: make(chan *itemBatch, readAheadBatches+1), done: make(chan *itemBatch, readAheadBatches+1),
		reader: storedReader{ctx: ctx, stmts: &db.Prepared{Conn: conn}, width: main.width, readItems: main.readItems, readSkus: main.readSkus}}
	if err := r.begin(); err != nil {
		if l.opts.Debug != nil {
			l.opts.Debug("read-ahead: none, the stored rows are read on the load's connection: " + err.Error())
		}
		r.close()
		return nil
	}
	go r.run()
	if l.opts.Debug != nil {
		l.opts.Debug("read-ahead: the stored rows are read on a second connection")
	}
	return r
}

// readAheadBatches is how many batches the read-ahead may read beyond the
// one the merge compares: more than one evens out batches that take long
// to read (an item of many SKUs) or to compare and write (a million rows,
// 1% changed: 3.49 s against 3.60 s with one).
const readAheadBatches = 4

// errNotWAL keeps a reload from reading ahead: in SQLite's other journal
// modes a reader's lock keeps the load from writing the database file (a
// cache spill), and the load's lock the reader from reading.
var errNotWAL = errors.New("the database is not in WAL mode")

// readAheadCacheKiB is the page cache of the read-ahead's connection:
// it reads each range once, and a cache of the pool's size (db.Options)
// took 8 MiB more memory, none less time.
const readAheadCacheKiB = 1024

// begin checks the journal mode, makes the connection's cache small and
// takes the read transaction's snapshot, on SQLite; on PostgreSQL each
// read is a statement of its own.
func (r *readAhead) begin() error {
	if db.DialectOf(r.conn) == db.Postgres {
		return nil
	}
	ctx := r.reader.ctx
	var mode string
	if err := r.conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return err
	}
	if mode != "wal" {
		return errNotWAL
	}
	if err := r.conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&r.cacheSize); err != nil {
		return err
	}
	r.cacheSet = true
	if _, err := r.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = -%d`, readAheadCacheKiB)); err != nil {
		return err
	}
	// Not under ctx: the driver reports a cancel that came during the
	// statement as its error even when SQLite ran it, and the connection
	// would go back to the pool inside a transaction that close does not
	// end, swallowing the next user's autocommit writes (found in review).
	// A deferred BEGIN takes no lock and does not wait.
	if _, err := r.conn.ExecContext(context.Background(), db.SnapshotStatement(r.conn)); err != nil {
		return err
	}
	r.begun = true
	// The snapshot is taken by the first read, now.
	var one int
	if err := r.conn.QueryRowContext(ctx, `SELECT 1 FROM items LIMIT 1`).Scan(&one); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	return nil
}

// run reads the batches of todo until it is closed.
func (r *readAhead) run() {
	defer close(r.done)
	for b := range r.todo {
		b.err = r.reader.readStored(b)
		r.done <- b
	}
}

// stop ends the read-ahead, whether or not the merge took every batch
// back (a load that stops early does not), and gives the connection back
// to the pool.
func (r *readAhead) stop() {
	r.cancel()
	close(r.todo)
	for range r.done {
	}
	r.close()
}

// close ends the read transaction and gives the connection back as it
// was; one that cannot be set back is not used again.
func (r *readAhead) close() {
	r.cancel()
	r.reader.stmts.Close()
	ctx := context.Background()
	var err error
	if r.begun {
		_, err = r.conn.ExecContext(ctx, `ROLLBACK`)
	}
	if err == nil && r.cacheSet {
		_, err = r.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA cache_size = %d`, r.cacheSize))
	}
	if err != nil {
		r.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	r.conn.Close()
}
