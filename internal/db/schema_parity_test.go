package db_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestSchemaParityMigrationLists: the PostgreSQL migrations have the
// versions and names of the SQLite ones, so that a schema version means the
// same schema on both backends.
func TestSchemaParityMigrationLists(t *testing.T) {
	names := func(ms []db.Migration) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%d %s", m.Version, m.Name))
		}
		return out
	}
	lite, pg := names(db.Migrations()), names(db.PGMigrations())
	if !slices.Equal(lite, pg) {
		t.Fatalf("migration lists differ:\nSQLite:     %q\nPostgreSQL: %q", lite, pg)
	}
}

// TestSchemaParity applies every SQLite migration to a new file and every
// PostgreSQL migration to a new database, and compares the two schemas:
// tables, columns in order with their type class, NOT NULL, default and
// generated ids, primary keys, indexes (unique or not, their columns or
// expressions in order, their partial predicates) and foreign keys. CHECK
// constraints are not compared. Then it makes one change at a time to the
// PostgreSQL schema, in a transaction it rolls back, and checks that the
// comparison reports it, so that a parity found is not a comparison that
// sees nothing.
func TestSchemaParity(t *testing.T) {
	ctx := context.Background()
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := sql.Open("pgx", pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	// The migrations leave text to the database's collation: it must be C
	// (bytewise), as SQLite's BINARY is.
	var collate, ctype string
	if err := pg.QueryRowContext(ctx, `SELECT datcollate, datctype FROM pg_database WHERE datname = current_database()`).Scan(&collate, &ctype); err != nil {
		t.Fatal(err)
	}
	if collate != "C" || ctype != "C" {
		t.Errorf("database collation %q, character type %q: want C, which the PostgreSQL migrations rely on", collate, ctype)
	}
	for _, m := range db.PGMigrations() {
		tx, err := pg.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("PostgreSQL migration %s: %v", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("PostgreSQL migration %s: %v", m.Name, err)
		}
	}

	want, err := sqliteSchema(ctx, lite)
	if err != nil {
		t.Fatal(err)
	}
	for table, lines := range sqliteOnly {
		n := len(want[table])
		want[table] = slices.DeleteFunc(want[table], func(l string) bool { return slices.Contains(lines, l) })
		if len(want[table]) != n-len(lines) {
			t.Errorf("table %s: the SQLite schema no longer has all of %q (sqliteOnly)", table, lines)
		}
	}
	got, err := pgSchema(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range schemaDiff(want, got) {
		t.Error(d)
	}

	for _, c := range []struct{ change, reported string }{
		{`ALTER TABLE transfers DROP COLUMN temp_mtime`, "temp_mtime"},
		{`ALTER TABLE files ALTER COLUMN partner DROP NOT NULL`, "column partner text default"},
		{`ALTER TABLE files ALTER COLUMN partner DROP DEFAULT`, "column partner text not null\n"},
		{`ALTER TABLE inventory ALTER COLUMN on_hand TYPE text`, "column on_hand text"},
		{`ALTER TABLE runs ALTER COLUMN id DROP IDENTITY`, "column id integer not null\n"},
		{`ALTER TABLE http_watermarks DROP CONSTRAINT http_watermarks_pkey`, "primary key ()"},
		{`DROP INDEX triggers_pending`, "triggers_pending"},
		{`ALTER TABLE sku_xref DROP CONSTRAINT sku_xref_partner_external_code_key`, "unique (partner, external_code)"},
		{`DROP INDEX customers_phone; CREATE INDEX customers_phone ON customers(phone, customer) WHERE phone <> ''`, "customers_phone (phone, customer)"},
		{`DROP INDEX order_messages_status_pending;
CREATE UNIQUE INDEX order_messages_status_pending ON order_messages(order_id) WHERE stream = 'status' AND status = 'processing'`,
			"'processing'"},
		{`ALTER TABLE order_messages DROP CONSTRAINT order_messages_return_id_fkey`, "(return_id) -> returns(id)"},
		{`CREATE TABLE extra (id bigint)`, "table extra"},
	} {
		diff, err := changedPGSchema(ctx, pg, c.change, want)
		if err != nil {
			t.Fatalf("%s: %v", c.change, err)
		}
		if !strings.Contains(strings.Join(diff, "\n")+"\n", c.reported) {
			t.Errorf("after %s the comparison reports\n%s\nwhich does not name %q", c.change, strings.Join(diff, "\n"), c.reported)
		}
	}
}

// changedPGSchema makes change to pg in a transaction, compares the schema
// then with want, and rolls the change back.
func changedPGSchema(ctx context.Context, pg *sql.DB, change string, want schema) ([]string, error) {
	tx, err := pg.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, change); err != nil {
		return nil, err
	}
	got, err := pgSchema(ctx, tx)
	if err != nil {
		return nil, err
	}
	return schemaDiff(want, got), nil
}

// schema is a schema as the parity test compares it: by table name, the
// table's description, lines such as "column sku text not null default",
// "primary key (item, sku)", "unique (partner, external_code)", "index
// triggers_pending unique (file_code, record_key, sub_key) where status in
// 'ready' 'error'" or "foreign key (run_id) -> runs(id) on delete NO ACTION
// on update NO ACTION", sorted, after a first line listing the columns in
// order.
type schema map[string][]string

// schemaDiff lists the differences between the SQLite schema want and the
// PostgreSQL schema got.
func schemaDiff(want, got schema) []string {
	var diff []string
	names := slices.Sorted(maps.Keys(want))
	for n := range got {
		if _, ok := want[n]; !ok {
			names = append(names, n)
		}
	}
	for _, name := range names {
		w, inLite := want[name]
		g, inPG := got[name]
		switch {
		case !inPG:
			diff = append(diff, "table "+name+" is missing on PostgreSQL")
		case !inLite:
			diff = append(diff, "table "+name+" is only on PostgreSQL")
		case !reflect.DeepEqual(w, g):
			var b strings.Builder
			fmt.Fprintf(&b, "table %s differs:", name)
			for _, l := range w {
				if !slices.Contains(g, l) {
					fmt.Fprintf(&b, "\n  SQLite only:     %s", l)
				}
			}
			for _, l := range g {
				if !slices.Contains(w, l) {
					fmt.Fprintf(&b, "\n  PostgreSQL only: %s", l)
				}
			}
			diff = append(diff, b.String())
		}
	}
	return diff
}

// sqliteOnly are the lines of tables of the SQLite schema that the
// PostgreSQL schema leaves out on purpose. Migration 21 dropped the key of
// the import history's file on PostgreSQL, which checked it per row; on
// SQLite the import turns the checks off instead (db.WithoutKeyChecks).
var sqliteOnly = map[string][]string{
	"inventory_txns": {foreignKeyLine([]string{"file_id"}, "files", []string{"id"}, "NO ACTION", "NO ACTION")},
}

// keyGiven are the rowid aliases of SQLite (INTEGER PRIMARY KEY) whose
// value the code always gives: PostgreSQL has a plain key there, not an
// identity. The migration runner records each version it applies.
var keyGiven = map[string]bool{"schema_migrations.version": true}

// sqliteSchema describes the schema of d.
func sqliteSchema(ctx context.Context, d *db.DB) (schema, error) {
	tables, err := queryRows(ctx, d, scanString, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`)
	if err != nil {
		return nil, err
	}
	out := schema{}
	for _, t := range tables {
		type col struct {
			name, typ    string
			notNull, def bool
			pk           int
		}
		cols, err := queryRows(ctx, d, func(r db.Scanner) (col, error) {
			var c col
			var def sql.NullString
			err := r.Scan(&c.name, &c.typ, &c.notNull, &def, &c.pk)
			c.def = def.Valid
			return c, err
		}, `SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid`, t)
		if err != nil {
			return nil, err
		}
		type index struct {
			name, origin string
			unique       bool
			sql          sql.NullString
		}
		indexes, err := queryRows(ctx, d, func(r db.Scanner) (index, error) {
			var i index
			err := r.Scan(&i.name, &i.unique, &i.origin, &i.sql)
			return i, err
		}, `SELECT l.name, l."unique", l.origin, s.sql FROM pragma_index_list(?) l LEFT JOIN sqlite_schema s ON s.type = 'index' AND s.name = l.name`, t)
		if err != nil {
			return nil, err
		}
		// A rowid alias is the one INTEGER key column of a table that has
		// no index for its key (WITHOUT ROWID tables and other keys have).
		var pk []string
		rowidAlias := !slices.ContainsFunc(indexes, func(i index) bool { return i.origin == "pk" })
		for n := 1; ; n++ {
			i := slices.IndexFunc(cols, func(c col) bool { return c.pk == n })
			if i < 0 {
				break
			}
			pk = append(pk, cols[i].name)
			rowidAlias = rowidAlias && n == 1 && strings.EqualFold(cols[i].typ, "INTEGER")
		}
		var names []string
		var lines []string
		for _, c := range cols {
			names = append(names, c.name)
			// A key column is NOT NULL on PostgreSQL whatever it says; on
			// SQLite a rowid table's key column takes NULL unless it says
			// NOT NULL, but the code never gives one NULL.
			generated := c.pk > 0 && rowidAlias && !keyGiven[t+"."+c.name]
			lines = append(lines, columnLine(c.name, sqliteTypeClass(c.typ), c.notNull || c.pk > 0, c.def, generated))
		}
		lines = append(lines, "primary key ("+strings.Join(pk, ", ")+")")
		for _, i := range indexes {
			if i.origin == "pk" {
				continue
			}
			// An index of CREATE INDEX is described from its statement,
			// which names its expressions and predicate; one of a UNIQUE
			// constraint has no statement, and only columns.
			if i.sql.Valid {
				on, where, err := splitIndexSQL(i.sql.String)
				if err != nil {
					return nil, fmt.Errorf("index %s: %w", i.name, err)
				}
				lines = append(lines, indexLine(i.name, i.unique, on, where))
				continue
			}
			on, err := queryRows(ctx, d, scanString, `SELECT name FROM pragma_index_info(?) ORDER BY seqno`, i.name)
			if err != nil {
				return nil, err
			}
			lines = append(lines, "unique ("+strings.Join(on, ", ")+")")
		}
		type fk struct {
			id                 int
			table, from, to    string
			onUpdate, onDelete string
		}
		fks, err := queryRows(ctx, d, func(r db.Scanner) (fk, error) {
			var f fk
			err := r.Scan(&f.id, &f.table, &f.from, &f.to, &f.onUpdate, &f.onDelete)
			return f, err
		}, `SELECT id, "table", "from", "to", on_update, on_delete FROM pragma_foreign_key_list(?) ORDER BY id, seq`, t)
		if err != nil {
			return nil, err
		}
		for k := 0; k < len(fks); {
			var from, to []string
			f := fks[k]
			for ; k < len(fks) && fks[k].id == f.id; k++ {
				from, to = append(from, fks[k].from), append(to, fks[k].to)
			}
			lines = append(lines, foreignKeyLine(from, f.table, to, f.onDelete, f.onUpdate))
		}
		slices.Sort(lines)
		out[t] = append([]string{"columns " + strings.Join(names, ", ")}, lines...)
	}
	return out, nil
}

// pgSchema describes the schema of the current schema of q (public).
func pgSchema(ctx context.Context, q db.Querier) (schema, error) {
	tables, err := queryRows(ctx, q, scanString, `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		return nil, err
	}
	out := schema{}
	for _, t := range tables {
		var names, lines []string
		cols, err := queryRows(ctx, q, func(r db.Scanner) (string, error) {
			var name, typ string
			var notNull, def, generated bool
			err := r.Scan(&name, &typ, &notNull, &def, &generated)
			names = append(names, name)
			return columnLine(name, pgTypeClass(typ), notNull, def, generated), err
		}, `SELECT column_name, data_type, is_nullable = 'NO', column_default IS NOT NULL, is_identity = 'YES'
FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, t)
		if err != nil {
			return nil, err
		}
		lines = append(lines, cols...)
		// The columns or expressions of each index, separated by a unit
		// separator, as pg_get_indexdef writes them.
		indexes, err := queryRows(ctx, q, func(r db.Scanner) (string, error) {
			var name, on, where string
			var unique, primary, constraint bool
			err := r.Scan(&name, &unique, &primary, &constraint, &on, &where)
			cols := strings.Split(on, "\x1f")
			switch {
			case primary:
				return "primary key (" + strings.Join(cols, ", ") + ")", err
			case constraint:
				return "unique (" + strings.Join(cols, ", ") + ")", err
			}
			return indexLine(name, unique, cols, where), err
		}, `SELECT c.relname, i.indisunique, i.indisprimary,
  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype = 'u'),
  (SELECT string_agg(pg_get_indexdef(i.indexrelid, n, true), chr(31) ORDER BY n) FROM generate_series(1, i.indnkeyatts) n),
  coalesce(pg_get_expr(i.indpred, i.indrelid, true), '')
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass`, t)
		if err != nil {
			return nil, err
		}
		if !slices.ContainsFunc(indexes, func(l string) bool { return strings.HasPrefix(l, "primary key ") }) {
			indexes = append(indexes, "primary key ()")
		}
		lines = append(lines, indexes...)
		fks, err := queryRows(ctx, q, func(r db.Scanner) (string, error) {
			var table, from, to, onDelete, onUpdate string
			err := r.Scan(&table, &from, &to, &onDelete, &onUpdate)
			return foreignKeyLine(strings.Split(from, ","), table, strings.Split(to, ","), pgAction(onDelete), pgAction(onUpdate)), err
		}, `SELECT k.confrelid::regclass::text,
  (SELECT string_agg(a.attname, ',' ORDER BY n) FROM unnest(k.conkey) WITH ORDINALITY u(att, n) JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.att),
  (SELECT string_agg(a.attname, ',' ORDER BY n) FROM unnest(k.confkey) WITH ORDINALITY u(att, n) JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.att),
  k.confdeltype::text, k.confupdtype::text
FROM pg_constraint k WHERE k.conrelid = $1::regclass AND k.contype = 'f'`, t)
		if err != nil {
			return nil, err
		}
		lines = append(lines, fks...)
		slices.Sort(lines)
		out[t] = append([]string{"columns " + strings.Join(names, ", ")}, lines...)
	}
	return out, nil
}

// queryRows runs query on q and reads each row with scan.
func queryRows[T any](ctx context.Context, q db.Querier, scan func(db.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", query, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanString(r db.Scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

func columnLine(name, class string, notNull, def, generated bool) string {
	l := "column " + name + " " + class
	if notNull {
		l += " not null"
	}
	if def {
		l += " default"
	}
	if generated {
		l += " generated"
	}
	return l
}

// indexLine describes an index of CREATE INDEX: its name, whether it is
// unique, its columns or expressions and its predicate, normalised.
func indexLine(name string, unique bool, on []string, where string) string {
	l := "index " + name
	if unique {
		l += " unique"
	}
	var cols []string
	for _, c := range on {
		cols = append(cols, normalizeSQL(c))
	}
	l += " (" + strings.Join(cols, ", ") + ")"
	if where != "" {
		l += " where " + normalizeSQL(where)
	}
	return l
}

func foreignKeyLine(from []string, table string, to []string, onDelete, onUpdate string) string {
	return fmt.Sprintf("foreign key (%s) -> %s(%s) on delete %s on update %s",
		strings.Join(from, ", "), table, strings.Join(to, ", "), onDelete, onUpdate)
}

// sqliteTypeClass is the class of a SQLite column's declared type, by
// SQLite's rules of type affinity.
func sqliteTypeClass(decl string) string {
	switch d := strings.ToUpper(decl); {
	case strings.Contains(d, "INT"):
		return "integer"
	case strings.Contains(d, "CHAR"), strings.Contains(d, "CLOB"), strings.Contains(d, "TEXT"):
		return "text"
	case d == "", strings.Contains(d, "BLOB"):
		return "blob"
	case strings.Contains(d, "REAL"), strings.Contains(d, "FLOA"), strings.Contains(d, "DOUB"):
		return "real"
	}
	return "numeric"
}

// pgTypeClass is the class of a PostgreSQL type (information_schema's
// data_type) that stores what SQLite's class stores.
func pgTypeClass(typ string) string {
	switch typ {
	case "bigint", "integer", "smallint":
		return "integer"
	case "text", "character varying", "character":
		return "text"
	case "bytea":
		return "blob"
	case "double precision", "real":
		return "real"
	case "numeric":
		return "numeric"
	}
	return typ
}

// pgAction names a foreign key action code of pg_constraint as SQLite's
// PRAGMA foreign_key_list does.
func pgAction(code string) string {
	return map[string]string{"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}[code]
}

// splitIndexSQL returns the columns or expressions and the predicate of a
// CREATE INDEX statement: the comma-separated list in the parentheses
// after ON table, and what follows WHERE.
func splitIndexSQL(stmt string) (on []string, where string, err error) {
	open := strings.Index(stmt, "(")
	if open < 0 {
		return nil, "", fmt.Errorf("no column list in %q", stmt)
	}
	depth, quoted, start := 0, false, open+1
	for i := open; i < len(stmt); i++ {
		switch c := stmt[i]; {
		case c == '\'':
			quoted = !quoted // '' inside a literal toggles twice
		case quoted:
		case c == '(':
			depth++
		case c == ',' && depth == 1:
			on = append(on, stmt[start:i])
			start = i + 1
		case c == ')':
			depth--
			if depth == 0 {
				on = append(on, stmt[start:i])
				rest := strings.TrimSpace(stmt[i+1:])
				if rest != "" {
					w, ok := strings.CutPrefix(rest, "WHERE ")
					if !ok {
						return nil, "", fmt.Errorf("unexpected %q after the column list of %q", rest, stmt)
					}
					where = w
				}
				return on, where, nil
			}
		}
	}
	return nil, "", fmt.Errorf("unbalanced parentheses in %q", stmt)
}

var (
	// PostgreSQL writes x IN (a, b) back as x = ANY (ARRAY[a, b]),
	pgAny = regexp.MustCompile(`=\s*ANY\s*\(\s*ARRAY\[`)
	// and gives text literals their type.
	pgTextCast = regexp.MustCompile(`::text\b`)
	// Parentheses, brackets and commas only group what both engines write
	// in the same order; what is left is compared token by token.
	sqlPunct = regexp.MustCompile(`[()\[\],]`)
)

// normalizeSQL reduces an index expression or predicate, as SQLite keeps
// its text or as PostgreSQL writes it back, to a form in which the two
// compare equal: outside string literals, lower case tokens without casts,
// identifier quotes and grouping; the literals in their case; runs of
// white space as one space. It is made
// for the simple expressions of the migrations (comparisons, IN lists,
// AND, IS NULL, function calls); one that PostgreSQL writes back in
// another order shows as a difference, to be looked at.
func normalizeSQL(s string) string {
	// Splitting at quotes puts the literals at the odd indexes (an escaped
	// quote, '', makes an empty part outside, which stays empty).
	parts := strings.Split(s, "'")
	for i := 0; i < len(parts); i += 2 {
		p := pgAny.ReplaceAllString(parts[i], "IN (")
		p = pgTextCast.ReplaceAllString(p, "")
		p = strings.ReplaceAll(p, `"`, "")
		p = sqlPunct.ReplaceAllString(p, " ")
		parts[i] = " " + strings.ToLower(strings.Join(strings.Fields(p), " ")) + " "
	}
	return strings.Join(strings.Fields(strings.Join(parts, "'")), " ")
}
