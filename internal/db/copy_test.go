package db_test

import (
	"context"
	"errors"
	"fmt"
	neturl "net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// copySource is a SQLite database with rows in tables linked by foreign
// keys, values of every kind (NULL, empty and non-ASCII text, text of
// digits, large integers), a sequence, and a deleted last run, so that
// sqlite_sequence is above max(id).
func copySource(t *testing.T) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Zürich Store', '2026-11-23T05:00:00Z', '2026-11-23T05:00:00Z')`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Trail "Runner", 2', 'x', 'x'), ('007', '', 'x', 'x')`,
		`INSERT INTO skus(item, sku, created_at, updated_at) VALUES ('IT1', 'BLK-8', 'x', 'x'), ('007', '', 'x', 'x')`,
		`INSERT INTO runs(command, status, started_at, ended_at, pid) VALUES ('load items', 'ok', 'x', NULL, 9007199254740993)`,
		`INSERT INTO runs(command, status, started_at, ended_at) VALUES ('export items', 'ok', 'x', 'y'), ('export items', 'failed', 'x', 'y')`,
		`INSERT INTO files(direction, kind, name, path, sha256, size, status, run_id, created_at, sequence) VALUES ('out', 'items', 'a.xml', '/x/a.xml', 'ab', 12, 'complete', 2, 'x', 1)`,
		`INSERT INTO sequences(kind, last) VALUES ('items', 1)`,
		`DELETE FROM runs WHERE id = 3`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return d
}

// TestCopyTo copies a SQLite database into an empty PostgreSQL one and
// reads every table of both back, row by row: the same rows and values,
// the same schema version, and identity columns that continue past the
// highest id the source ever gave.
func TestCopyTo(t *testing.T) {
	ctx := context.Background()
	src := copySource(t)
	url := pgtest.Start(t)
	tables, err := src.CopyTo(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	names, err := src.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var copied []string
	at := map[string]int{}
	for i, tc := range tables {
		copied = append(copied, tc.Table)
		at[tc.Table] = i
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(tc.Checksum) {
			t.Errorf("%s: checksum %q", tc.Table, tc.Checksum)
		}
	}
	slices.Sort(copied)
	if !slices.Equal(copied, names) {
		t.Fatalf("copied tables %v, want every table %v", copied, names)
	}
	// Foreign-key order: a parent before its children.
	for _, pc := range [][2]string{{"items", "skus"}, {"runs", "files"}, {"files", "triggers"}, {"orders", "order_lines"}} {
		if at[pc[0]] > at[pc[1]] {
			t.Errorf("%s copied after %s, which refers to it", pc[0], pc[1])
		}
	}

	pg, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if v, err := pg.Version(ctx); err != nil || v != db.LatestVersion() {
		t.Fatalf("PostgreSQL schema version %d, %v; want %d", v, err, db.LatestVersion())
	}
	for _, tc := range tables {
		cols, err := src.QueryContext(ctx, `SELECT name FROM pragma_table_info(?) ORDER BY cid`, tc.Table)
		if err != nil {
			t.Fatal(err)
		}
		var names, order []string
		for cols.Next() {
			var n string
			cols.Scan(&n)
			names = append(names, `"`+n+`"`)
			order = append(order, `"`+n+`" NULLS FIRST`)
		}
		cols.Close()
		q := `SELECT ` + strings.Join(names, ", ") + ` FROM ` + tc.Table + ` ORDER BY ` + strings.Join(order, ", ")
		want, got := readAll(t, src, q), readAll(t, pg, q)
		if int64(len(want)) != tc.Rows {
			t.Errorf("%s: %d rows reported, the source has %d", tc.Table, tc.Rows, len(want))
		}
		if !reflect.DeepEqual(want, got) {
			t.Errorf("%s differs:\nSQLite:     %v\nPostgreSQL: %v", tc.Table, want, got)
		}
	}
	// The next ids come after the highest ever given: run 3 was deleted
	// from the source, so the next run is 4.
	var id int64
	if err := pg.QueryRowContext(ctx, `INSERT INTO runs(command, status, started_at) VALUES ('x', 'ok', 'x') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 4 {
		t.Errorf("next run id %d, want 4 (after the deleted 3)", id)
	}
	if err := pg.QueryRowContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, status, created_at) VALUES ('in', 'x', 'b', 'b', 'cd', 1, 'ok', 'x') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 2 {
		t.Errorf("next file id %d, want 2", id)
	}
	if n, err := db.NextSequence(ctx, pg, "items"); err != nil || n != 2 {
		t.Errorf("next items sequence %d, %v; want 2", n, err)
	}
}

// readAll reads every row of query as strings, NULL as <nil>, and with
// the Go type of each value, so that an integer copied as text differs.
func readAll(t *testing.T, d *db.DB, query string) []string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals, ptrs := make([]any, len(cols)), make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			fmt.Fprintf(&b, "%T(%v) ", v, v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopyToChecksums: a table's checksum is the same for the same rows,
// and changes with any value of it and with that table's only: NULL
// become an empty text, one character of a text, the last digit of an
// integer too large for a float64 to tell apart.
func TestCopyToChecksums(t *testing.T) {
	ctx := context.Background()
	src := copySource(t)
	sums := func() map[string]string {
		tables, err := src.CopyTo(ctx, pgtest.Start(t), db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]string{}
		for _, tc := range tables {
			m[tc.Table] = tc.Checksum
		}
		return m
	}
	first := sums()
	if again := sums(); !reflect.DeepEqual(first, again) {
		t.Fatalf("the same rows gave other checksums:\n%v\n%v", first, again)
	}
	for _, c := range []struct{ change, table string }{
		{`UPDATE runs SET ended_at = '' WHERE id = 1`, "runs"},
		{`UPDATE items SET description = 'Trail "Runner", 3' WHERE item = 'IT1'`, "items"},
		{`UPDATE runs SET pid = 9007199254740992 WHERE id = 1`, "runs"},
		{`UPDATE sequences SET last = 2`, "sequences"},
	} {
		if _, err := src.ExecContext(ctx, c.change); err != nil {
			t.Fatal(err)
		}
		next := sums()
		for table, sum := range next {
			if changed := sum != first[table]; changed != (table == c.table) {
				t.Errorf("after %s: %s changed %v", c.change, table, changed)
			}
		}
		first = next
	}
}

// TestCopyToRefused: a target that is not a URL, not empty or not
// reachable, and a source that is not SQLite, are refused, and a copy that
// fails half way leaves the target as empty as it was.
func TestCopyToRefused(t *testing.T) {
	ctx := context.Background()
	src := copySource(t)
	if _, err := src.CopyTo(ctx, filepath.Join(t.TempDir(), "other.db"), db.Options{}); err == nil || !strings.Contains(err.Error(), "not a PostgreSQL URL") {
		t.Errorf("copy to a file: %v", err)
	}
	if _, err := src.CopyTo(ctx, "postgres://nobody:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", db.Options{}); !errors.Is(err, db.ErrUnavailable) || strings.Contains(err.Error(), "secret") {
		t.Errorf("copy to a closed port: %v, want ErrUnavailable without the password", err)
	}

	url := pgtest.Start(t)
	if _, err := src.CopyTo(ctx, url, db.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.CopyTo(ctx, url, db.Options{}); !errors.Is(err, db.ErrNotEmpty) || !strings.Contains(err.Error(), "it has posbridge tables (customers, feed_watermarks, files, ...)") {
		t.Errorf("second copy to the same database: %v, want ErrNotEmpty naming the tables", err)
	}
	pg, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	if _, err := pg.CopyTo(ctx, pgtest.Start(t), db.Options{}); !errors.Is(err, db.ErrNotSQLite) {
		t.Errorf("copy from PostgreSQL: %v, want ErrNotSQLite", err)
	}

	// A value that PostgreSQL stores as another kind (bytes in a text
	// column come back as text): the table read back differs from the
	// source, and nothing is left.
	if _, err := src.ExecContext(ctx, `UPDATE items SET description = CAST('Trail' AS BLOB) WHERE item = '007'`); err != nil {
		t.Fatal(err)
	}
	differs := pgtest.Start(t)
	_, err = src.CopyTo(ctx, differs, db.Options{})
	if !errors.Is(err, db.ErrCopyMismatch) || !regexp.MustCompile(`copy table items: copy does not match its source: source 2 rows, checksum [0-9a-f]{64}; PostgreSQL 2 rows, checksum [0-9a-f]{64}$`).MatchString(err.Error()) {
		t.Fatalf("copy of bytes in a text column: %v, want ErrCopyMismatch", err)
	}
	assertNoTables(t, differs)
	if _, err := src.ExecContext(ctx, `UPDATE items SET description = '' WHERE item = '007'`); err != nil {
		t.Fatal(err)
	}

	// A value PostgreSQL refuses, in a table copied late: the tables
	// created and copied before it are gone again.
	if _, err := src.ExecContext(ctx, `UPDATE files SET size = 'twelve'`); err != nil {
		t.Fatal(err)
	}
	empty := pgtest.Start(t)
	_, err = src.CopyTo(ctx, empty, db.Options{})
	if err == nil || !strings.Contains(err.Error(), "copy table files: row 1, column size: bigint column holds string twelve") {
		t.Fatalf("copy of a bad value: %v", err)
	}
	assertNoTables(t, empty)
}

// assertNoTables fails t unless the database at url has no tables.
func assertNoTables(t *testing.T, url string) {
	t.Helper()
	target, err := db.Open(context.Background(), url, db.Options{Create: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if names, err := target.Tables(context.Background()); err != nil || len(names) != 0 {
		t.Errorf("after a failed copy the target has tables %v, %v; want none", names, err)
	}
}

// TestCopyToRefusesCollation: a database whose text does not sort bytewise
// is refused, naming how to create one that does.
func TestCopyToRefusesCollation(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	admin, err := db.Open(ctx, url, db.Options{Create: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "t_copy_collation"
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+name+` LOCALE 'C.UTF-8' TEMPLATE template0`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`) })
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	_, err = copySource(t).CopyTo(ctx, u.String(), db.Options{})
	if !errors.Is(err, db.ErrCollation) || !strings.Contains(err.Error(), "collation C.UTF-8, character type C.UTF-8") ||
		!strings.Contains(err.Error(), "createdb --locale=C --encoding=UTF8 --template=template0") {
		t.Errorf("copy to a C.UTF-8 database: %v", err)
	}
}
