package transfer

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Result says what a push or pull did with each file.
type Result struct {
	Site   string       `json:"site"`
	DryRun bool         `json:"dry_run,omitempty"`
	Files  []FileResult `json:"files"`
	Done   int          `json:"done"`
	Would  int          `json:"would,omitempty"`
	Skip   int          `json:"skipped"`
	Failed int          `json:"failed"`
	// Rejected counts the records an http site refused.
	Rejected int `json:"rejected,omitempty"`

	lost error // the first file lost to an unreachable site
}

// FileResult is one file of a run. Status is done, skipped or failed, or
// would for a dry run; Reason says why a file was skipped or failed.
type FileResult struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Rejected counts the file's records an http site refused.
	Rejected int `json:"rejected,omitempty"`

	// lost is set when the file failed because the site could not be
	// reached, after the retries.
	lost error
}

// stat reads the file to send: its size goes into fr, or why it cannot
// be sent into fr.Reason (it cannot be read, or it is not a regular file:
// a named pipe would block the send). ok is false when it cannot.
func (fr *FileResult) stat(local string) (info os.FileInfo, ok bool) {
	info, err := os.Stat(local)
	switch {
	case err != nil:
		fr.Reason = err.Error()
	case !info.Mode().IsRegular():
		fr.Reason = "not a regular file"
	default:
		fr.Size = info.Size()
		return info, true
	}
	return nil, false
}

func (r *Result) add(f FileResult) {
	if f.lost != nil && r.lost == nil {
		r.lost = f.lost
	}
	r.Rejected += f.Rejected
	switch f.Status {
	case "done":
		r.Done++
	case "skipped":
		r.Skip++
	case "failed":
		r.Failed++
	case "would":
		r.Would++
	}
	r.Files = append(r.Files, f)
}

// err is the error of a run in which some files failed.
func (r *Result) err() error {
	if r.Failed == 0 {
		return nil
	}
	return fmt.Errorf("%s: %d of %d files failed", r.Site, r.Failed, len(r.Files))
}

// errOn is err, but when the site's connection was lost during the run
// the error says so and wraps ErrUnreachable: the run may be retried.
func (r *Result) errOn(site Site) error {
	err := r.err()
	if err == nil {
		return nil
	}
	if r.lost != nil {
		return fmt.Errorf("%v: %w", err, r.lost)
	}
	if b, ok := site.(interface{ Broken() error }); ok {
		if berr := b.Broken(); berr != nil {
			return fmt.Errorf("%v: %w", err, berr)
		}
	}
	return err
}

// lockSite takes the site's lock: two runs of one site never overlap, so a
// file is never fetched twice.
func lockSite(lockDir, site string) (*fsx.Lock, error) {
	l, err := fsx.TryLock(filepath.Join(lockDir, "site-"+site+".lock"), 0)
	if errors.Is(err, fsx.ErrLocked) {
		return nil, fmt.Errorf("site %s: %w (%v)", site, ErrBusy, err)
	}
	return l, err
}

// startRun begins a push or pull of site: its result, the statements of
// its ledger, and (unless a dry run) the site's lock; release gives both
// back. The lock file keeps out the runs of this host; on PostgreSQL a
// session lock keeps out those of the other hosts sharing the database.
func startRun(ctx context.Context, d *db.DB, site, lockDir string, dryRun bool) (res *Result, st *stmts, release func(), err error) {
	var lock *fsx.Lock
	unlockHosts := func() {}
	if !dryRun {
		if lock, err = lockSite(lockDir, site); err != nil {
			return nil, nil, nil, err
		}
		if unlockHosts, err = lockSiteAcrossHosts(ctx, d, site); err != nil {
			lock.Unlock()
			return nil, nil, nil, err
		}
	}
	st = newStmts(d)
	return &Result{Site: site, DryRun: dryRun, Files: []FileResult{}}, st, func() {
		st.Close()
		unlockHosts()
		if lock != nil {
			lock.Unlock()
		}
	}, nil
}

// siteLockWait is how long a run waits for the site's lock across hosts
// before it gives up (ErrBusy, exit 75). The lock is its holder's server
// session's, which the server ends only once it notices the client gone:
// a run started right after one was killed met the dead run's lock, as a
// run of another host, for a few milliseconds (the crash tests on
// PostgreSQL, now and then).
var siteLockWait = 3 * time.Second

// lockSiteAcrossHosts takes the site's lock among the hosts that share a
// PostgreSQL database, on a connection of its own held for the run; it
// does nothing on SQLite.
func lockSiteAcrossHosts(ctx context.Context, d *db.DB, site string) (unlock func(), err error) {
	if d.Dialect != db.Postgres {
		return func() {}, nil
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, db.Classify(err)
	}
	release, err := db.LockSession(ctx, conn, "site "+site, time.Now().Add(siteLockWait))
	if err != nil {
		conn.Close()
		if errors.Is(err, db.ErrBusy) {
			return nil, fmt.Errorf("site %s: %w (a run on another host)", site, ErrBusy)
		}
		return nil, err
	}
	return func() {
		release()
		conn.Close()
	}, nil
}

// copyCounted copies src to dst and returns the byte count and sha256.
func copyCounted(dst io.Writer, src io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), src)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// copySized is copyCounted for a source of known size: a destination
// that reads for itself (an sftp file) is told the size, so pkg/sftp
// writes a large file with several requests in flight.
func copySized(dst io.Writer, src io.Reader, size int64) (int64, string, error) {
	h := sha256.New()
	r := sizedReader{io.TeeReader(src, h), size}
	var n int64
	var err error
	if rf, ok := dst.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(dst, r)
	}
	return n, hex.EncodeToString(h.Sum(nil)), err
}

type sizedReader struct {
	io.Reader
	n int64
}

func (r sizedReader) Size() int64 { return r.n }

// Retry says how often a file lost to an unreachable site is tried again.
type Retry struct {
	// Retries is the number of further tries after the first.
	Retries int
	// Backoff is the wait before the first retry; it doubles after each
	// (at most 30s).
	Backoff time.Duration
}

// do runs f, and while it fails with ErrUnreachable and retries are left,
// waits, reconnects the site (when it can) and runs f again.
func (rt Retry) do(ctx context.Context, site Site, f func() error) error {
	wait := rt.Backoff
	for attempt := 0; ; attempt++ {
		err := f()
		if err == nil || !errors.Is(err, ErrUnreachable) || attempt >= rt.Retries {
			return err
		}
		rc, ok := site.(interface{ Reconnect() error })
		if !ok {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		if wait *= 2; wait > 30*time.Second {
			wait = 30 * time.Second
		}
		// A failed reconnect is an attempt too: the next try fails fast.
		if rerr := rc.Reconnect(); rerr != nil && !errors.Is(rerr, ErrUnreachable) {
			return rerr
		}
	}
}

// inParallel runs do for units 0..n-1, at most parallel at once, and
// returns their results in unit order. Each of the parallel workers writes
// the ledger through a worker of st of its own, whose held write is
// committed before inParallel returns. Units not started when ctx ends are
// left out.
func inParallel(ctx context.Context, st *stmts, parallel, n int, do func(w *worker, i int) []FileResult) [][]FileResult {
	if parallel < 1 {
		parallel = 1
	}
	out := make([][]FileResult, n)
	next := make(chan int)
	var wg sync.WaitGroup
	workers := min(parallel, n)
	st.group.join(workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer st.group.leave()
			w := &worker{stmts: st}
			for i := range next {
				out[i] = do(w, i)
			}
			w.finish()
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return out
}

// mtimeKey is how a modification time is stored in the ledger.
func mtimeKey(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// stmts runs the ledger's statements prepared once per run: with many
// small files, parsing the same SQL for each row costs as much as the
// transfer. It satisfies db.Querier. Reads go to the pool; writes go one
// at a time to a connection of the run's own: parallel files writing
// through the pool opened a connection (reading the schema and preparing
// the statement again) for each write beyond the pool's two idle ones,
// which cost more than the writes.
type stmts struct {
	d  *db.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt

	// wmu guards w, the writes' connection, taken at the first write.
	wmu sync.Mutex
	w   db.Prepared
	// group gathers the parallel workers' writes (writeGrouped).
	group commitGroup

	// ahead holds rows read ahead (readAhead), by remote path; nil for a
	// path without one. It is filled before the workers start.
	ahead map[string]*ledger.Transfer
}

// readAhead reads the newest ledger row of each remote path a run is
// about to move, one after the other before the files go. Read by each
// file while the run writes, each read began by reloading the pages the
// writes had changed: 5 to 7% of a push's or pull's CPU with 2,000 small
// files. The run holds the site's lock, so only its own files change
// these rows; a path that comes twice is left out, as its second file
// must see the row its first one wrote.
func (s *stmts) readAhead(ctx context.Context, site, direction string, remotes []string) error {
	n := map[string]int{}
	for _, r := range remotes {
		n[r]++
	}
	s.ahead = make(map[string]*ledger.Transfer, len(remotes))
	for _, r := range remotes {
		if n[r] > 1 {
			continue
		}
		t, found, err := ledger.LastTransfer(ctx, s, site, direction, r)
		if err != nil {
			return err
		}
		s.ahead[r] = nil
		if found {
			s.ahead[r] = &t
		}
	}
	return nil
}

// lastTransfer is ledger.LastTransfer, from the rows read ahead when they
// have the path.
func (s *stmts) lastTransfer(ctx context.Context, site, direction, remote string) (ledger.Transfer, bool, error) {
	if t, ok := s.ahead[remote]; ok {
		if t == nil {
			return ledger.Transfer{}, false, nil
		}
		return *t, true, nil
	}
	return ledger.LastTransfer(ctx, s, site, direction, remote)
}

func newStmts(d *db.DB) *stmts { return &stmts{d: d, m: map[string]*sql.Stmt{}} }

func (s *stmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[query]; ok {
		return st, nil
	}
	st, err := s.d.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s.m[query] = st
	return st, nil
}

// ExecContext runs a write on the run's connection; it is committed when
// it returns, as on the pool.
func (s *stmts) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execOn(ctx, s.write, query, args)
}

// InsertID runs an INSERT ... RETURNING id on the run's connection, as
// ExecContext runs a write (ledger.Writer).
func (s *stmts) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	return insertOn(ctx, s.write, query, args)
}

// execOn runs query with write, which runs a function on the connection.
//
// A cancel stops a run between its ledger writes, not within one: the
// statements are short, and a cancel in the middle of one makes pgx close
// the run's only write connection, failing every later write of the run,
// the other workers' done rows with them.
func execOn(ctx context.Context, write func(context.Context, func(*db.Prepared) error) error, query string, args []any) (res sql.Result, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx = context.WithoutCancel(ctx)
	err = write(ctx, func(p *db.Prepared) error {
		res, err = p.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// insertOn is execOn for an INSERT ... RETURNING id.
func insertOn(ctx context.Context, write func(context.Context, func(*db.Prepared) error) error, query string, args []any) (id int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx)
	err = write(ctx, func(p *db.Prepared) error {
		id, err = p.InsertID(ctx, query, args...)
		return err
	})
	return id, err
}

// write runs fn with the run's connection, one write at a time.
func (s *stmts) write(ctx context.Context, fn func(p *db.Prepared) error) error {
	err, _ := s.writeWith(ctx, nil, fn)
	return err
}

// writeWith runs fn, with h's write before it in one transaction when h
// is not nil (fn may be nil), one write at a time. When that transaction
// fails each is run again on its own, so each error is its own: err is
// fn's, herr h's.
func (s *stmts) writeWith(ctx context.Context, h *heldWrite, fn func(p *db.Prepared) error) (err, herr error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.takeConn(ctx); err != nil {
		return err, err
	}
	if h == nil {
		return fn(&s.w), nil
	}
	both := func() error {
		if err := h.write(h.ctx, &s.w); err != nil {
			return err
		}
		if fn != nil {
			return fn(&s.w)
		}
		return nil
	}
	if db.WithTx(h.ctx, s.w.Conn, true, both) == nil {
		return nil, nil
	}
	if herr = h.write(h.ctx, &s.w); fn != nil {
		err = fn(&s.w)
	}
	return err, herr
}

// takeConn takes the run's write connection at the first write; wmu is
// held.
func (s *stmts) takeConn(ctx context.Context) error {
	if s.w.Conn != nil {
		return nil
	}
	conn, err := s.d.Conn(ctx)
	if err != nil {
		return err
	}
	s.w.Conn = conn
	return nil
}

// inTx runs fn in one transaction on the run's connection.
func (s *stmts) inTx(ctx context.Context, fn func(p *db.Prepared) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.takeConn(ctx); err != nil {
		return err
	}
	return db.WithTx(ctx, s.w.Conn, true, func() error { return fn(&s.w) })
}

// worker is one parallel worker's writer to the run's ledger. A file's
// last write (its row done) and what must follow its commit (moving a
// pushed file to sent/, a pull's --after) are held, and committed in one
// transaction with the worker's next write, or at its end, and with the
// other workers' writes (writeGrouped): a commit costs about as much as
// its statements. A run killed while a write is held leaves the file as
// one killed right before its done row, which the next run finishes
// (docs/transfers.md, "Recovery after a kill").
type worker struct {
	*stmts
	held *heldWrite
}

// heldWrite is a held write; then runs once it is committed, or with the
// error that kept it from being. sync, when not nil, is synced before the
// write is committed.
type heldWrite struct {
	ctx   context.Context
	sync  *groupSync
	write func(ctx context.Context, w ledger.Writer) error
	then  func(err error)
}

// hold holds write, and then, until the worker's next write or its end.
// The write is made even when ctx ends meanwhile (a run interrupted once
// its last files are sent): it records what has happened already.
func (w *worker) hold(ctx context.Context, write func(ctx context.Context, w ledger.Writer) error, then func(err error)) {
	w.holdSynced(ctx, nil, write, then)
}

// holdSynced is hold for a write that may be committed only once what
// sync makes durable is: sync runs right before the commit, once for
// the writes committed together, so files placed in one folder at about
// the same time share one folder sync.
func (w *worker) holdSynced(ctx context.Context, sync *groupSync, write func(ctx context.Context, w ledger.Writer) error, then func(err error)) {
	w.finish()
	w.held = &heldWrite{ctx: context.WithoutCancel(ctx), sync: sync, write: write, then: then}
}

// finish commits the held write, if any, without a write of its own.
func (w *worker) finish() {
	if h := w.held; h != nil {
		w.held = nil
		_, herr := w.stmts.writeGrouped(h.ctx, h, nil, nil)
		h.then(herr)
	}
}

// syncedWriter is the worker as a ledger.Writer whose writes commit only
// once sync has made what they record durable.
type syncedWriter struct {
	w    *worker
	sync *groupSync
}

func (s syncedWriter) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execOn(ctx, func(ctx context.Context, fn func(*db.Prepared) error) error { return s.w.writeSynced(ctx, s.sync, fn) }, query, args)
}

func (s syncedWriter) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	return insertOn(ctx, func(ctx context.Context, fn func(*db.Prepared) error) error { return s.w.writeSynced(ctx, s.sync, fn) }, query, args)
}

// ExecContext runs a write on the run's connection, committed with the
// held write (ledger.Writer).
func (w *worker) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return execOn(ctx, w.write, query, args)
}

// InsertID is ExecContext for an INSERT ... RETURNING id.
func (w *worker) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	return insertOn(ctx, w.write, query, args)
}

// write runs fn on the run's connection in one transaction with the held
// write (and the other workers' writes), and then what follows that.
func (w *worker) write(ctx context.Context, fn func(p *db.Prepared) error) error {
	return w.writeSynced(ctx, nil, fn)
}

// writeSynced is write for a write that may be committed only once what
// sync makes durable is (sync runs right before the commit, shared by the
// writes committed together); when sync fails, fn is not run and its
// error is sync's.
func (w *worker) writeSynced(ctx context.Context, sync *groupSync, fn func(p *db.Prepared) error) error {
	h := w.held
	w.held = nil
	err, herr := w.stmts.writeGrouped(ctx, h, fn, sync)
	if h != nil {
		h.then(herr)
	}
	return err
}

func (s *stmts) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.get(ctx, query)
	if err != nil {
		// A failed prepare shows in the row's Scan.
		return s.d.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *stmts) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := s.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Close releases the prepared statements and the run's connection.
func (s *stmts) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.m {
		st.Close()
	}
	s.m = nil
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.w.Close()
	if s.w.Conn != nil {
		s.w.Conn.Close()
		s.w.Conn = nil
	}
}

// groupSync runs a sync (of a folder) for callers that each need one
// started after their own change: concurrent callers share one, so
// parallel downloads into one folder do not each pay for a folder sync.
type groupSync struct {
	sync func() error

	mu      sync.Mutex
	cond    *sync.Cond
	asked   uint64 // callers so far
	covered uint64 // callers a finished sync covers
	running bool
	err     error
}

// Sync returns once a sync started after the call has finished: every
// change the caller made before calling is then durable.
func (g *groupSync) Sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.asked++
	me := g.asked
	for g.covered < me {
		if g.running {
			g.cond.Wait()
			continue
		}
		// This sync starts now, after every caller counted so far.
		g.running = true
		upTo := g.asked
		g.mu.Unlock()
		err := g.sync()
		g.mu.Lock()
		g.running = false
		g.covered, g.err = upTo, err
		g.cond.Broadcast()
	}
	return g.err
}
