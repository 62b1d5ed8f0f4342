package export

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

// triggerSet says which triggers a file's records are read from, as a
// condition on the triggers of alias (where).
type triggerSet struct {
	where func(alias string) string
	// byFile says the set is the triggers an export file claimed, which
	// an index finds by the file's id alone (triggers_file): looked up
	// there by record, each lookup reads all of them.
	byFile bool
}

// claimedBy is the set of triggers export file fileID claimed.
func claimedBy(fileID int64) triggerSet {
	return triggerSet{where: func(alias string) string { return alias + ".file_id = " + strconv.FormatInt(fileID, 10) }, byFile: true}
}

// claimable is the set of triggers a claim of code with limit takes.
func claimable(code string, limit int) triggerSet {
	return triggerSet{where: func(alias string) string { return trigger.Claimable(alias, code, limit) }}
}

// BesideArg is the argument with which posbridge runs as the reading
// process of besideRead (cli.Main hands it to ServeBeside).
const BesideArg = "__export-read-beside"

// besideRead writes a file's records while the file's claim runs: on
// SQLite in a process of its own, on PostgreSQL on a connection of its
// own.
//
// The claim rewrites every trigger it takes and the read joins them to
// their records: one after the other on one connection, 2.5 s and 3.8 s
// of CPU for 1,000,000 SKU triggers on SQLite (on PostgreSQL 5.7 s of
// the server's for the claim, 4.6 s for the read), where the read needs
// nothing of the claim but the set of triggers it takes. The reader reads
// in a snapshot of the state the claim starts from, in which
// trigger.Claimable is true of the triggers the claim takes:
//
//   - On SQLite the claim's transaction holds the write lock from its
//     BEGIN IMMEDIATE, so no other connection commits until it does; the
//     reader's snapshot, taken while the claim's transaction is open and
//     before it commits (started), is the state the claim starts from.
//   - On PostgreSQL the claim's transaction is REPEATABLE READ
//     (db.WithSnapshotTx) and the reader reads in its snapshot
//     (db.ExportSnapshot). The claim takes a subset of what the reader
//     reads: it passes over the triggers another transaction holds (SKIP
//     LOCKED), and a trigger changed since the snapshot (a load folding a
//     change into it, so its record too may have changed) fails the claim
//     with a serialization failure, after which the file is claimed
//     again without a reader (exportFile).
//
// The file is delivered only if the claim commits and the reader wrote
// the records and triggers it claimed (result), which, the claim's being
// a subset, means the same ones; otherwise it is read again from what the
// file claimed, as without it. A run killed before its claim commits
// leaves a temporary file that no file of the ledger names: removeStrays
// takes it away (the reading process dies with the run: Pdeathsig).
//
// On SQLite a process, not a second connection: modernc.org/sqlite is
// built with SQLITE_ENABLE_MEMORY_MANAGEMENT, so all the connections of a
// process share one page cache, and the claim, dirtying ~200 MB of
// trigger pages, recycled the reader's pages as fast as it read them (2.6
// million page reads against 150,000, the read's CPU 4.1 -> 7.1 s).
type besideRead struct {
	stop  func()        // stops the reader
	ready chan struct{} // closed once the reader has its snapshot, or is gone
	done  chan struct{} // closed when the reader has ended; out is its result
	out   besideOut
}

// besideRequest is what the reading process is asked.
type besideRequest struct {
	Database string  `json:"database"`
	Kind     string  `json:"kind"`
	Path     string  `json:"path"`
	Options  Options `json:"options"`
}

// besideOut is what the reader did.
type besideOut struct {
	W        written `json:"written"`
	Records  int64   `json:"records"`  // the records its snapshot holds
	Triggers int64   `json:"triggers"` // the triggers of those records
	Skus     int64   `json:"skus"`     // SKUs with a trigger in the records written
	Err      string  `json:"error,omitempty"`
}

// besideMin is the fewest triggers a claim takes for its file to be read
// beside it.
var besideMin = 20000

// besideUsed is told, for each file read beside its claim, whether that
// read was delivered; tests count.
var besideUsed = func(delivered bool) {}

// besideWanted says whether the next file of kind k is to be read beside
// its claim: one of besideMin triggers or more. A process costs tens of
// milliseconds to start and open the database, a connection and a
// snapshot a few: a small claim is read after it (a file per message
// would start one per record).
func besideWanted(ctx context.Context, d *db.DB, conn *sql.Conn, k *kind, o *Options) bool {
	if !o.ReadBeside || !o.plainCreate || d == nil {
		return false
	}
	if db.DialectOf(conn) == db.SQLite && !besideSupported {
		return false
	}
	var n int
	err := conn.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM triggers t WHERE `+trigger.Claimable("t", k.code, o.perFile())+` LIMIT ?) AS n`,
		besideMin).Scan(&n)
	return err == nil && n >= besideMin
}

// readBeside starts the reader of the file of kind k written to path, in
// the claim's transaction open on conn (besideWanted said so), or returns
// nil when it could not start. An error is one of the claim's
// transaction, which is then of no more use.
func readBeside(ctx context.Context, d *db.DB, conn *sql.Conn, k *kind, o *Options, path string) (*besideRead, error) {
	if db.DialectOf(conn) == db.Postgres {
		return readBesideConn(ctx, d, conn, k, o, path)
	}
	req, err := json.Marshal(besideRequest{Database: d.Path, Kind: k.name, Path: path, Options: *o})
	if err != nil {
		return nil, nil
	}
	b := &besideRead{ready: make(chan struct{}), done: make(chan struct{})}
	var cmd *exec.Cmd
	started := make(chan bool)
	go func() {
		// The reader is killed when the thread that started it ends
		// (Pdeathsig): this one lives until the reader has ended.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(b.done)
		var ready bool
		defer func() {
			if !ready {
				close(b.ready)
			}
		}()
		cmd = besideCommand()
		cmd.Stdin = bytes.NewReader(req)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		started <- err == nil
		if err != nil {
			b.out.Err = err.Error()
			return
		}
		r := bufio.NewReader(stdout)
		if line, err := r.ReadString('\n'); err == nil && line == "snapshot\n" {
			ready = true
			close(b.ready)
		}
		rest, _ := io.ReadAll(r)
		err = cmd.Wait()
		if jerr := json.Unmarshal(rest, &b.out); jerr != nil && b.out.Err == "" {
			b.out.Err = fmt.Sprintf("reader: %v (%v) %s", jerr, err, strings.TrimSpace(stderr.String()))
		}
	}()
	if !<-started {
		<-b.done
		return nil, nil
	}
	b.stop = func() { cmd.Process.Kill() }
	return b, nil
}

// readBesideConn is readBeside on PostgreSQL: the reader is a goroutine
// on a connection of the pool, in the snapshot of the claim's
// transaction.
func readBesideConn(ctx context.Context, d *db.DB, conn *sql.Conn, k *kind, o *Options, path string) (*besideRead, error) {
	rc := d.SpareConn(ctx)
	if rc == nil {
		return nil, nil
	}
	// A statement that fails aborts the claim's transaction.
	id, err := db.ExportSnapshot(ctx, conn)
	if err != nil {
		rc.Close()
		return nil, fmt.Errorf("export the claim's snapshot: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	b := &besideRead{stop: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	opts := *o
	go func() {
		defer close(b.done)
		var once sync.Once
		ready := func() { once.Do(func() { close(b.ready) }) }
		defer ready()
		defer rc.Close()
		if err := db.BeginInSnapshot(rctx, rc, id); err != nil {
			b.out.Err = err.Error()
			return
		}
		defer rc.ExecContext(context.Background(), "ROLLBACK")
		ready()
		// As serialRead: no parallel workers.
		if _, err := rc.ExecContext(rctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			b.out.Err = err.Error()
			return
		}
		b.out = readClaimable(rctx, rc, k, &opts, path)
	}()
	return b, nil
}

// besideStart is how long the claim, done, waits for the reader's
// snapshot (it comes in milliseconds) before it gives the reader up: the
// claim holds the write lock meanwhile.
const besideStart = 10 * time.Second

// started waits until the reader has its snapshot, or is gone, or is
// given up (then the file is read after the claim).
func (b *besideRead) started() {
	if b == nil {
		return
	}
	select {
	case <-b.ready:
	case <-time.After(besideStart):
		b.stop()
		<-b.done
	}
}

// result waits for the reader and says whether it wrote the file f that
// the claim committed: the triggers it claimed, every one found. The
// claim takes a subset of the triggers of the reader's snapshot
// (besideRead), so as many is the same triggers, and the reader's
// records are the file's. Every one found: a record not found fails the
// reader's file (claimShort), but a SKU of an item is one SKU less (its
// trigger gone without a tombstone), which the file read again after
// the claim puts in error. Counted by the SKUs found alone, one gone and
// one passed over by the claim (held by another transaction) made the
// same number of another set.
func (b *besideRead) result(k *kind, f File) (w written, records int64, ok bool) {
	<-b.done
	b.stop()
	out := b.out
	ok = out.Err == "" && out.Triggers == f.Triggers && (k.code != trigger.CodeItem || out.Skus == out.Triggers)
	return out.W, out.Records, ok
}

// discard stops the reader and removes what it wrote to path's temporary
// file, when the claim did not commit or the file is read again.
func (b *besideRead) discard(path string) {
	if b == nil {
		return
	}
	b.stop()
	<-b.done
	if path != "" {
		os.Remove(tmpPath(path))
	}
}

// ServeBeside is the reading process of besideRead: it reads the request
// from in, writes "snapshot" to out once its read transaction has its
// snapshot, writes the file, and then what it did (besideOut) as JSON.
func ServeBeside(ctx context.Context, in io.Reader, out io.Writer) error {
	var req besideRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return err
	}
	k, ok := kinds[req.Kind]
	if !ok {
		return fmt.Errorf("unknown export kind %q", req.Kind)
	}
	res := serveBeside(ctx, req, k, out)
	return json.NewEncoder(out).Encode(res)
}

func serveBeside(ctx context.Context, req besideRequest, k *kind, out io.Writer) (res besideOut) {
	d, err := db.Open(ctx, req.Database, db.Options{NoMigrate: true})
	if err != nil {
		return besideOut{Err: err.Error()}
	}
	defer d.Close()
	snap, err := beginSnapshot(ctx, d)
	if err != nil {
		return besideOut{Err: err.Error()}
	}
	defer snap.close()
	// The first read fixes the snapshot.
	var n int
	if err := snap.conn.QueryRowContext(ctx, `SELECT count(*) FROM sequences`).Scan(&n); err != nil {
		return besideOut{Err: err.Error()}
	}
	if _, err := io.WriteString(out, "snapshot\n"); err != nil {
		return besideOut{Err: err.Error()}
	}
	return readClaimable(ctx, snap.conn, k, &req.Options, req.Path)
}

// readClaimable writes to path the file of kind k whose records are those
// of the triggers a claim would take in the snapshot open on conn.
func readClaimable(ctx context.Context, conn *sql.Conn, k *kind, o *Options, path string) (res besideOut) {
	fail := func(err error) besideOut {
		res.Err = err.Error()
		return res
	}
	o.defaults(k)
	var err error
	if res.Records, res.Triggers, err = trigger.ClaimableCounts(ctx, conn, k.code, o.perFile()); err != nil {
		return fail(err)
	}
	if res.Records == 0 {
		return res
	}
	res.W, err = writeFile(k, o, path, res.Records, func(emit func(node) error) error {
		return k.records(ctx, conn, claimable(k.code, o.perFile()), o, func(n node) error {
			res.Skus += skuTriggers(n)
			return emit(n)
		})
	})
	if err != nil {
		return fail(err)
	}
	return res
}

// removeStrays removes the temporary files of kind in dir that no file of
// the ledger names: those of a reader beside a claim that never committed
// (besideRead). The kind's lock is held and its unfinished files are
// recovered, so no run writes one now.
func removeStrays(ctx context.Context, conn *sql.Conn, k *kind, dir string) error {
	temps, _ := filepath.Glob(filepath.Join(dir, "."+k.name+"_*.tmp"))
	for _, t := range temps {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(t), "."), ".tmp")
		if !kindFile(k.name, name) {
			continue
		}
		path, err := filepath.Abs(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		var n int
		err = conn.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE direction = 'out' AND kind = ? AND path = ?`, k.name, path).Scan(&n)
		if err != nil {
			return db.Classify(err)
		}
		if n == 0 {
			os.Remove(t)
		}
	}
	return nil
}
