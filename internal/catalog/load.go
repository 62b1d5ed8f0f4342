package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/gocarina/gocsv"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
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
	// AllowEmpty lets a full load of a file without good rows delete
	// every record of the kind.
	AllowEmpty          bool
	UnknownReferences   string // warn (default) or reject
	AllowNegativeOnHand bool
	MaxFieldLength      int
	RunID               int64
	// Progress, when set, is told the bytes read so far.
	Progress func(read int64)
	// Warn receives each warning (unknown column, unknown reference, ...).
	Warn func(msg string)
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
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kind, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("load %s: %q is a folder, not a file", kind, path)
	}

	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	l := &loader{ctx: ctx, conn: conn, k: k, opts: opts, now: db.Now(),
		res: &Result{Kind: kind, File: path, Mode: opts.Mode, DryRun: opts.DryRun}}
	defer l.dropTemp()

	hash := sha256.New()
	cr := &countingReader{r: io.TeeReader(f, hash), progress: opts.Progress}
	if err := l.stage(cr, path); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.res.SHA256 = hex.EncodeToString(hash.Sum(nil))

	err = db.WithTx(ctx, conn, !opts.DryRun, func() error {
		if err := l.validateStaged(); err != nil {
			return err
		}
		good, err := l.count(`SELECT count(*) FROM stage`)
		if err != nil {
			return err
		}
		if opts.Mode == ModeFull && good == 0 && !opts.AllowEmpty {
			return fmt.Errorf("%w: a full load of a file without good rows would delete every %s record; use --allow-empty if that is meant", ErrFile, kind)
		}
		if err := k.merge(l); err != nil {
			return err
		}
		status := "loaded"
		if l.res.Rejected > 0 {
			status = "rejects"
		}
		if opts.DryRun {
			return nil
		}
		abs, _ := filepath.Abs(path)
		return ledger.RecordFile(ctx, conn, ledger.File{Direction: "in", Kind: "load-" + kind, Name: filepath.Base(path),
			Path: abs, SHA256: l.res.SHA256, Size: cr.n, Records: l.res.Read, Rejected: l.res.Rejected,
			Status: status, RunID: opts.RunID})
	})
	if err != nil {
		if errors.Is(err, ErrFile) {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, fmt.Errorf("load %s from %s: %w", kind, path, db.Classify(err))
	}
	if err := l.writeRejects(path); err != nil {
		return l.res, err
	}
	return l.res, nil
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
	ctx  context.Context
	conn *sql.Conn
	k    *kindSpec
	opts Options
	now  string
	res  *Result
	// header is the file's column order, which reject files keep.
	header []string
}

func (l *loader) exec(q string, args ...any) (int64, error) {
	r, err := l.conn.ExecContext(l.ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("%w\n  in: %s", err, firstLine(q))
	}
	return r.RowsAffected()
}

func firstLine(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexByte(q, '\n'); i > 0 {
		return q[:i] + " ..."
	}
	return q
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
	for _, t := range []string{"stage", "rejects", "gone", "cancelled", "events"} {
		l.conn.ExecContext(context.Background(), "DROP TABLE IF EXISTS temp."+t)
	}
}

// stageBatch is how many rows go through gocsv and one staging INSERT.
const stageBatch = 256

// stage reads the whole file into the temporary table stage, rejecting rows
// whose fields are malformed into the temporary table rejects.
func (l *loader) stage(r io.Reader, path string) error {
	rr, err := l.openRows(r, path)
	if err != nil {
		return err
	}
	for _, w := range rr.Warnings() {
		l.warn("%s: %s", path, w)
	}
	for _, t := range []string{"stage", "rejects", "gone", "cancelled", "events"} {
		if _, err := l.exec("DROP TABLE IF EXISTS temp." + t); err != nil {
			return err
		}
	}
	ddl := []string{
		l.k.plan.stageDDL("stage"),
		`CREATE TEMP TABLE rejects (src_line INTEGER NOT NULL, error TEXT NOT NULL, fields TEXT NOT NULL, staged INTEGER NOT NULL DEFAULT 0)`,
		`CREATE TEMP TABLE gone (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
		`CREATE TEMP TABLE cancelled (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
		`CREATE TEMP TABLE events (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', capture TEXT NOT NULL)`,
	}
	for _, q := range ddl {
		if _, err := l.exec(q); err != nil {
			return err
		}
	}
	// Writes to temporary tables take no lock on the database, so the
	// staging runs in its own transaction before the write transaction.
	if _, err := l.exec("BEGIN"); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			l.conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	ins := newStager(l, len(l.k.plan.cols)+1)
	rejStmt, err := l.conn.PrepareContext(l.ctx, `INSERT INTO rejects(src_line, error, fields) VALUES (?,?,?)`)
	if err != nil {
		return err
	}
	defer rejStmt.Close()
	reject := func(line int, msg string, fields []string) error {
		l.res.Rejected++
		b, _ := json.Marshal(fields)
		_, err := rejStmt.ExecContext(l.ctx, line, msg, string(b))
		return err
	}

	header := rr.Header()
	l.header = header
	sliceType := reflect.SliceOf(l.k.plan.typ)
	var batch []format.Row
	vals := make([]any, 0, len(l.k.plan.cols)+1)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		rows := make([][]string, 0, len(batch)+1)
		rows = append(rows, header)
		for _, b := range batch {
			rows = append(rows, b.Fields)
		}
		out := reflect.New(sliceType)
		if err := gocsv.UnmarshalDecoder(rowsDecoder(rows), out.Interface()); err != nil {
			return fmt.Errorf("decode rows: %w", err)
		}
		slice := out.Elem()
		for i := 0; i < slice.Len(); i++ {
			vals = append(vals[:0], int64(batch[i].Line))
			var problems []string
			vals, problems = l.k.plan.convert(slice.Index(i), l.opts.MaxFieldLength, vals)
			if len(problems) > 0 {
				if err := reject(batch[i].Line, strings.Join(problems, "; "), batch[i].Fields); err != nil {
					return err
				}
				continue
			}
			if err := ins.add(vals); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrFile, err)
		}
		l.res.Read++
		if row.Err != nil {
			if err := reject(row.Line, row.Err.Error(), row.Fields); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, row)
		if len(batch) == stageBatch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if err := ins.flush(); err != nil {
		return err
	}
	if _, err := l.exec("COMMIT"); err != nil {
		return err
	}
	committed = true
	keys := l.k.plan.keyCols()
	_, err = l.exec(fmt.Sprintf(`CREATE INDEX temp.stage_key ON stage(%s, src_line)`, quoteList(keys)))
	return err
}

func (l *loader) openRows(r io.Reader, path string) (format.RowReader, error) {
	fm := l.opts.Format
	if fm == "" || fm == "auto" {
		fm = "csv"
		if strings.EqualFold(filepath.Ext(path), ".xml") {
			fm = "xml"
		}
	}
	switch fm {
	case "csv":
		rr, err := format.NewCSVReader(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, err)
		}
		known := map[string]bool{}
		for _, c := range l.k.plan.cols {
			known[c.name] = true
		}
		present := map[string]bool{}
		for _, h := range rr.Header() {
			present[h] = true
			if !known[h] {
				l.warn("%s: ignoring unknown column %q", path, h)
			}
		}
		var missing []string
		for _, c := range l.k.plan.cols {
			if c.required && !present[c.name] {
				missing = append(missing, fmt.Sprintf("%q", c.name))
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: line 1: missing required column %s (a %s file needs %s)", ErrFile,
				strings.Join(missing, ", "), l.k.name, strings.Join(l.k.requiredNames(), ", "))
		}
		return rr, nil
	case "xml":
		return format.NewXMLReader(r, l.k.root, l.k.record, l.k.plan.names()), nil
	}
	return nil, fmt.Errorf("unknown format %q: want auto, csv or xml", fm)
}

// rowsDecoder hands gocsv a header and a batch of rows.
type rowsDecoder [][]string

func (r rowsDecoder) GetCSVRows() ([][]string, error) { return r, nil }

// stager inserts staged rows many at a time.
type stager struct {
	l       *loader
	width   int
	perStmt int
	pending []any
	full    *sql.Stmt
}

func newStager(l *loader, width int) *stager {
	per := 30000 / width
	if per > 200 {
		per = 200
	}
	return &stager{l: l, width: width, perStmt: per}
}

func (s *stager) sql(rows int) string {
	var b strings.Builder
	b.WriteString("INSERT INTO stage VALUES ")
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", s.width), ",") + ",'')"
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

func (s *stager) add(vals []any) error {
	s.pending = append(s.pending, vals...)
	if len(s.pending) == s.width*s.perStmt {
		if s.full == nil {
			st, err := s.l.conn.PrepareContext(s.l.ctx, s.sql(s.perStmt))
			if err != nil {
				return err
			}
			s.full = st
		}
		if _, err := s.full.ExecContext(s.l.ctx, s.pending...); err != nil {
			return err
		}
		s.pending = s.pending[:0]
	}
	return nil
}

func (s *stager) flush() error {
	if s.full != nil {
		defer s.full.Close()
	}
	if len(s.pending) == 0 {
		return nil
	}
	_, err := s.l.exec(s.sql(len(s.pending)/s.width), s.pending...)
	s.pending = s.pending[:0]
	return err
}

func quoteList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = fmt.Sprintf("%q", c)
	}
	return strings.Join(q, ", ")
}

// rejectWhere moves the staged rows matching cond (over alias s) to the
// rejects, with the message computed by the SQL expression msg.
func (l *loader) rejectWhere(cond, msg string, args ...any) error {
	cols := make([]string, len(l.k.plan.cols))
	for i, c := range l.k.plan.cols {
		cols[i] = fmt.Sprintf("s.%q", c.col)
	}
	n, err := l.exec(`INSERT INTO rejects(src_line, error, fields, staged)
SELECT s.src_line, `+msg+`, json_array(`+strings.Join(cols, ", ")+`), 1 FROM stage s WHERE `+cond, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	l.res.Rejected += n
	_, err = l.exec(`DELETE FROM stage WHERE src_line IN (SELECT src_line FROM rejects WHERE staged = 1)`)
	return err
}

// validateStaged runs the checks that need the whole file or the state.
func (l *loader) validateStaged() error {
	keys := l.k.plan.keyCols()
	var match []string
	var show []string
	for _, k := range keys {
		match = append(match, fmt.Sprintf("t.%q = s.%q", k, k))
		show = append(show, fmt.Sprintf("'%s ' || s.%q", k, k))
	}
	err := l.rejectWhere(`EXISTS (SELECT 1 FROM stage t WHERE `+strings.Join(match, " AND ")+` AND t.src_line < s.src_line)`,
		`'duplicate key ' || `+strings.Join(show, ` || ' ' || `)+` || ': first on line ' || (SELECT min(t.src_line) FROM stage t WHERE `+strings.Join(match, " AND ")+`)`)
	if err != nil {
		return err
	}
	if g := l.k.group; g != nil {
		var diff, names []string
		for _, c := range g.cols {
			diff = append(diff, fmt.Sprintf("f.%q IS NOT s.%q", c, c))
			names = append(names, fmt.Sprintf("CASE WHEN f.%q IS NOT s.%q THEN '%s, ' ELSE '' END", c, c, c))
		}
		first := fmt.Sprintf(`(SELECT min(t.src_line) FROM stage t WHERE t.%q = s.%q)`, g.by, g.by)
		cond := `s.src_line <> ` + first + ` AND EXISTS (SELECT 1 FROM stage f WHERE f.src_line = ` + first + ` AND (` + strings.Join(diff, " OR ") + `))`
		msg := `'` + g.what + ` fields differ from line ' || ` + first + ` || ': ' || rtrim((SELECT ` + strings.Join(names, " || ") + ` FROM stage f WHERE f.src_line = ` + first + `), ', ')`
		if err := l.rejectWhere(cond, msg); err != nil {
			return err
		}
	}
	if l.k.check != nil {
		if err := l.k.check(l); err != nil {
			return err
		}
	}
	for _, r := range l.k.refs {
		if err := l.checkRef(r); err != nil {
			return err
		}
	}
	return nil
}

// ref is a reference from a staged row to a record of another kind.
type ref struct {
	// what names it in messages; show is an SQL expression of the value.
	what, show string
	// cond selects staged rows (alias s) whose reference is unknown.
	cond string
	// hard references are always rejected; soft ones follow
	// load.unknown_references.
	hard bool
}

const refSample = 20

func (l *loader) checkRef(r ref) error {
	if r.hard || l.opts.UnknownReferences == "reject" {
		return l.rejectWhere(r.cond, `'unknown `+r.what+` ' || `+r.show)
	}
	n, err := l.count(`SELECT count(*) FROM stage s WHERE ` + r.cond)
	if err != nil || n == 0 {
		return err
	}
	rows, err := l.conn.QueryContext(l.ctx, `SELECT s.src_line, `+r.show+` FROM stage s WHERE `+r.cond+` ORDER BY s.src_line LIMIT ?`, refSample)
	if err != nil {
		return err
	}
	var msgs []string
	for rows.Next() {
		var line int64
		var v string
		if err := rows.Scan(&line, &v); err != nil {
			rows.Close()
			return err
		}
		msgs = append(msgs, fmt.Sprintf("%s:%d: unknown %s %s (applied anyway; load.unknown_references=warn)", l.res.File, line, r.what, v))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, m := range msgs {
		l.warn("%s", m)
	}
	if rest := n - int64(len(msgs)); rest > 0 {
		l.res.Warnings += rest
		l.opts.Warn(fmt.Sprintf("%s: %d more rows with an unknown %s", l.res.File, rest, r.what))
	}
	return nil
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
	rows, err := l.conn.QueryContext(l.ctx, `SELECT src_line, error, fields, staged FROM rejects ORDER BY src_line`)
	if err != nil {
		return err
	}
	defer rows.Close()
	err = fsx.WriteAtomic(out, 0o640, func(w io.Writer) error {
		cw := csv.NewWriter(w)
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
	// check runs extra validation over the staged rows.
	check func(*loader) error
	merge func(*loader) error
}

// group says which columns must agree on every row of one record.
type group struct {
	by, what string
	cols     []string
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
