package imports

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
	"strings"
	"syscall"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
)

// Options tune an import.
type Options struct {
	Format        string // auto (by extension), csv or xml
	AllOrNothing  bool   // any reject applies nothing
	DryRun        bool
	Force         bool // apply content already applied
	AllowNegative bool // on hand may go below zero
	// Codes maps user-defined transaction codes to an effect.
	Codes map[string]string
	// RejectsDir is where reject files go; empty means beside the input.
	RejectsDir string
	// MaxFieldLength caps every field, in characters; 0 means no cap.
	MaxFieldLength int
	// FormulaGuard quotes the cells of the rejects file that a spreadsheet
	// would run as formulas (csv.formula_guard, format.SpreadsheetSafe).
	FormulaGuard bool
	RunID        int64
	Warn         func(string)
}

// Result says what an import did with one file.
type Result struct {
	File     string `json:"file"`
	SHA256   string `json:"sha256"`
	Read     int64  `json:"read"`
	Applied  int64  `json:"applied"`
	Rejected int64  `json:"rejected"`
	Triggers int64  `json:"triggers"`
	// SameAs is set when the same content was applied before: nothing was
	// done this time.
	SameAs      string `json:"same_as,omitempty"`
	RejectsFile string `json:"rejects_file,omitempty"`
	// RolledBack is set when --all-or-nothing applied nothing because of
	// rejects.
	RolledBack bool `json:"rolled_back,omitempty"`
	DryRun     bool `json:"dry_run,omitempty"`
}

// Ledger statuses of imported files.
const (
	statusApplied  = "applied"  // every record applied
	statusPartial  = "partial"  // good records applied, some rejected
	statusRejected = "rejected" // nothing applied

	modeForce = "force" // files.mode of an import --force
)

// kindTransactions is the file ledger kind of inventory transaction files.
const kindTransactions = "inventory-transactions"

func (o *Options) codes() map[string]string {
	m := make(map[string]string, len(StandardCodes)+len(o.Codes))
	for _, c := range StandardCodes {
		m[c] = c
	}
	m[CodeStreamlinedOverlay] = EffectOverlay
	for c, eff := range o.Codes {
		m[strings.ToUpper(c)] = strings.ToUpper(eff)
	}
	return m
}

// fileSum reads the whole file for its sha256 and size.
func fileSum(path string) (string, int64, error) {
	f, err := fsx.OpenRegular(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// appliedBefore finds an earlier import of the same content that applied
// something. It runs in the import's write transaction on conn: on SQLite
// that transaction already excludes every other writer; on PostgreSQL
// writers run at once, so it first takes a lock on the content (kind,
// partner and sha256) held until the transaction ends, and a second
// import of the same content waits there and then reads the first one's
// committed ledger row.
func appliedBefore(ctx context.Context, conn *sql.Conn, kind, partner, sum string) (string, error) {
	if err := db.LockForTx(ctx, conn, "import "+kind+" "+partner+" "+sum); err != nil {
		return "", err
	}
	var name, at string
	var run sql.NullInt64
	err := conn.QueryRowContext(ctx, `SELECT name, created_at, run_id FROM files WHERE direction = 'in' AND kind = ? AND partner = ? AND sha256 = ?
  AND status IN (?, ?) ORDER BY id DESC LIMIT 1`, kind, partner, sum, statusApplied, statusPartial).Scan(&name, &at, &run)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", db.Classify(err)
	}
	return fmt.Sprintf("%s, imported at %s (run %d)", name, at, run.Int64), nil
}

// Transactions is the inventory transaction upload.
var Transactions = Upload{Kind: kindTransactions, What: "transactions", KeysHold: true, Open: openTransactions}

// ImportTransactions applies an inventory transaction file.
func ImportTransactions(ctx context.Context, d *db.DB, path string, o Options) (*Result, error) {
	return Run(ctx, d, Transactions, path, o)
}

func openTransactions(f *os.File, path string, o *Options) ([]string, func(*Session) error, error) {
	src, err := openSource(f, path, o.Format)
	if err != nil {
		return nil, nil, err
	}
	return src.header(), func(s *Session) error { return applyTransactions(s, src, path) }, nil
}

// applyTransactions applies the records of src in file order.
func applyTransactions(s *Session, src source, path string) error {
	res, o := s.Result, s.Opts
	a, err := s.newApplier()
	if err != nil {
		return err
	}
	defer a.close()
	a.ownConn = true // the records are applied here, by the applier alone
	a.streamReads(s.pool)
	// Reading and checking fields run in a goroutine of their own; applying
	// needs the order of the file, so it stays on this one.
	batches := make(chan checked, 8)
	// The batches applied go back to the reader, to be filled again: new
	// ones were 40% of what an import allocated, and the collector's work
	// with them a tenth of its CPU.
	free := make(chan []checkedRecord, cap(batches)+2)
	rctx, stop := context.WithCancel(s.Ctx)
	defer stop()
	go readChecked(rctx, src, src.codes(o), o.MaxFieldLength, batches, free)
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		if err := a.evict(); err != nil {
			return err
		}
		if err := a.prefetch(b.items); err != nil {
			return err
		}
		for _, c := range b.items {
			res.Read++
			err := c.err
			if err == nil {
				err = a.apply(c.t)
			}
			if err != nil {
				var fatal *fatalError
				if errors.As(err, &fatal) {
					return fatal.err
				}
				if err := s.Reject(c.line, err.Error(), c.raw); err != nil {
					return err
				}
				continue
			}
			res.Applied++
		}
		select {
		case free <- b.items[:0]:
		default:
		}
	}
	// The reader stops early when the run is interrupted: that is not the
	// end of the file, and nothing of it may be kept.
	if err := s.Ctx.Err(); err != nil {
		return err
	}
	for _, w := range src.warnings() {
		o.Warn(fmt.Sprintf("%s: %s", path, w))
	}
	if res.Applied == 0 || (o.AllOrNothing && res.Rejected > 0) {
		return nil // Run rolls the work back
	}
	res.Triggers, err = a.finish()
	return err
}

// checked is a batch of records with their field checks done.
type checked struct {
	items []checkedRecord
	err   error
}

type checkedRecord struct {
	line int
	raw  []string
	t    txn
	err  error // why the record is rejected
}

// readChecked reads src, checks every record's fields and sends the
// batches, in the slices of free when there are any; it closes out.
func readChecked(ctx context.Context, src source, codes map[string]string, maxLen int, out chan<- checked, free <-chan []checkedRecord) {
	defer close(out)
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			return
		}
		var b checked
		if err != nil {
			b.err = err
		}
		select {
		case b.items = <-free:
		default:
			b.items = make([]checkedRecord, 0, len(batch))
		}
		for _, r := range batch {
			c := checkedRecord{line: r.line, raw: r.raw, err: r.err}
			if c.err == nil {
				c.t, c.err = check(r.line, r.raw, r.row, codes, maxLen)
			}
			b.items = append(b.items, c)
		}
		select {
		case out <- b:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// fatalError is a database failure while applying: the whole file fails.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

// Unwrap lets the database error decide the exit code.
func (f *fatalError) Unwrap() error { return f.err }

// rejects streams the reject file of an import: written under a temporary
// name and renamed when the import ends, or removed when nothing was
// rejected (a stale reject file of an earlier run goes too).
type rejects struct {
	path, tmp string
	f         *os.File
	w         *format.CSVWriter
	n         int
	dryRun    bool
	guard     bool
	header    []string
}

func newRejects(input string, header []string, o *Options) (*rejects, error) {
	dir := o.RejectsDir
	if dir == "" {
		dir = filepath.Dir(input)
	}
	path := filepath.Join(dir, filepath.Base(input)+".rejects.csv")
	// A run killed while writing the reject file left its temporary file.
	stale, _ := filepath.Glob(filepath.Join(dir, "."+filepath.Base(path)+".tmp-*"))
	for _, f := range stale {
		os.Remove(f)
	}
	return &rejects{path: path, dryRun: o.DryRun, guard: o.FormulaGuard, header: header}, nil
}

func (r *rejects) add(line int, msg string, raw []string) error {
	r.n++
	if r.dryRun {
		return nil
	}
	if r.f == nil {
		if err := os.MkdirAll(filepath.Dir(r.path), 0o750); err != nil {
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(r.path), "."+filepath.Base(r.path)+".tmp-*")
		if err != nil {
			return fmt.Errorf("write rejects: %w", err)
		}
		r.f, r.tmp = f, f.Name()
		r.w = format.NewCSVWriter(f, r.guard)
		if err := r.w.Write(append([]string{"line", "error"}, r.header...)); err != nil {
			return err
		}
	}
	return r.w.Write(append([]string{fmt.Sprint(line), msg}, format.Clip(raw)...))
}

// finish puts the reject file in place and returns its path, or "".
func (r *rejects) finish() (string, error) {
	if r.dryRun {
		return "", nil
	}
	if r.f == nil {
		// An earlier run's rejects file goes; none can be where a file
		// stands in place of the folder (ENOTDIR), which this file,
		// having no rejects, does not need.
		if err := os.Remove(r.path); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", err
		}
		return "", nil
	}
	r.w.Flush()
	err := r.w.Error()
	if err == nil {
		err = r.f.Sync()
	}
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil
	if err == nil {
		err = os.Rename(r.tmp, r.path)
	}
	if err != nil {
		os.Remove(r.tmp)
		return "", fmt.Errorf("write rejects %s: %w", r.path, err)
	}
	return r.path, fsx.SyncDir(filepath.Dir(r.path))
}

func (r *rejects) discard() {
	if r.f != nil {
		r.f.Close()
		os.Remove(r.tmp)
	}
}
