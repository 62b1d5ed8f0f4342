package db_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// TestPortableStatements runs the statements written in the form both
// engines take (INSERT … RETURNING id instead of LastInsertId, columns of
// ON CONFLICT … DO UPDATE qualified by their table, count(*) FILTER instead
// of sum of a comparison, ON CONFLICT DO NOTHING instead of INSERT OR
// IGNORE, EXISTS read into a bool, the column "user" quoted) on SQLite and
// on PostgreSQL, on the same rows, and checks that both give the same
// expected result. Statements that exported functions run are run through
// those functions; the others are read from the Go source that runs them,
// so that the test runs the statement the code has. Only the placeholders
// differ: PostgreSQL gets $n for ? and ?n.
func TestPortableStatements(t *testing.T) {
	ctx := context.Background()
	lite, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg := openPG(t)
	defer pg.Close()
	// One connection each: the temporary tables of the catalog's loader
	// belong to one connection.
	lite.SetMaxOpenConns(1)
	pg.SetMaxOpenConns(1)
	engines := []struct {
		name string
		d    *db.DB
	}{{"SQLite", lite}, {"PostgreSQL", pg}}

	// each runs fn on both engines and wants want from both.
	each := func(what, want string, fn func(d *db.DB) (string, error)) {
		t.Helper()
		for _, e := range engines {
			got, err := fn(e.d)
			if err != nil {
				t.Errorf("%s on %s: %v", what, e.name, err)
				continue
			}
			if got != want {
				t.Errorf("%s on %s:\ngot  %s\nwant %s", what, e.name, got, want)
			}
		}
	}
	const now = "2026-12-07T03:00:00Z"
	seed := []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('W1', 'one', '` + now + `', '` + now + `')`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('I1', 'one', '` + now + `', '` + now + `'), ('I2', 'two', '` + now + `', '` + now + `')`,
		`INSERT INTO skus(item, sku, created_at, updated_at) VALUES ('I1', 'S', '` + now + `', '` + now + `'), ('I1', 'M', '` + now + `', '` + now + `'),
  ('I2', '', '` + now + `', '` + now + `')`,
	}
	for _, e := range engines {
		for _, q := range seed {
			if _, err := e.d.ExecContext(ctx, q); err != nil {
				t.Fatalf("seed %s: %v", e.name, err)
			}
		}
	}

	each("db.NextSequence twice", "1 2", func(d *db.DB) (string, error) {
		a, err := db.NextSequence(ctx, d, "orders")
		if err != nil {
			return "", err
		}
		b, err := db.NextSequence(ctx, d, "orders")
		return fmt.Sprint(a, b), err
	})
	each("ledger.InsertRun, a run and its step", "1 2", func(d *db.DB) (string, error) {
		run, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "run nightly", Job: "nightly"})
		if err != nil {
			return "", err
		}
		step, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "import", Job: "nightly", Parent: run, Step: 1})
		return fmt.Sprint(run, step), err
	})
	each("the files INSERT … RETURNING id of imports.Run", "1 2 3", func(d *db.DB) (string, error) {
		q := sourceSQL(t, "imports/upload.go", "INSERT INTO files(")
		var ids []int64
		for _, r := range []struct {
			kind string
			run  any
		}{{"inventory-transactions", int64(1)}, {"orders", int64(2)}, {"orders", nil}} {
			var id int64
			if err := d.QueryRowContext(ctx, q, r.kind, "pos", "f.csv", "/in/f.csv", "sha", 10, r.run, now).Scan(&id); err != nil {
				return "", err
			}
			ids = append(ids, id)
		}
		return fmt.Sprint(ids[0], ids[1], ids[2]), nil
	})
	for _, e := range engines {
		for _, q := range []string{
			`UPDATE files SET records = 5, rejected = 1 WHERE id = 1`,
			`INSERT INTO files(direction, kind, name, path, sha256, size, status, records, run_id, created_at)
VALUES ('out', 'items', 'o.csv', '/out/o.csv', 'sha', 1, 'done', 3, 2, '` + now + `')`,
			`INSERT INTO transfers(site, direction, local_path, remote_path, status, run_id, created_at, updated_at) VALUES
  ('s', 'push', 'a', 'a', 'done', 1, '` + now + `', '` + now + `'), ('s', 'push', 'b', 'b', 'failed', 2, '` + now + `', '` + now + `'),
  ('s', 'push', 'c', 'c', 'done', 2, '` + now + `', '` + now + `')`,
		} {
			if _, err := e.d.ExecContext(ctx, q); err != nil {
				t.Fatalf("seed %s: %v", e.name, err)
			}
		}
	}
	each("ledger.RunActivity and TreeActivity", "{1 0 5 1 1 0} {2 1 8 1 2 1} {1 1 3 0 1 1}", func(d *db.DB) (string, error) {
		run, err := ledger.RunActivity(ctx, d, 1)
		if err != nil {
			return "", err
		}
		tree, err := ledger.TreeActivity(ctx, d, 1)
		if err != nil {
			return "", err
		}
		step, err := ledger.TreeActivity(ctx, d, 2)
		return fmt.Sprint(run, tree, step), err
	})
	each("ledger.StartDelivery twice, the second without a run", "failed 2 1 b.json 7", func(d *db.DB) (string, error) {
		del := ledger.Delivery{Site: "shop", Endpoint: "orders", Key: "k1", LocalPath: "a.json", Record: 1, RunID: 1}
		if err := ledger.StartDelivery(ctx, d, del); err != nil {
			return "", err
		}
		del.RunID, del.LocalPath, del.Record, del.Status = 0, "b.json", 7, "failed"
		if err := ledger.StartDelivery(ctx, d, del); err != nil {
			return "", err
		}
		return queryString(ctx, d, `SELECT status || ' ' || attempts || ' ' || run_id || ' ' || local_path || ' ' || record FROM http_deliveries`)
	})
	each("trigger.PendingSummary", "[{ITW 1 0 2026-12-07T01:00:00Z} {SKU 2 1 2026-12-07T02:00:00Z}]", func(d *db.DB) (string, error) {
		if _, err := d.ExecContext(ctx, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at) VALUES
  ('SKU', 'I1', 'S', 'C', 'ready', '2026-12-07T02:00:00Z', ''), ('SKU', 'I1', 'M', 'A', 'ready', '2026-12-07T03:00:00Z', ''),
  ('SKU', 'I2', '', 'C', 'error', '2026-12-07T00:00:00Z', ''), ('ITW', 'I1', 'S', 'C', 'ready', '2026-12-07T01:00:00Z', ''),
  ('ITW', 'I2', '', 'C', 'processed', '2026-12-07T00:00:00Z', '')`); err != nil {
			return "", err
		}
		p, err := trigger.PendingSummary(ctx, d)
		return fmt.Sprint(p), err
	})
	for _, c := range []struct {
		file, marker  string
		first, second []any
	}{
		{"orders/storepos.go", "INSERT INTO orders(",
			[]any{"SO0000001", "pos", "k1", "W1", 1, now, now}, []any{"SO0000002", "pos", "k2", "W1", nil, now, now}},
		{"returns/upload.go", "INSERT INTO returns(",
			[]any{"shop", "R1", "CUSTOMER_RETURN", "W1", 1, now, now}, []any{"shop", "R2", "SELF_SHIP", "W1", nil, now, now}},
	} {
		each("the INSERT … RETURNING id of "+c.file+", twice", "1 2", func(d *db.DB) (string, error) {
			q := sourceSQL(t, c.file, c.marker)
			var a, b int64
			if err := d.QueryRowContext(ctx, q, c.first...).Scan(&a); err != nil {
				return "", err
			}
			err := d.QueryRowContext(ctx, q, c.second...).Scan(&b)
			return fmt.Sprint(a, b), err
		})
	}
	each("the inventory upsert of an order, twice", "I1/S W1/ 5 2 8", func(d *db.DB) (string, error) {
		q := sourceSQL(t, "orders/order.go", "INSERT INTO inventory(")
		if _, err := d.ExecContext(ctx, q, "I1", "S", "W1", "", 10, 0, 7, now); err != nil {
			return "", err
		}
		if _, err := d.ExecContext(ctx, q, "I1", "S", "W1", "", -5, 2, 8, now); err != nil {
			return "", err
		}
		return queryString(ctx, d, `SELECT item || '/' || sku || ' ' || warehouse || '/' || location || ' ' || on_hand || ' ' || reserved || ' ' || change_seq FROM inventory`)
	})
	for _, c := range []struct{ file, marker string }{
		{"orders/order.go", "SELECT EXISTS (SELECT 1 FROM inventory WHERE"},
		{"imports/applier.go", "SELECT EXISTS (SELECT 1 FROM inventory WHERE"},
	} {
		each("the EXISTS of "+c.file+" read into a bool", "true false", func(d *db.DB) (string, error) {
			return existsTwice(ctx, d, sourceSQL(t, c.file, c.marker), []any{"I1", "S"}, []any{"I2", ""})
		})
	}
	each("the EXISTS of the store POS import read into a bool", "true false", func(d *db.DB) (string, error) {
		return existsTwice(ctx, d, sourceSQL(t, "orders/storepos.go", "SELECT EXISTS (SELECT 1 FROM warehouses"), []any{"W1"}, []any{"W2"})
	})
	each("the WMS line upsert, then a line without order fields", "wms 1 44 PO1 10 A1 I1/S W1 5 2 b.xml", func(d *db.DB) (string, error) {
		q := sourceSQL(t, "wms/receipts.go", "INSERT INTO wms_po_lines(")
		if _, err := d.ExecContext(ctx, q, "wms", 1, 44, "PO1", "10", "A1", "I1", "S", "W1", 5, 1, "a.xml", now); err != nil {
			return "", err
		}
		if _, err := d.ExecContext(ctx, q, "wms", 1, nil, "", "", "A1", "I1", "S", "W1", nil, 2, "b.xml", now); err != nil {
			return "", err
		}
		return queryString(ctx, d, `SELECT partner || ' ' || line_id || ' ' || purchase_order_id || ' ' || purchase_order || ' ' || row_number || ' ' ||
  article || ' ' || item || '/' || sku || ' ' || warehouse || ' ' || advised || ' ' || received || ' ' || source FROM wms_po_lines`)
	})
	each("the EXISTS of the WMS import read into a bool", "true false", func(d *db.DB) (string, error) {
		if _, err := d.ExecContext(ctx, `INSERT INTO wms_po_items(partner, article_item_id, line_id) VALUES ('wms', 900, 1)`); err != nil {
			return "", err
		}
		return existsTwice(ctx, d, sourceSQL(t, "wms/receipts.go", "SELECT EXISTS (SELECT 1 FROM wms_po_items"), []any{"wms", 900}, []any{"wms", 901})
	})
	each(`the inventory history INSERT with "user"`, "1 T1 I1/S W1 -2 clerk", func(d *db.DB) (string, error) {
		// The applier adds its rows of placeholders, with the file id and
		// the time as literals, to the statement's head.
		q := sourceSQL(t, "imports/applier.go", "INSERT INTO inventory_txns(") +
			"(1, " + strings.TrimSuffix(strings.Repeat("?,", 20), ",") + ", '" + now + "')"
		if _, err := d.ExecContext(ctx, q, 1, "T1", "out", "I1", "S", "W1", "", -2, 5, 3, "", "", "", "", nil, nil,
			"sale", "r1", "2026-12-06", "clerk"); err != nil {
			return "", err
		}
		return queryString(ctx, d, `SELECT file_id || ' ' || code || ' ' || item || '/' || sku || ' ' || warehouse || ' ' || quantity || ' ' || "user" FROM inventory_txns`)
	})
	each("the gone INSERTs … ON CONFLICT DO NOTHING of the item loader", "I1/M; I1/S; I2/", func(d *db.DB) (string, error) {
		firsts := sourceSQL(t, "catalog/validate.go", "CREATE TEMP TABLE firsts")
		if d == pg {
			firsts = strings.TrimSuffix(firsts, " WITHOUT ROWID") // a SQLite storage choice, for the dialect layer
		}
		for _, q := range []string{
			sourceSQL(t, "catalog/stage.go", "CREATE TEMP TABLE gone"),
			firsts,
			// The loader's staging table has a column per field of the
			// file; these are the ones the statements read.
			`CREATE TEMP TABLE stage (rec INTEGER, item TEXT, sku TEXT)`,
			// I1 changes form (one row without a SKU instead of SKUs); I2
			// is not in the file. I1/S is already gone.
			`INSERT INTO stage VALUES (1, 'I1', '')`,
			`INSERT INTO firsts(key, first) VALUES ('I1', 1)`,
			`INSERT INTO gone VALUES ('I1', 'S')`,
			sourceSQL(t, "catalog/merge_items.go", "JOIN skus k ON k.item = g.key"),
			sourceSQL(t, "catalog/merge_items.go", "AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.item = k.item AND s.sku = k.sku)"),
		} {
			if _, err := d.ExecContext(ctx, q); err != nil {
				return "", fmt.Errorf("%s: %w", q, err)
			}
		}
		return queryString(ctx, d, `SELECT record_key || '/' || sub_key FROM gone ORDER BY record_key, sub_key`)
	})
}

// existsTwice reads the EXISTS query q into a bool with args yes, then with
// args no.
func existsTwice(ctx context.Context, d *db.DB, q string, yes, no []any) (string, error) {
	var a, b bool
	if err := d.QueryRowContext(ctx, q, yes...).Scan(&a); err != nil {
		return "", err
	}
	err := d.QueryRowContext(ctx, q, no...).Scan(&b)
	return fmt.Sprint(a, b), err
}

// queryString is the rows of query, which selects one text per row, one
// after the other, separated by "; ".
func queryString(ctx context.Context, d *db.DB, query string) (string, error) {
	rows, err := queryRows(ctx, d, scanString, query)
	return strings.Join(rows, "; "), err
}

// sourceSQL is the one string literal of the Go file internal/<file> that
// holds marker: the statement that the code runs.
func sourceSQL(t *testing.T, file, marker string) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", filepath.FromSlash(file)), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil && strings.Contains(s, marker) {
				found = append(found, s)
			}
		}
		return true
	})
	if len(found) != 1 {
		t.Fatalf("%d string literals of %s hold %q, want 1", len(found), file, marker)
	}
	return found[0]
}

// openPG is a new PostgreSQL database with the PostgreSQL migrations
// applied, opened as posbridge opens one: its statements may use SQLite's
// placeholders.
func openPG(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), pgtest.Start(t), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
