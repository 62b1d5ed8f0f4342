package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotEmpty means the target of a copy holds a posbridge schema already.
var ErrNotEmpty = errors.New("target database is not empty")

// ErrCopyMismatch means a table read back from the target differs from the
// source: the copy was rolled back.
var ErrCopyMismatch = errors.New("copy does not match its source")

// TableCopy is what CopyTo copied of one table: its rows and their
// checksum, the same on both sides.
type TableCopy struct {
	Table    string `json:"table"`
	Rows     int64  `json:"rows"`
	Checksum string `json:"checksum"`
}

// CopyTo copies the whole state of d, a SQLite database at the current
// schema version, into the empty PostgreSQL database at target: it creates
// the schema with the PostgreSQL migrations, copies every table (its
// schema_migrations rows included) with COPY in foreign-key order, moves
// every identity sequence past the highest id the source ever gave, and
// reads each table back to compare its row count and checksum with the
// source's. The source is read in one read transaction, so the copy is one
// consistent state even if another process writes meanwhile; the target is
// written in one transaction, so a copy that fails leaves it empty.
func (d *DB) CopyTo(ctx context.Context, target string, opts Options) ([]TableCopy, error) {
	if d.Dialect != SQLite {
		return nil, fmt.Errorf("%w: db copy copies a SQLite database, and %s is PostgreSQL already", ErrNotSQLite, d.Path)
	}
	if !IsURL(target) {
		return nil, fmt.Errorf("copy to %q: not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE)", target)
	}
	opts.Create, opts.NoMigrate = true, true
	pg, err := Open(ctx, target, opts)
	if err != nil {
		return nil, err
	}
	defer pg.Close()
	src, err := d.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Path, Classify(err))
	}
	defer src.Rollback()
	tables, err := sqliteCopyOrder(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Path, Classify(err))
	}
	if v, err := sourceVersion(ctx, src); err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Path, Classify(err))
	} else if v != LatestVersion() {
		return nil, fmt.Errorf("copy %s: schema version %d, this binary writes %d: run 'posbridge db migrate' first", d.Path, v, LatestVersion())
	}
	conn, err := pg.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("copy to %s: %w", pg.Path, Classify(err))
	}
	defer conn.Close()
	var out []TableCopy
	err = WithTx(ctx, conn, true, func() error {
		// The lock of Migrate: an init or migrate of another host waits
		// for this copy, and sees the schema it made.
		if err := LockForTx(ctx, conn, migrationLock); err != nil {
			return err
		}
		if err := checkEmptyTarget(ctx, conn, tables); err != nil {
			return err
		}
		for _, m := range PGMigrations() {
			if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.Name, err)
			}
		}
		seqs, err := sqliteSequences(ctx, src)
		if err != nil {
			return fmt.Errorf("read %s: %w", d.Path, err)
		}
		for _, t := range tables {
			tc, err := copyTable(ctx, src, conn, t, seqs[t.name])
			if err != nil {
				return fmt.Errorf("copy table %s: %w", t.name, err)
			}
			out = append(out, tc)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy %s to %s: %w", d.Path, pg.Path, Classify(redactErr(err, target)))
	}
	return out, nil
}

// copyTableInfo is a table as CopyTo copies it: its columns, in order, and
// those of its primary key, by which both sides are read.
type copyTableInfo struct {
	name    string
	columns []string
	pk      []string
}

// orderBy is the ORDER BY clause that reads t the same way on both
// engines: by its primary key, else by every column with NULLs first
// (SQLite's order, not PostgreSQL's default).
func (t copyTableInfo) orderBy() string {
	keys := t.pk
	if len(keys) == 0 {
		keys = t.columns
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, quoteName(k)+" NULLS FIRST")
	}
	return " ORDER BY " + strings.Join(parts, ", ")
}

func (t copyTableInfo) selectAll() string {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = quoteName(c)
	}
	return "SELECT " + strings.Join(cols, ", ") + " FROM " + quoteName(t.name) + t.orderBy()
}

// quoteName quotes an identifier for either engine.
func quoteName(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// sqliteCopyOrder lists the tables of the SQLite schema so that a table
// comes after those its foreign keys name (a key naming its own table, as
// runs.parent_id, is satisfied by the primary-key order of the rows).
func sqliteCopyOrder(ctx context.Context, q Querier) ([]copyTableInfo, error) {
	names, err := queryStrings(ctx, q, `SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	infos := map[string]copyTableInfo{}
	parents := map[string][]string{}
	for _, n := range names {
		t := copyTableInfo{name: n}
		rows, err := q.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, n)
		if err != nil {
			return nil, err
		}
		pkAt := map[int]string{}
		for rows.Next() {
			var col string
			var pk int
			if err := rows.Scan(&col, &pk); err != nil {
				rows.Close()
				return nil, err
			}
			t.columns = append(t.columns, col)
			if pk > 0 {
				pkAt[pk] = col
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i := 1; i <= len(pkAt); i++ {
			t.pk = append(t.pk, pkAt[i])
		}
		infos[n] = t
		if parents[n], err = queryStrings(ctx, q, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?) ORDER BY 1`, n); err != nil {
			return nil, err
		}
	}
	var order []copyTableInfo
	done := map[string]bool{}
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		if done[n] {
			return nil
		}
		if slices.Contains(path, n) {
			return fmt.Errorf("foreign keys form a cycle: %s", strings.Join(append(path, n), " -> "))
		}
		for _, p := range parents[n] {
			if p != n {
				if err := visit(p, append(path, n)); err != nil {
					return err
				}
			}
		}
		done[n] = true
		order = append(order, infos[n])
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

func queryStrings(ctx context.Context, q Querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func sourceVersion(ctx context.Context, q Querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// sqliteSequences is the highest id each AUTOINCREMENT table has ever
// given (sqlite_sequence), which is above max(id) when the last rows were
// deleted: the copy's identity sequences start past it, so that no id is
// given twice, as AUTOINCREMENT promises.
func sqliteSequences(ctx context.Context, q Querier) (map[string]int64, error) {
	seqs := map[string]int64{}
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_sequence'`).Scan(&n); err != nil || n == 0 {
		return seqs, err
	}
	rows, err := q.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return nil, err
		}
		seqs[name] = seq
	}
	return seqs, rows.Err()
}

// checkEmptyTarget refuses a PostgreSQL database that has any of the
// tables of the copy: its state would be mixed with the copy's, or the
// migrations would fail half way.
func checkEmptyTarget(ctx context.Context, conn *sql.Conn, tables []copyTableInfo) error {
	have, err := queryStrings(ctx, conn, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name`)
	if err != nil {
		return err
	}
	var found []string
	for _, t := range tables {
		if slices.Contains(have, t.name) {
			found = append(found, t.name)
		}
	}
	slices.Sort(found)
	if len(found) > 0 {
		if len(found) > 3 {
			found = append(found[:3], "...")
		}
		return fmt.Errorf("%w: it has posbridge tables (%s); db copy needs a new, empty database", ErrNotEmpty, strings.Join(found, ", "))
	}
	return nil
}

// copyTable copies table t from src to the PostgreSQL conn with COPY,
// moves its identity sequence past lastID and the highest id copied, and
// compares what the target holds then with what was read.
func copyTable(ctx context.Context, src *sql.Tx, conn *sql.Conn, t copyTableInfo, lastID int64) (TableCopy, error) {
	types := map[string]string{}
	var identity []string
	rows, err := conn.QueryContext(ctx, `SELECT column_name, data_type, is_identity FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name = ?`, t.name)
	if err != nil {
		return TableCopy{}, err
	}
	for rows.Next() {
		var col, typ, ident string
		if err := rows.Scan(&col, &typ, &ident); err != nil {
			rows.Close()
			return TableCopy{}, err
		}
		types[col] = typ
		if ident == "YES" {
			identity = append(identity, col)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return TableCopy{}, err
	}
	for _, c := range t.columns {
		if types[c] == "" {
			return TableCopy{}, fmt.Errorf("column %s is not in the PostgreSQL schema", c)
		}
	}

	srcRows, err := src.QueryContext(ctx, t.selectAll())
	if err != nil {
		return TableCopy{}, err
	}
	defer srcRows.Close()
	rs := &rowSource{rows: srcRows, t: t, types: types, sum: newRowSum(), maxID: map[string]int64{}}
	err = PgxConn(conn, func(pc *pgx.Conn) error {
		_, err := pc.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, rs)
		return err
	})
	// pgx cancels the COPY on the source's error, and reports the
	// cancellation (57014, which Classify takes for a timeout): the
	// source's error is the one to tell.
	if rs.err != nil {
		return TableCopy{}, rs.err
	}
	if err != nil {
		return TableCopy{}, err
	}
	if err := srcRows.Err(); err != nil {
		return TableCopy{}, err
	}
	for _, col := range identity {
		if next := max(lastID, rs.maxID[col]); next > 0 {
			if _, err := conn.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence(?, ?), ?)`, quoteName(t.name), col, next); err != nil {
				return TableCopy{}, fmt.Errorf("set the sequence of %s: %w", col, err)
			}
		}
	}
	want := TableCopy{Table: t.name, Rows: rs.n, Checksum: rs.sum.hex()}
	got, err := tableChecksum(ctx, conn, t)
	if err != nil {
		return TableCopy{}, err
	}
	if got != want {
		return TableCopy{}, fmt.Errorf("%w: source %d rows, checksum %s; PostgreSQL %d rows, checksum %s",
			ErrCopyMismatch, want.Rows, want.Checksum, got.Rows, got.Checksum)
	}
	return got, nil
}

// tableChecksum reads table t from q and returns its row count and
// checksum.
func tableChecksum(ctx context.Context, q Querier, t copyTableInfo) (TableCopy, error) {
	rows, err := q.QueryContext(ctx, t.selectAll())
	if err != nil {
		return TableCopy{}, err
	}
	defer rows.Close()
	vals, ptrs := make([]any, len(t.columns)), make([]any, len(t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	sum, n := newRowSum(), int64(0)
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return TableCopy{}, err
		}
		sum.add(vals)
		n++
	}
	if err := rows.Err(); err != nil {
		return TableCopy{}, err
	}
	return TableCopy{Table: t.name, Rows: n, Checksum: sum.hex()}, nil
}

// rowSource feeds the rows of a SQLite table to COPY, each value as the
// PostgreSQL column takes it, adding the values as read to the checksum
// and keeping the highest value of each integer column (for the identity
// sequences).
type rowSource struct {
	rows  *sql.Rows
	t     copyTableInfo
	types map[string]string
	sum   *rowSum
	maxID map[string]int64
	n     int64
	vals  []any
	err   error
}

func (s *rowSource) Next() bool {
	if s.err != nil || !s.rows.Next() {
		return false
	}
	vals, ptrs := make([]any, len(s.t.columns)), make([]any, len(s.t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if s.err = s.rows.Scan(ptrs...); s.err != nil {
		return false
	}
	s.sum.add(vals)
	s.n++
	for i, c := range s.t.columns {
		v, err := pgValue(vals[i], s.types[c])
		if err != nil {
			s.err = fmt.Errorf("row %d, column %s: %w", s.n, c, err)
			return false
		}
		if id, ok := v.(int64); ok && id > s.maxID[c] {
			s.maxID[c] = id
		}
		vals[i] = v
	}
	s.vals = vals
	return true
}

func (s *rowSource) Values() ([]any, error) { return s.vals, nil }

func (s *rowSource) Err() error { return s.err }

// pgValue is v, a value read from SQLite, as a column of PostgreSQL type
// typ takes it. Integer columns of SQLite hold integers (INTEGER affinity
// turns integral text into one); what is left is a value PostgreSQL would
// refuse, named here rather than by COPY.
func pgValue(v any, typ string) (any, error) {
	switch typ {
	case "bigint", "integer", "smallint":
		switch x := v.(type) {
		case nil, int64:
			return v, nil
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
				return int64(x), nil
			}
		}
		return nil, fmt.Errorf("%s column holds %T %v", typ, v, v)
	case "text":
		switch x := v.(type) {
		case int64:
			return strconv.FormatInt(x, 10), nil
		case []byte:
			return string(x), nil
		}
	case "bytea":
		if x, ok := v.(string); ok {
			return []byte(x), nil
		}
	}
	return v, nil
}

// rowSum is the checksum of a table's rows: SHA-256 over each value with
// its kind, so that the integer 1, the text '1', an empty text and NULL
// all differ, and the same rows give the same sum on both engines.
type rowSum struct {
	h   hash.Hash
	buf []byte
}

func newRowSum() *rowSum { return &rowSum{h: sha256.New()} }

func (s *rowSum) add(vals []any) {
	b := s.buf[:0]
	for _, v := range vals {
		switch x := v.(type) {
		case nil:
			b = append(b, 'N')
		case int64:
			b = strconv.AppendInt(append(b, 'i'), x, 10)
		case float64:
			b = strconv.AppendFloat(append(b, 'f'), x, 'g', -1, 64)
		case string:
			b = append(strconv.AppendInt(append(b, 's'), int64(len(x)), 10), ':')
			b = append(b, x...)
		case []byte:
			b = append(strconv.AppendInt(append(b, 'b'), int64(len(x)), 10), ':')
			b = append(b, x...)
		default:
			b = fmt.Appendf(b, "?%T:%v", v, v)
		}
		b = append(b, ';')
	}
	s.h.Write(append(b, '\n'))
	s.buf = b
}

func (s *rowSum) hex() string { return hex.EncodeToString(s.h.Sum(nil)) }
