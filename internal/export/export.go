package export

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Options tune an export run.
type Options struct {
	Format     string // xml (default) or csv
	Dir        string // output folder; default <Outbox>/<kind>
	Outbox     string // the outbox folder
	LockDir    string // where the per-kind lock files live
	LockWait   time.Duration
	MaxRecords int // records per file; 0 means one file
	Marker     bool
	DryRun     bool
	Source     string
	Target     string
	Company    int
	RunID      int64
	// ExcludeNonAllocatable leaves non-allocatable warehouses out of
	// inventory files.
	ExcludeNonAllocatable bool
	// Classes selects the customer classes of the mass download.
	Classes []string
	// Since makes an engagement feed a resend of what changed at or after
	// this UTC timestamp (YYYY-MM-DDThh:mm:ssZ), leaving the watermark.
	Since string
	// Framing is how XML files of the trigger kinds and the mass customer
	// download are framed: FramingBatch (the default) or FramingOracle.
	Framing string
	// FilePerMessage writes each Message of the Oracle framing to a file
	// of its own.
	FilePerMessage bool
	// LostHost is a host given up for good: the files it wrote and did
	// not finish, not in this host's outbox, are undone, their records
	// sent again (recoverFiles).
	LostHost string
	// FormulaGuard quotes the cells of a partner export's unmapped report,
	// which is read in spreadsheets, that a spreadsheet would run as
	// formulas (csv.formula_guard). The export files themselves carry the
	// data unchanged.
	FormulaGuard bool
	// ReadBeside reads a large file's records beside its claim
	// (besideRead): on SQLite in a process of its own, which the posbridge
	// binary serves (ServeBeside), on PostgreSQL on a second connection;
	// the CLI sets it.
	ReadBeside bool `json:"-"`
	// create opens a file for writing; tests replace it to fail writes.
	create func(path string, perm os.FileMode) (io.WriteCloser, error)
	// plainCreate says create is the default one, which a reading process
	// beside the claim (ReadBeside) does as well.
	plainCreate bool
	// claimed is told how many triggers each file claimed, before its
	// records are read after the claim (Run sets it).
	claimed func(triggers int64)
}

// File is one file written (or, in a dry run, planned).
type File struct {
	// Kind is set for the files of the engagement feed, which has four.
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name"`
	Path     string `json:"path"`
	Records  int64  `json:"records"`
	Triggers int64  `json:"triggers"`
	SHA256   string `json:"sha256,omitempty"`
	Size     int64  `json:"size,omitempty"`
}

// Result says what a run did.
type Result struct {
	Kind  string `json:"kind"`
	Files []File `json:"files"`
	// Recovered counts files of an earlier, dead run that this run finished
	// (Completed) or gave back to the queue (Abandoned).
	Completed int64 `json:"recovered_completed"`
	Abandoned int64 `json:"recovered_abandoned"`
	// Unfinished counts, in a dry run, the files a real run would recover.
	Unfinished int64 `json:"unfinished,omitempty"`
	// Missing counts triggers put in error because their record is gone.
	Missing int64 `json:"missing"`
	DryRun  bool  `json:"dry_run,omitempty"`
	// Ready is what a dry run found to export.
	Ready        int64 `json:"ready_triggers,omitempty"`
	ReadyRecords int64 `json:"ready_records,omitempty"`
	// Watermarks are, for the engagement feed, the largest change
	// sequence number each file kind has sent after the run (absent
	// before its first feed).
	Watermarks map[string]int64 `json:"watermarks,omitempty"`
}

// XML framings.
const (
	// FramingBatch is one Message per file with posbridge's envelope
	// attributes (company, created, sequence, count) around a wrapper of
	// the records.
	FramingBatch = "batch"
	// FramingOracle is one Message per record with only source, target and
	// type, as Oracle's generic downloads send them: under a Messages root
	// that states the count, or one Message a file.
	FramingOracle = "oracle"
)

// oracleRoot is the root element of a file of several Oracle-framed
// messages.
const oracleRoot = "Messages"

// oracle says whether the XML files are in Oracle's framing.
func (o *Options) oracle() bool { return o.Format == "xml" && o.Framing == FramingOracle }

// perFile is the most records a file holds: one with a file per message,
// else MaxRecords (0: no limit).
func (o *Options) perFile() int {
	if o.oracle() && o.FilePerMessage {
		return 1
	}
	return o.MaxRecords
}

// checkFraming refuses framing options that do not go together.
func (o *Options) checkFraming() error {
	switch o.Framing {
	case "", FramingBatch:
		if o.FilePerMessage {
			return errors.New("a file per message goes with the oracle framing")
		}
	case FramingOracle:
	default:
		return fmt.Errorf("unknown framing %q: want batch or oracle", o.Framing)
	}
	return nil
}

// ErrBusy means another export of the same kind holds the lock.
var ErrBusy = errors.New("another export of this kind is running")

// Status values of out files in the ledger; the trigger package defines
// those of an unfinished file, as its claimed triggers follow them.
const (
	fileWriting   = trigger.FileWriting
	fileWritten   = trigger.FileWritten
	fileComplete  = "complete"
	fileAbandoned = "abandoned"
)

func (o *Options) defaults(k *kind) {
	if o.Format == "" {
		o.Format = "xml"
	}
	if o.Dir == "" {
		o.Dir = kindDir(o.Outbox, k.name)
	}
	if o.Source == "" {
		o.Source = "POSBRIDGE"
	}
	if o.Target == "" {
		o.Target = "POS"
	}
	if o.Company <= 0 {
		o.Company = 1
	}
	if o.create == nil {
		o.create = func(path string, perm os.FileMode) (io.WriteCloser, error) {
			return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm)
		}
		o.plainCreate = true
	}
}

// Run exports the ready triggers of one kind.
func Run(ctx context.Context, d *db.DB, kindName string, o Options) (*Result, error) {
	k, ok := kinds[kindName]
	if !ok {
		return nil, fmt.Errorf("unknown export kind %q", kindName)
	}
	if o.Format != "" && o.Format != "xml" && o.Format != "csv" {
		return nil, fmt.Errorf("unknown format %q: want xml or csv", o.Format)
	}
	if err := o.checkFraming(); err != nil {
		return nil, err
	}
	o.defaults(k)
	conn, res, end, err := begin(ctx, d, k, &o)
	if err != nil {
		return res, err
	}
	defer end()
	if o.DryRun {
		return res, plan(ctx, conn, k, &o, res)
	}
	var checked, analyzed bool
	// On PostgreSQL the read of a file's records is planned by the
	// statistics of triggers.file_id, which the claim has just changed: a
	// large claim against statistics that say "no trigger has this file"
	// gets index lookups by the hundred thousand and a sort on disk (300,000
	// triggers: 3.2 s against 1.3 s once analyzed). The first large claim
	// of a run read after the claim brings them up to date (db.Analyze:
	// nothing on SQLite); a read beside the claim reads no file_id.
	// Statistics only speed the read: a database that fails here fails the
	// read that follows, which reports it.
	o.claimed = func(triggers int64) {
		if !analyzed && triggers >= 1000 {
			analyzed = true
			d.Analyze(ctx, "triggers")
		}
	}
	for {
		f, err := exportFile(ctx, d, conn, k, &o, &checked, &res.Missing)
		if err != nil || f == nil {
			return res, err
		}
		res.Files = append(res.Files, *f)
		if o.perFile() <= 0 {
			return res, nil
		}
	}
}

// begin takes the kind's lock, so runs of one kind never overlap, and a
// connection, and finishes what a dead run of the kind left behind (a dry
// run only counts it). end releases both.
func begin(ctx context.Context, d *db.DB, k *kind, o *Options) (conn *sql.Conn, res *Result, end func(), err error) {
	res = &Result{Kind: k.name, DryRun: o.DryRun, Files: []File{}}
	deadline := time.Now().Add(o.LockWait)
	busy := fmt.Errorf("export %s: %w (waited %s)", k.name, ErrBusy, o.LockWait)
	lock, err := fsx.TryLock(filepath.Join(o.LockDir, "export-"+k.name+".lock"), o.LockWait)
	if err != nil {
		if errors.Is(err, fsx.ErrLocked) {
			err = busy
		}
		return nil, res, nil, err
	}
	conn, err = d.Conn(ctx)
	if err != nil {
		lock.Unlock()
		return nil, res, nil, err
	}
	unlock, err := lockAcrossHosts(ctx, conn, k.name, deadline)
	if err != nil {
		conn.Close()
		lock.Unlock()
		if errors.Is(err, ErrBusy) {
			err = busy
		}
		return nil, res, nil, err
	}
	end = func() { unlock(); conn.Close(); lock.Unlock() }
	if o.DryRun {
		err = unfinished(ctx, conn, k.name, o, res)
	} else {
		err = recoverFiles(ctx, conn, k.name, o, res)
	}
	if err != nil {
		end()
		return nil, res, nil, err
	}
	return conn, res, end, nil
}

// lockAcrossHosts takes the kind's lock among the hosts that share a
// PostgreSQL database, waiting until deadline: the lock file keeps out
// only the runs of this host, and a run of another host would take this
// one's unfinished files for a dead run's (recoverFiles). It is a session
// advisory lock on conn, which the server drops with the session, so a
// killed run holds it no longer than its connection. SQLite's database is
// on this host: the lock file is the lock. unlock releases it before conn
// goes back to the pool.
func lockAcrossHosts(ctx context.Context, conn *sql.Conn, kind string, deadline time.Time) (unlock func(), err error) {
	unlock, err = db.LockSession(ctx, conn, "export "+kind, deadline)
	if errors.Is(err, db.ErrBusy) {
		return nil, ErrBusy
	}
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", kind, err)
	}
	return unlock, nil
}

// plan counts what a run would export, changing nothing.
func plan(ctx context.Context, conn *sql.Conn, k *kind, o *Options, res *Result) error {
	unit := "record_key, sub_key"
	if k.code == trigger.CodeItem {
		unit = "record_key"
	}
	err := conn.QueryRowContext(ctx, `SELECT count(*), (SELECT count(*) FROM (SELECT DISTINCT `+unit+` FROM triggers WHERE file_code = ?1 AND status = 'ready') AS units)
FROM triggers WHERE file_code = ?1 AND status = 'ready'`, k.code).Scan(&res.Ready, &res.ReadyRecords)
	if err != nil {
		return err
	}
	if res.ReadyRecords == 0 {
		return nil
	}
	per := res.ReadyRecords
	if o.perFile() > 0 {
		per = int64(o.perFile())
	}
	files, err := planFiles(ctx, conn, k.name, o, res.ReadyRecords, per)
	res.Files = append(res.Files, files...)
	return err
}

// planFiles lists the files in which a run would write records records of
// kind, per to a file, under the kind's next sequence numbers: what a dry
// run shows, taking no number.
func planFiles(ctx context.Context, conn *sql.Conn, kind string, o *Options, records, per int64) ([]File, error) {
	next, err := db.PeekSequence(ctx, conn, kind)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var files []File
	for left := records; left > 0; left -= per {
		name := fileName(kind, now, next, o.Format)
		path, _ := filepath.Abs(filepath.Join(o.Dir, name))
		files = append(files, File{Name: name, Path: path, Records: min(per, left)})
		next++
	}
	return files, nil
}

func fileName(kind string, t time.Time, seq int64, ext string) string {
	return fmt.Sprintf("%s_%s_%06d.%s", kind, t.Format("20060102T150405Z"), seq, ext)
}

// tmpPath is where a file is written before it is renamed into place.
func tmpPath(path string) string {
	return filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
}

// startFile allocates the next sequence number and records the file as
// being written, and runs claim in the same transaction. It returns a zero
// fileID when claim found nothing.
func startFile(ctx context.Context, conn *sql.Conn, k *kind, o *Options, claim func(fileID int64, path string) (records, triggers int64, err error)) (File, int64, error) {
	return startFileTx(ctx, conn, k, o, db.WithTx, claim)
}

// startFileTx is startFile in the transaction withTx opens.
func startFileTx(ctx context.Context, conn *sql.Conn, k *kind, o *Options, withTx func(context.Context, *sql.Conn, bool, func() error) error,
	claim func(fileID int64, path string) (records, triggers int64, err error)) (File, int64, error) {
	var f File
	var fileID int64
	err := withTx(ctx, conn, true, func() error {
		seq, err := db.NextSequence(ctx, conn, k.name)
		if err != nil {
			return err
		}
		f.Name = fileName(k.name, time.Now().UTC(), seq, o.Format)
		f.Path, _ = filepath.Abs(filepath.Join(o.Dir, f.Name))
		err = conn.QueryRowContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, status, sequence, marker, run_id, created_at)
VALUES ('out', ?, ?, ?, '', 0, ?, ?, ?, ?, ?) RETURNING id`, k.name, f.Name, f.Path, fileWriting, seq, o.Marker, db.NullID(o.RunID), db.Now()).Scan(&fileID)
		if err != nil {
			return err
		}
		if claim == nil {
			return nil
		}
		f.Records, f.Triggers, err = claim(fileID, f.Path)
		if err == nil && f.Records == 0 {
			// Nothing was ready after all: undo, the sequence number included.
			return errNothing
		}
		return err
	})
	if errors.Is(err, errNothing) {
		return f, 0, nil
	}
	if err != nil {
		return f, 0, fmt.Errorf("export %s: claim: %w", k.name, db.Classify(err))
	}
	return f, fileID, nil
}

var errNothing = errors.New("nothing to claim")

// beforeClaim runs in the transaction of each claim of exportFile, before
// the claim; tests change the state there.
var beforeClaim = func(context.Context) {}

// exportFile claims one file's worth of triggers and delivers the file. It
// returns nil when nothing is ready.
//
// A trigger whose record was removed without a tombstone has nothing to
// send: trigger.MarkMissing puts such triggers in error. That check reads
// the record of every ready trigger, so it runs only when a file's records
// did not find all the triggers it claimed, once per run (checked; missing
// adds up what it marked): then the claimed triggers whose record is gone
// leave the file in error, the ready ones are checked, the room left is
// claimed and the file is written again under the same name, which is
// what the check before the claim would have given.
func exportFile(ctx context.Context, d *db.DB, conn *sql.Conn, k *kind, o *Options, checked *bool, missing *int64) (*File, error) {
	if err := prepareDir(k, o.Dir); err != nil {
		return nil, err
	}
	if err := removeStrays(ctx, conn, k, o.Dir); err != nil {
		return nil, err
	}
	var beside *besideRead
	withTx, wanted := db.WithTx, besideWanted(ctx, d, conn, k, o)
	if wanted {
		// The reader's snapshot is the claim's (besideRead).
		withTx = db.WithSnapshotTx
	}
	f, fileID, err := startFileTx(ctx, conn, k, o, withTx, func(fileID int64, path string) (int64, int64, error) {
		if wanted {
			var err error
			if beside, err = readBeside(ctx, d, conn, k, o, path); err != nil {
				return 0, 0, err
			}
		}
		beforeClaim(ctx)
		if beside == nil {
			return trigger.Claim(ctx, conn, k.code, fileID, o.RunID, o.perFile())
		}
		// The records are the reader's to count (result); meanwhile one
		// per trigger says whether any was claimed.
		triggers, err := trigger.ClaimTriggers(ctx, conn, k.code, fileID, o.RunID, o.perFile())
		// The claim commits when this returns: not before the read
		// beside it has its snapshot.
		beside.started()
		return triggers, triggers, err
	})
	if db.IsSerializationFailure(err) {
		// A trigger of the snapshot changed before the claim took it:
		// claimed again, in a transaction of its own, and read after.
		beside.discard(f.Path)
		beside = nil
		f, fileID, err = startFile(ctx, conn, k, o, func(fileID int64, _ string) (int64, int64, error) {
			return trigger.Claim(ctx, conn, k.code, fileID, o.RunID, o.perFile())
		})
	}
	if err != nil || fileID == 0 {
		beside.discard(f.Path)
		return nil, err
	}
	if beside != nil {
		w, records, ok := beside.result(k, f)
		besideUsed(ok)
		if ok {
			f.Records = records
			return deliverFile(ctx, conn, k, o, fileID, &f, w, nil)
		}
		beside.discard(f.Path)
		if f.Records, f.Triggers, err = trigger.Claimed(ctx, conn, k.code, fileID); err != nil {
			abandon(conn, fileID, f.Path, err)
			return nil, fmt.Errorf("export %s: count the claimed records: %w", k.name, db.Classify(err))
		}
	}
	if o.claimed != nil {
		o.claimed(f.Triggers)
	}
	var w written
	for {
		var skus int64
		w, err = writeFile(k, o, f.Path, f.Records, func(emit func(node) error) error {
			return serialRead(ctx, conn, func() error {
				return k.records(ctx, conn, claimedBy(fileID), o, func(n node) error {
					skus += skuTriggers(n)
					return emit(n)
				})
			})
		})
		var short claimShort
		// A record not found is one less written; a SKU of an item not
		// found is one SKU with a trigger less.
		notFound := errors.As(err, &short) || (err == nil && k.code == trigger.CodeItem && skus != f.Triggers)
		if *checked || !notFound {
			break
		}
		*checked = true
		os.Remove(tmpPath(f.Path))
		var n int64
		if n, err = recheck(ctx, conn, k, o, fileID, &f); err != nil {
			abandon(conn, fileID, f.Path, err)
			return nil, fmt.Errorf("export %s: check %s triggers: %w", k.name, k.code, err)
		}
		*missing += n
		if f.Records == 0 {
			return nil, nil
		}
	}
	return deliverFile(ctx, conn, k, o, fileID, &f, w, err)
}

// deliverFile finishes the file f of a trigger kind that writeFile wrote
// (or failed to, err).
func deliverFile(ctx context.Context, conn *sql.Conn, k *kind, o *Options, fileID int64, f *File, w written, err error) (*File, error) {
	if err := finish(ctx, conn, k.name, fileID, f, w, err, "its triggers are ready again", o.Marker); err != nil {
		return nil, err
	}
	return f, nil
}

// serialRead runs read, which reads a file's records on conn. On
// PostgreSQL it runs in a read-only transaction whose statements use no
// parallel workers: the records of a large file joined in parallel had
// each worker build the same hash of every SKU and trigger of the file,
// three processes doing one's work on a machine whose other core runs
// posbridge (1,000,000 SKU triggers, 2 cores: 8.3-10.0 s of which a third
// per process against 5.5 s in one, EXPLAIN ANALYZE). SQLite reads on
// the calling goroutine anyway.
func serialRead(ctx context.Context, conn *sql.Conn, read func() error) error {
	if db.DialectOf(conn) != db.Postgres {
		return read()
	}
	if _, err := conn.ExecContext(ctx, "BEGIN READ ONLY"); err != nil {
		return db.Classify(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	if _, err := conn.ExecContext(ctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
		return db.Classify(err)
	}
	return read()
}

// skuTriggers is the number of SKUs of item record n that carry a claimed
// trigger (its action); the others are sent unchanged along with them.
func skuTriggers(n node) int64 {
	var c int64
	for _, sku := range n.kids {
		if len(sku.attrs) > 0 && sku.attrs[0].name == "action" && sku.attrs[0].value != "" {
			c++
		}
	}
	return c
}

// recheck puts the triggers of file fileID whose record is gone in error,
// as if never claimed, and the ready ones too (trigger.MarkMissing), then
// fills the room they leave in the file as a claim after the check would
// have, in one transaction; f takes the new counts. When nothing is left,
// the file and its sequence number are undone as a claim of nothing would
// have left them (but for the file's id, which is not reused). It returns
// the number of triggers put in error.
func recheck(ctx context.Context, conn *sql.Conn, k *kind, o *Options, fileID int64, f *File) (missing int64, err error) {
	err = db.WithTx(ctx, conn, true, func() error {
		gone, err := trigger.MarkMissingClaimed(ctx, conn, k.code, fileID)
		if err != nil {
			return err
		}
		ready, err := trigger.MarkMissing(ctx, conn, k.code)
		if err != nil {
			return err
		}
		missing = gone + ready
		if f.Records, f.Triggers, err = trigger.Claimed(ctx, conn, k.code, fileID); err != nil {
			return err
		}
		if per := int64(o.perFile()); per > 0 && f.Records < per {
			records, added, err := trigger.Claim(ctx, conn, k.code, fileID, o.RunID, int(per-f.Records))
			if err != nil {
				return err
			}
			if added > 0 {
				f.Records, f.Triggers = records, f.Triggers+added
			}
		}
		if f.Records > 0 {
			return nil
		}
		// The kind's lock is held: no other file of it took a number.
		if _, err := conn.ExecContext(ctx, `DELETE FROM files WHERE id = ?`, fileID); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `UPDATE sequences SET last = last - 1 WHERE kind = ? AND last = ?`, k.name, sequenceOf(f.Path)); err != nil {
			return err
		}
		_, err = conn.ExecContext(ctx, `DELETE FROM sequences WHERE kind = ? AND last = 0`, k.name)
		return err
	})
	return missing, db.Classify(err)
}

// finish ends the file f that writeFile or writeLines wrote, err saying
// how the writing went. A file not written gives its records back
// (abandon); the error says what becomes of them (then), if it says
// anything. A written file takes what was written (for CSV a record is a
// data row, as the marker and the ledger count) and is delivered.
func finish(ctx context.Context, conn *sql.Conn, kind string, fileID int64, f *File, w written, err error, then string, marker bool) error {
	if err != nil {
		abandon(conn, fileID, f.Path, err)
		if then != "" {
			return fmt.Errorf("export %s: write %s: %w (%s)", kind, f.Name, err, then)
		}
		return fmt.Errorf("export %s: write %s: %w", kind, f.Name, err)
	}
	f.SHA256, f.Size, f.Records = w.SHA256, w.Size, w.Records
	if err := deliver(ctx, conn, fileID, f.Path, w, marker); err != nil {
		return fmt.Errorf("export %s: %s: %w", kind, f.Name, err)
	}
	return nil
}

// written is what writeFile produced.
type written struct {
	SHA256  string
	Size    int64
	Records int64 // data rows for CSV, records for XML
}

// writeFile writes the temporary file of path and syncs it; records is the
// number of records the claim promised, which the XML envelope states.
func writeFile(k *kind, o *Options, path string, records int64, source func(emit func(node) error) error) (written, error) {
	// Files with customer data are for the owner only; the others may be
	// read by the group, such as a transfer job's user.
	perm := os.FileMode(0o640)
	if k.private {
		perm = 0o600
	}
	return writeStream(o, path, perm, func(bw *bufio.Writer) (int64, error) {
		var rows, emitted int64
		var err error
		switch o.Format {
		case "csv":
			c := csv.NewWriter(bw)
			if err = c.Write(csvHeader(k.csv)); err == nil {
				row := make([]string, 0, len(k.csv))
				err = source(func(n node) error {
					emitted++
					return csvRows(k.csv, n, row, func(r []string) error {
						rows++
						return c.Write(r)
					})
				})
			}
			c.Flush()
			if err == nil {
				err = c.Error()
			}
		default:
			if o.oracle() {
				err = writeOracle(bw, k, o, path, records, func(emit func(node) error) error {
					return source(func(n node) error {
						emitted++
						return emit(n)
					})
				})
				rows = emitted
				break
			}
			x := xmlWriter{bw}
			bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
			x.open("Message", []attr{{"source", o.Source}, {"target", o.Target}, {"type", k.msgType},
				{"company", strconv.Itoa(o.Company)}, {"created", time.Now().UTC().Format(db.TimeLayout)},
				{"sequence", strconv.FormatInt(sequenceOf(path), 10)}, {"count", strconv.FormatInt(records, 10)}}, false)
			bw.WriteString("\n  ")
			x.open(k.wrapper, nil, false)
			err = source(func(n node) error {
				emitted++
				x.node(n, 2)
				return nil
			})
			bw.WriteString("\n  ")
			x.close(k.wrapper)
			bw.WriteString("\n")
			x.close("Message")
			bw.WriteString("\n")
			rows = emitted
		}
		if err == nil && emitted != records {
			err = claimShort{emitted, records}
		}
		return rows, err
	})
}

// claimShort says a file's records were not all found: the claim has
// more than were written.
type claimShort struct{ emitted, records int64 }

func (e claimShort) Error() string {
	return fmt.Sprintf("wrote %d records, the claim has %d", e.emitted, e.records)
}

// writeOracle writes records in Oracle's framing: each record in a
// Message of its own that carries source, target and type only; several
// under a Messages root that states their count (so a receiver can tell the
// file is whole) and the file's sequence number, one as the root of a file
// of its own.
func writeOracle(bw *bufio.Writer, k *kind, o *Options, path string, records int64, source func(emit func(node) error) error) error {
	x := xmlWriter{bw}
	bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	msg := []attr{{"source", o.Source}, {"target", o.Target}, {"type", k.oracleType}}
	if o.FilePerMessage {
		// The claim took one record; writeFile checks the count.
		return source(func(r node) error {
			x.open("Message", msg, false)
			x.node(r, 1)
			bw.WriteString("\n")
			x.close("Message")
			bw.WriteString("\n")
			return nil
		})
	}
	x.open(oracleRoot, []attr{{"type", k.oracleType}, {"created", time.Now().UTC().Format(db.TimeLayout)},
		{"sequence", strconv.FormatInt(sequenceOf(path), 10)}, {"count", strconv.FormatInt(records, 10)}}, false)
	err := source(func(r node) error {
		bw.WriteString("\n  ")
		x.open("Message", msg, false)
		x.node(r, 2)
		bw.WriteString("\n  ")
		x.close("Message")
		return nil
	})
	bw.WriteString("\n")
	x.close(oracleRoot)
	bw.WriteString("\n")
	return err
}

// writeStream writes the temporary file of path with body, which returns
// the number of records (CSV: data rows) it wrote, counting its size and
// sha256, and syncs it; on any error the temporary file is removed. Every
// export format writes through it.
func writeStream(o *Options, path string, perm os.FileMode, body func(w *bufio.Writer) (int64, error)) (written, error) {
	tmp := tmpPath(path)
	os.Remove(tmp)
	out, err := o.create(tmp, perm)
	if err != nil {
		return written{}, err
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	bw := bufio.NewWriterSize(cw, 256*1024)
	var w written
	w.Records, err = body(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = syncFile(out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return written{}, err
	}
	w.SHA256 = hex.EncodeToString(h.Sum(nil))
	w.Size = cw.n
	return w, nil
}

func syncFile(w io.Writer) error {
	if f, ok := w.(interface{ Sync() error }); ok {
		return f.Sync()
	}
	return nil
}

// sequenceOf reads the sequence number back from a file name.
func sequenceOf(path string) int64 {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	base = base[:len(base)-len(ext)]
	if len(base) < 6 {
		return 0
	}
	n, _ := strconv.ParseInt(base[len(base)-6:], 10, 64)
	return n
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// deliver records the finished temporary file, renames it into place,
// writes the marker, and marks the file complete, which makes its
// triggers processed: each step commits before the next, so recoverFiles
// can finish the job after a crash.
func deliver(ctx context.Context, conn *sql.Conn, fileID int64, path string, w written, marker bool) error {
	err := db.WithTx(ctx, conn, true, func() error {
		_, err := conn.ExecContext(ctx, `UPDATE files SET status = ?, sha256 = ?, size = ?, records = ? WHERE id = ?`,
			fileWritten, w.SHA256, w.Size, w.Records, fileID)
		return err
	})
	if err != nil {
		return fmt.Errorf("record written file: %w", db.Classify(err))
	}
	if err := os.Rename(tmpPath(path), path); err != nil {
		return fmt.Errorf("rename into place: %w", err)
	}
	if err := fsx.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return complete(ctx, conn, fileID, path, w.SHA256, w.Records, marker)
}

// complete writes the marker when one is wanted and not there yet, then
// marks the file complete, which makes the triggers it claimed processed
// (they were stored so by the claim, trigger.Claim) with no write of
// theirs, but for those an older version claimed (trigger.CompleteLegacy),
// and moves the watermark of an engagement file's kind up to the
// changes it holds.
func complete(ctx context.Context, conn *sql.Conn, fileID int64, path, sum string, records int64, marker bool) error {
	// No marker for a file a transfer already took away.
	if _, err := os.Stat(path); marker && err == nil {
		if _, err := os.Stat(path + ".done"); err != nil {
			err := fsx.WriteAtomic(path+".done", 0o600, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "count=%d sha256=%s\n", records, sum)
				return err
			})
			if err != nil {
				return fmt.Errorf("write marker: %w", err)
			}
		}
	}
	err := db.WithTx(ctx, conn, true, func() error {
		if err := trigger.CompleteLegacy(ctx, conn, fileID); err != nil {
			return err
		}
		if err := orders.Completed(ctx, conn, fileID); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, `UPDATE files SET status = ? WHERE id = ?`, fileComplete, fileID); err != nil {
			return err
		}
		if err := moveWatermark(ctx, conn, fileID); err != nil {
			return err
		}
		// A delete that went out releases its tombstone.
		return trigger.PurgeTombstones(ctx, conn, fileID)
	})
	if err != nil {
		return fmt.Errorf("mark file complete: %w", db.Classify(err))
	}
	return nil
}

// abandon gives the triggers of a file that was not finished back to the
// queue and removes its temporary file; the sequence number stays used.
func abandon(conn *sql.Conn, fileID int64, path string, cause error) error {
	ctx := context.Background()
	os.Remove(tmpPath(path))
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	return db.WithTx(ctx, conn, true, func() error {
		if err := trigger.Unclaim(ctx, conn, fileID); err != nil {
			return err
		}
		if err := orders.Unclaim(ctx, conn, fileID); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, `UPDATE files SET status = ?, error = ? WHERE id = ?`, fileAbandoned, msg, fileID)
		return err
	})
}

// unfinished counts, for a dry run, the files of a dead run that a real run
// would recover first; when the real run would stop at one instead
// (recoverFiles), the dry run stops with the same error.
func unfinished(ctx context.Context, conn *sql.Conn, kind string, o *Options, res *Result) error {
	todo, err := leftBehind(ctx, conn, kind)
	if err != nil {
		return err
	}
	for _, l := range todo {
		if _, _, err := decide(ctx, conn, kind, o, l); err != nil {
			return err
		}
		res.Unfinished++
	}
	return nil
}
