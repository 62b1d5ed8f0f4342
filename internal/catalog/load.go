package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// Modes of a load.
const (
	ModeDelta = "delta"
	ModeFull  = "full"
)

// ErrFile wraps problems with the file as a whole (missing required
// column, malformed XML, empty file): nothing was applied.
var ErrFile = errors.New("file rejected")

// Options tune one load.
type Options struct {
	Mode   string // delta (default) or full
	Format string // auto (default: by extension), csv or xml
	DryRun bool
	// AllowEmpty lets a full load of a file without rows delete
	// every record of the kind.
	AllowEmpty bool
	// Force applies a file even when the last load of the kind was the
	// same content in the same mode.
	Force               bool
	UnknownReferences   string // warn (default) or reject
	AllowNegativeOnHand bool
	MaxFieldLength      int
	// FormulaGuard quotes the cells of the rejects file that a spreadsheet
	// would run as formulas (csv.formula_guard, format.SpreadsheetSafe).
	FormulaGuard bool
	RunID        int64
	// Progress, when set, is told the bytes read so far.
	Progress func(read int64)
	// Warn receives each warning (unknown column, unknown reference, ...).
	Warn func(msg string)
	// Debug, when set, receives timings of slow statements.
	Debug func(msg string)
}

// Result counts what a load did. For items the records are SKU rows, for
// invoices whole invoices, for the others rows.
type Result struct {
	Kind      string `json:"kind"`
	File      string `json:"file"`
	Mode      string `json:"mode"`
	Read      int64  `json:"read"`
	Added     int64  `json:"added"`
	Changed   int64  `json:"changed"`
	Deleted   int64  `json:"deleted"`
	Unchanged int64  `json:"unchanged"`
	Rejected  int64  `json:"rejected"`
	Warnings  int64  `json:"warnings"`
	// Triggers is the number of outbound triggers created or folded.
	Triggers int64 `json:"triggers"`
	// DeletesSkipped is set when a full load did not delete missing records
	// because some rows were rejected.
	DeletesSkipped bool   `json:"deletes_skipped,omitempty"`
	RejectsFile    string `json:"rejects_file,omitempty"`
	SHA256         string `json:"sha256"`
	DryRun         bool   `json:"dry_run,omitempty"`
	// SameAs is set when the file was not applied because the last load of
	// the kind had the same content: it describes that load.
	SameAs string `json:"same_as,omitempty"`
}

// Kinds lists the kinds Load accepts, in the order they are best loaded.
var Kinds = []string{"warehouses", "vendors", "items", "customers", "invoices", "inventory"}

// Columns returns the CSV columns of a kind, and which are required.
func Columns(kind string) (names []string, required []bool, err error) {
	k, ok := kinds[kind]
	if !ok {
		return nil, nil, fmt.Errorf("unknown kind %q: want one of %s", kind, strings.Join(Kinds, ", "))
	}
	for _, c := range k.plan.cols {
		names = append(names, c.name)
		required = append(required, c.required)
	}
	return names, required, nil
}

// Load reads the file at path as master data of kind and applies it.
func Load(ctx context.Context, d *db.DB, kind, path string, opts Options) (*Result, error) {
	k, ok := kinds[kind]
	if !ok {
		return nil, fmt.Errorf("unknown kind %q: want one of %s", kind, strings.Join(Kinds, ", "))
	}
	if opts.Mode == "" {
		opts.Mode = ModeDelta
	}
	if opts.Mode != ModeDelta && opts.Mode != ModeFull {
		return nil, fmt.Errorf("unknown mode %q: want delta or full", opts.Mode)
	}
	if opts.MaxFieldLength <= 0 {
		opts.MaxFieldLength = 1000
	}
	if opts.UnknownReferences == "" {
		opts.UnknownReferences = "warn"
	}
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	f, err := fsx.OpenText(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kind, err)
	}
	defer f.Close()

	if !opts.Force && k.skipSame {
		res, err := sameAsLast(ctx, d, k, f, path, opts)
		if err != nil || res != nil {
			return res, err
		}
	}

	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	newLoader := func() *loader {
		return &loader{ctx: ctx, conn: conn, dialect: db.DialectOf(conn), k: k, opts: opts, now: db.Now(),
			res: &Result{Kind: kind, File: path, Mode: opts.Mode, DryRun: opts.DryRun}}
	}
	l := newLoader()
	defer l.dropTemp()
	if err := l.guessFirstLoad(); err != nil {
		return nil, err
	}
	// A first load or a reload without the staging table, when the kind
	// has one and the file allows it.
	streamed, ok := l.loadDirect, k.direct != nil
	if l.stagedAs != trigger.Added {
		streamed, ok = l.loadReload, k.reload != nil
	}
	if ok && !stageAlways {
		res, err := streamed(d, f, path)
		if !errors.Is(err, errNotDirect) {
			return res, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		stagedAs := l.stagedAs
		l = newLoader()
		l.stagedAs = stagedAs
	}

	hash := sha256.New()
	cr := &countingReader{r: io.TeeReader(f, hash), progress: opts.Progress}
	start := time.Now()
	err = l.stage(cr, path)
	l.trace("stage", start)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.res.SHA256 = hex.EncodeToString(hash.Sum(nil))

	err = db.WithTx(ctx, conn, !opts.DryRun, func() error {
		if err := l.applyAlone(); err != nil {
			return err
		}
		if err := l.validateStaged(); err != nil {
			return err
		}
		good, err := l.count(`SELECT count(*) FROM stage`)
		if err != nil {
			return err
		}
		// With rejects a full load deletes nothing anyway (deletesAllowed).
		if opts.Mode == ModeFull && good == 0 && l.res.Rejected == 0 && !opts.AllowEmpty {
			return fmt.Errorf("%w: a full load of a file without rows would delete every %s record; use --allow-empty if that is meant", ErrFile, kind)
		}
		if err := k.merge(l); err != nil {
			return err
		}
		return l.record(path, cr.n)
	})
	return l.done(d, path, err)
}

// record ends a load's write transaction: the file goes into the ledger
// and its rejects file is written, unless it is a dry run.
func (l *loader) record(path string, size int64) error {
	status := "loaded"
	if l.res.Rejected > 0 {
		status = "rejects"
	}
	if l.opts.DryRun {
		return nil
	}
	abs, _ := filepath.Abs(path)
	if err := ledger.RecordFile(l.ctx, l.conn, ledger.File{Direction: "in", Kind: "load-" + l.k.name, Name: filepath.Base(path),
		Path: abs, SHA256: l.res.SHA256, Size: size, Records: l.res.Read, Rejected: l.res.Rejected,
		Status: status, Mode: l.opts.Mode, RunID: l.opts.RunID}); err != nil {
		return err
	}
	// The rejects file is in place before the commit, as an import's:
	// a load that cannot write it fails whole (exit 1, nothing
	// applied) instead of keeping its good rows without the record
	// of the others.
	if err := l.writeRejects(path); err != nil {
		return fmt.Errorf("%w: %v", errRejectsFile, err)
	}
	return nil
}

// done returns the load's result once its write transaction has ended
// with err, which it words for the user.
func (l *loader) done(d *db.DB, path string, err error) (*Result, error) {
	if err != nil {
		if errors.Is(err, ErrFile) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if errors.Is(err, errRejectsFile) {
			return nil, fmt.Errorf("load %s from %s: %w; nothing applied", l.k.name, path, err)
		}
		return nil, fmt.Errorf("load %s from %s: %w", l.k.name, path, db.Classify(err))
	}
	if !l.opts.DryRun {
		l.analyze(d)
	}
	return l.res, nil
}

// analyze has the statistics of the tables the load changed much brought
// up to date (db.AnalyzeWritten), so that the exports that follow it are
// planned for what the tables hold. The load has committed: a failure here
// is a warning.
func (l *loader) analyze(d *db.DB) {
	records := l.res.Added + l.res.Changed + l.res.Deleted
	written := map[string]int64{l.k.table: records, "triggers": l.res.Triggers}
	for _, t := range l.k.alsoWrites {
		written[t] = records
	}
	if err := d.AnalyzeWritten(l.ctx, written); err != nil {
		l.opts.Warn(fmt.Sprintf("%v (the load is applied)", err))
	}
}

// errRejectsFile is a rejects file that could not be written.
var errRejectsFile = errors.New("write the rejects file")

// sameAsLast returns a result without applying anything when the newest
// load of the kind was this same content in the same mode and applied
// without rejects: only loads change these records, so the state already
// holds the file. It leaves f at its start otherwise.
func sameAsLast(ctx context.Context, d *db.DB, k *kindSpec, f *os.File, path string, opts Options) (*Result, error) {
	prev, ok, err := ledger.LastFile(ctx, d, "in", "load-"+k.name)
	if err != nil || !ok || prev.Status != "loaded" || prev.Mode != opts.Mode {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if sum != prev.SHA256 {
		return nil, nil
	}
	return &Result{Kind: k.name, File: path, Mode: opts.Mode, DryRun: opts.DryRun, SHA256: sum,
		SameAs: fmt.Sprintf("the %s load of %s at %s (run %d)", prev.Mode, prev.Name, prev.CreatedAt, prev.RunID)}, nil
}

type countingReader struct {
	r        io.Reader
	n        int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.n)
	}
	return n, err
}

// loader holds one load's connection and counters; the staging tables live
// on its connection.
type loader struct {
	ctx     context.Context
	conn    *sql.Conn
	dialect db.Dialect
	k       *kindSpec
	opts    Options
	now     string
	res     *Result
	// header is the file's column order, which reject files keep.
	header []string
	// firstLoad is set by classify when the kind's table was empty.
	firstLoad bool
	// stagedAs is the action rows are staged with: A when the kind's table
	// was empty before staging, empty otherwise; classify corrects it.
	stagedAs string
	// present holds the staging columns the file has; a column the file
	// leaves out keeps its stored value.
	present map[string]bool
	// seq is the change sequence number of the load's transaction, 0
	// until changeSeq takes it.
	seq int64
	// pool is conn's database, set by a reload: it reads the stored rows
	// ahead on a second connection (readahead.go).
	pool *db.DB
	// stockRead is, on PostgreSQL, the change number the next writer
	// would have taken when an inventory load first read the stock
	// (mergeInventory).
	stockRead int64
}

// stmt is one statement of a merge with its arguments.
type stmt struct {
	q    string
	args []any
}

// execAll runs statements in order up to the first that fails.
func (l *loader) execAll(steps []stmt) error {
	for _, s := range steps {
		if _, err := l.exec(s.q, s.args...); err != nil {
			return err
		}
	}
	return nil
}

func (l *loader) exec(q string, args ...any) (int64, error) {
	defer l.trace(q, time.Now())
	r, err := l.conn.ExecContext(l.ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("%w\n  in: %s", err, firstLine(q))
	}
	return r.RowsAffected()
}

// trace logs statements slower than 50ms at debug level, for tuning.
func (l *loader) trace(q string, start time.Time) {
	if d := time.Since(start); d > 50*time.Millisecond && l.opts.Debug != nil {
		l.opts.Debug(fmt.Sprintf("%.3fs %s", d.Seconds(), firstLine(q)))
	}
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i > 0 {
		return q[:i] + " ..."
	}
	return q
}

// guessFirstLoad stages rows as new when the kind's table is empty now:
// the first load of a million rows then needs no classification pass.
func (l *loader) guessFirstLoad() error {
	empty, err := l.tableEmpty()
	if err != nil {
		return fmt.Errorf("load %s: %w", l.k.name, db.Classify(err))
	}
	if empty {
		l.stagedAs = "A"
	}
	return nil
}

// applyAlone makes the loads of one kind apply one at a time, as they do
// on SQLite, where every writer does: on PostgreSQL the load's write
// transaction first takes a lock on its kind, held until it ends, which
// a second load waits for (up to the busy timeout). Two full loads
// applied at once would otherwise each keep the records the other added.
// It then takes the locks of the kinds its rows must refer to
// (kindSpec.refersTo), always after its own, which no load of those
// kinds asks for: no two loads wait for each other.
func (l *loader) applyAlone() error {
	for _, kind := range append([]string{l.k.name}, l.k.refersTo...) {
		if err := db.LockForTx(l.ctx, l.conn, "load "+kind); err != nil {
			return err
		}
	}
	return nil
}

// tableEmpty reports whether the kind's table has no rows.
func (l *loader) tableEmpty() (bool, error) {
	var empty bool
	err := l.conn.QueryRowContext(l.ctx, `SELECT NOT EXISTS (SELECT 1 FROM `+l.k.table+`)`).Scan(&empty)
	return empty, err
}

// given returns the columns of cols that the file has.
func (l *loader) given(cols []string) []string {
	var out []string
	for _, c := range cols {
		if l.present[c] {
			out = append(out, c)
		}
	}
	return out
}

func (l *loader) count(q string, args ...any) (int64, error) {
	var n int64
	err := l.conn.QueryRowContext(l.ctx, q, args...).Scan(&n)
	return n, err
}

func (l *loader) warn(format string, args ...any) {
	l.res.Warnings++
	l.opts.Warn(fmt.Sprintf(format, args...))
}

func (l *loader) dropTemp() {
	for _, t := range tempTables {
		l.conn.ExecContext(context.Background(), l.dropTempSQL(t))
	}
}

// dropTempSQL drops the temporary table t of the load's connection,
// named in the engine's schema of temporary tables so that a permanent
// table of the same name is never touched.
func (l *loader) dropTempSQL(t string) string {
	if l.dialect == db.Postgres {
		return "DROP TABLE IF EXISTS pg_temp." + t
	}
	return "DROP TABLE IF EXISTS temp." + t
}

// withoutRowid ends the CREATE TABLE of a temporary table keyed by text:
// on SQLite the rows are then stored in the key's B-tree alone.
func (l *loader) withoutRowid() string {
	if l.dialect == db.Postgres {
		return ""
	}
	return " WITHOUT ROWID"
}

func quoteList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(q, ", ")
}

// writeRejects writes <path>.rejects.csv from the rejects table, ordered by
// line, or removes a stale one when nothing was rejected.
func (l *loader) writeRejects(path string) error {
	out := path + ".rejects.csv"
	if l.res.Rejected == 0 {
		if !l.opts.DryRun {
			if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	if l.opts.DryRun {
		return nil
	}
	// On one line, the rows rejected as read (no rec) come first on both
	// engines: PostgreSQL would sort their NULLs last.
	rows, err := l.conn.QueryContext(l.ctx, `SELECT src_line, error, fields, staged FROM rejects ORDER BY src_line, coalesce(rec, 0)`)
	if err != nil {
		return err
	}
	defer rows.Close()
	err = fsx.WriteAtomic(out, 0o640, func(w io.Writer) error {
		cw := format.NewCSVWriter(w, l.opts.FormulaGuard)
		if err := cw.Write(append([]string{"line", "error"}, l.header...)); err != nil {
			return err
		}
		// Staged values are in struct order; the file's order may differ.
		pos := make([]int, len(l.header))
		for i, h := range l.header {
			pos[i] = -1
			for j, c := range l.k.plan.cols {
				if c.name == h {
					pos[i] = j
				}
			}
		}
		for rows.Next() {
			var line int64
			var msg, fields string
			var staged bool
			if err := rows.Scan(&line, &msg, &fields, &staged); err != nil {
				return err
			}
			rec := []string{fmt.Sprint(line), msg}
			if staged {
				var vals []any
				if err := json.Unmarshal([]byte(fields), &vals); err != nil {
					return err
				}
				for _, j := range pos {
					if j < 0 {
						rec = append(rec, "")
						continue
					}
					v := vals[j]
					if f, ok := v.(float64); ok {
						v = int64(f)
					}
					rec = append(rec, l.k.plan.cols[j].display(v))
				}
			} else {
				var raw []string
				if err := json.Unmarshal([]byte(fields), &raw); err != nil {
					return err
				}
				rec = append(rec, raw...)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	l.res.RejectsFile = out
	return nil
}

// kindSpec is everything the loader knows about one kind.
type kindSpec struct {
	name, root, record string
	plan               plan
	group              *group
	refs               []ref
	// table holds one row per record; empty means a first load.
	table string
	// alsoWrites are the other tables a load writes its records' rows in,
	// besides triggers (an item's row, an invoice's lines); for the
	// statistics (loader.analyze) each counts a row per record.
	alsoWrites []string
	// refersTo are the kinds whose records this kind's rows must refer
	// to (a foreign key, a reference rejected when unknown) and whose
	// loads remove records: a load of this kind waits for theirs
	// (applyAlone), so that the references it checks stay until it
	// commits. Checked while another host's load removed one, a row
	// was taken and its write failed on the foreign key (exit 1).
	refersTo []string
	// skipSame lets a load skip a file whose content is the same as the
	// last load of the kind. Off for kinds that other commands change.
	skipSame bool
	// stamp: the table's rows carry change_seq and added_seq (migration
	// 0007), which the engagement feed reads.
	stamp bool
	// check runs extra validation over the staged rows.
	check func(*loader) error
	merge func(*loader) error
	// direct, when set, is how a first load of the kind goes without the
	// staging table (loader.loadDirect), and reload how a load of a kind
	// with records does (loader.loadReload).
	direct, reload func(*loader, format.RowReader) error
}

// group says which columns must agree on every row of one record.
type group struct {
	by, what string
	cols     []string
	// extra is a further condition between a row s and the group's first
	// row f that rejects s with message extraMsg.
	extra, extraMsg string
	// whole rejects every row of a group when one of its rows is rejected:
	// an invoice is applied whole or not at all.
	whole bool
}

func (k *kindSpec) requiredNames() []string {
	var out []string
	for _, c := range k.plan.cols {
		if c.required {
			out = append(out, c.name)
		}
	}
	sort.Strings(out)
	return out
}
