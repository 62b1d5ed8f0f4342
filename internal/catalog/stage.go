package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/posbridge/posbridge/internal/format"
)

// stageBatch is how many rows a batch of the parser holds, not counting
// those that did not split into fields.
const stageBatch = 256

// parsed is one batch of rows, converted: the staged values of the good
// rows, flattened, and the rejected rows.
type parsed struct {
	vals    []any
	rejects []rejected
	read    int64
	err     error
}

type rejected struct {
	line   int
	msg    string
	fields []string
}

// stage reads the whole file into the temporary table stage, rejecting rows
// whose fields are malformed into the temporary table rejects. Parsing and
// validation run in a goroutine while this one inserts, so the two cores
// work at once.
func (l *loader) stage(r io.Reader, path string) error {
	rr, err := l.openRows(r, path)
	if err != nil {
		return err
	}
	l.header = rr.Header()
	for _, t := range tempTables {
		if _, err := l.exec(l.dropTempSQL(t)); err != nil {
			return err
		}
	}
	ddl := []string{
		l.k.plan.stageDDL("stage"),
		// group_key is the record's group (group.by) a rejected row belongs
		// to, when the kind has groups.
		`CREATE TEMP TABLE rejects (src_line INTEGER NOT NULL, rec INTEGER, error TEXT NOT NULL, fields TEXT NOT NULL,
  staged INTEGER NOT NULL DEFAULT 0, group_key TEXT)`,
		keysTempDDL("gone"),
		keysTempDDL("cancelled"),
		`CREATE TEMP TABLE events (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', capture TEXT NOT NULL)`,
	}
	for _, q := range ddl {
		if _, err := l.exec(q); err != nil {
			return err
		}
	}
	// Writes to temporary tables take no lock on the database, so staging
	// runs in its own transaction before the write transaction. It is a
	// plain BEGIN, not db.WithTx: on SQLite a write transaction (BEGIN
	// IMMEDIATE) would hold every other writer off while the file is
	// parsed; on PostgreSQL both are BEGIN.
	if _, err := l.exec("BEGIN"); err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			l.conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()

	batches, stop := l.startParse(rr)
	defer stop()

	ins := newStager(l, "stage", len(l.k.plan.cols)+2, "'"+l.stagedAs+"'")
	defer ins.close()
	rej := newStager(l, "rejects(src_line, error, fields, group_key)", 4, "")
	defer rej.close()
	groupField := l.groupField()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		l.res.Read += b.read
		for _, rj := range b.rejects {
			l.res.Rejected++
			fields := format.Clip(rj.fields)
			js, _ := json.Marshal(fields)
			if err := rej.add([]any{rj.line, rj.msg, string(js), rawGroupKey(fields, groupField)}); err != nil {
				return err
			}
		}
		if err := ins.add(b.vals); err != nil {
			return err
		}
	}
	// The parser stops early when the load is interrupted: that is not the
	// end of the file.
	if err := l.ctx.Err(); err != nil {
		return err
	}
	if err := ins.flush(); err != nil {
		return err
	}
	if err := rej.flush(); err != nil {
		return err
	}
	// The parser is done (batches is closed): its notes are complete.
	l.readerDone(rr, path)
	if _, err := l.exec("COMMIT"); err != nil {
		return err
	}
	committed = true
	return nil
}

// readerDone passes on the notes of rr, whose rows have all been read,
// and notes the columns the file has.
func (l *loader) readerDone(rr format.RowReader, path string) {
	for _, w := range rr.Warnings() {
		l.warn("%s: %s", path, w)
	}
	l.setPresent(rr)
}

// setPresent notes the staging columns of the columns rr has seen.
func (l *loader) setPresent(rr format.RowReader) {
	l.present = map[string]bool{}
	for _, name := range rr.Present() {
		for _, c := range l.k.plan.cols {
			if c.name == name {
				l.present[c.col] = true
			}
		}
	}
}

// groupField is the position in the file's header of the column that
// groups rows into records (group.by), -1 when the kind has no groups.
func (l *loader) groupField() int {
	if l.k.group == nil {
		return -1
	}
	return slices.Index(l.header, l.k.group.by)
}

// rawGroupKey is the group of a row rejected as read, from its field at
// position i: NULL when it has none, or none a staged row could have
// (text that is no valid text never is a key).
func rawGroupKey(fields []string, i int) any {
	if i < 0 || i >= len(fields) || format.CheckText(fields[i], 0) != nil {
		return nil
	}
	return fields[i]
}

// keysTempDDL creates the temporary table t of record keys (gone,
// cancelled).
func keysTempDDL(t string) string {
	return `CREATE TEMP TABLE ` + t + ` (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`
}

// tempTables are the loader's temporary tables, dropped before and after.
var tempTables = []string{"stage", "rejects", "gone", "cancelled", "events", "firsts", "inv", "badtotals"}

// startParse runs parse over rr on a goroutine of its own and returns its
// batches, and stop, which ends the parser and waits until it has: it
// reads the file (and warns through the loader), so nothing may read the
// file again or look at the warnings before it is gone. (A first load that
// turns to the staging table reads the file again from the start: a
// parser left running took rows out of that second read.)
func (l *loader) startParse(rr format.RowReader) (<-chan parsed, func()) {
	ctx, cancel := context.WithCancel(l.ctx)
	batches := make(chan parsed, 8)
	go l.parse(ctx, rr, batches)
	return batches, func() {
		cancel()
		for range batches {
		}
	}
}

// parse reads rows, maps their fields onto the kind's plan, validates them
// and sends the results in batches. It closes out.
func (l *loader) parse(ctx context.Context, rr format.RowReader, out chan<- parsed) {
	defer close(out)
	send := func(p parsed) bool {
		if ctx.Err() != nil {
			return false // not the buffer's room: stop reading
		}
		select {
		case out <- p:
			return true
		case <-ctx.Done():
			return false
		}
	}
	p := l.k.plan
	// The header is mapped once; each row's fields are then placed by
	// position, without reflection.
	at := p.columnsOf(rr.Header())
	fields := make([]string, len(p.cols))
	width := len(p.cols) + 2
	var rec int64
	good := 0
	cur := parsed{vals: make([]any, 0, stageBatch*width)}
	for {
		row, err := rr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			send(parsed{err: fmt.Errorf("%w: %v", ErrFile, err)})
			return
		}
		cur.read++
		if row.Err != nil {
			cur.rejects = append(cur.rejects, rejected{row.Line, row.Err.Error(), row.Fields})
			continue
		}
		rec++
		start := len(cur.vals)
		cur.vals = append(cur.vals, rec, int64(row.Line))
		fill(fields, at, row.Fields)
		var problems []string
		cur.vals, problems = p.convert(fields, l.opts.MaxFieldLength, cur.vals)
		if len(problems) > 0 {
			cur.vals = cur.vals[:start]
			cur.rejects = append(cur.rejects, rejected{row.Line, strings.Join(problems, "; "), row.Fields})
		}
		if good++; good == stageBatch {
			if !send(cur) {
				return
			}
			cur = parsed{vals: make([]any, 0, stageBatch*width)}
			good = 0
		}
	}
	send(cur)
}

func (l *loader) openRows(r io.Reader, path string) (format.RowReader, error) {
	fm, err := format.Detect(path, l.opts.Format)
	if err != nil {
		return nil, err
	}
	switch fm {
	case format.CSV:
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
			noun := "column"
			if len(missing) > 1 {
				noun = "columns"
			}
			return nil, fmt.Errorf("%w: line 1: missing required %s %s (%s files need %s)", ErrFile,
				noun, strings.Join(missing, ", "), l.k.name, strings.Join(l.k.requiredNames(), ", "))
		}
		return rr, nil
	default:
		return format.NewXMLReader(r, l.k.root, l.k.record, l.k.plan.names()), nil
	}
}

// stager inserts rows many at a time with one prepared statement, one
// round trip for each batch of rows on PostgreSQL.
type stager struct {
	l       *loader
	into    string
	width   int
	perStmt int
	pending []any
	full    *sql.Stmt
	// more is SQL that follows each row's parameters in its VALUES
	// (the action the staging table's rows start with).
	more string
}

// newStager inserts rows of width values into, a table and its columns,
// each row's values followed by more.
func newStager(l *loader, into string, width int, more string) *stager {
	per := 30000 / width
	if per > 200 {
		per = 200
	}
	return &stager{l: l, into: into, width: width, perStmt: per, more: more}
}

func (s *stager) sql(rows int) string {
	return "INSERT INTO " + s.into + " VALUES " + valueRows(rows, s.width, s.more)
}

// add queues the flattened values of whole rows.
func (s *stager) add(vals []any) error {
	for len(vals) > 0 {
		room := s.width*s.perStmt - len(s.pending)
		n := min(room, len(vals))
		s.pending = append(s.pending, vals[:n]...)
		vals = vals[n:]
		if len(s.pending) < s.width*s.perStmt {
			continue
		}
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

// flush inserts what is left.
func (s *stager) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	_, err := s.l.exec(s.sql(len(s.pending)/s.width), s.pending...)
	s.pending = s.pending[:0]
	return err
}

func (s *stager) close() {
	if s.full != nil {
		s.full.Close()
	}
}
