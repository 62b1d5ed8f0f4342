package trigger_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

// generate runs trigger generate for kind and checks it created want
// triggers.
func generate(t *testing.T, d *db.DB, kind string, want int64) {
	t.Helper()
	res, err := trigger.Generate(context.Background(), d, trigger.GenerateOptions{Kind: kind})
	if err != nil || res.Created != want {
		t.Fatalf("generate %s: %+v, %v; want %d created", kind, res, err, want)
	}
}

// fold folds one change of vendor key.
func fold(t *testing.T, d *db.DB, key, capture string) {
	t.Helper()
	if _, err := trigger.Fold(context.Background(), d, trigger.CodeVendor, oneChange, key, "", capture); err != nil {
		t.Fatal(err)
	}
}

// sent marks every ready trigger processed, in a finished export file: the
// partner has those records.
func sent(t *testing.T, d *db.DB) {
	t.Helper()
	exec(t, d, `UPDATE triggers SET status = 'processed', processed_at = ?, file_id = ? WHERE status = 'ready'`,
		db.Now(), newFile(t, d, "complete"))
}

// cancelAdds runs CancelAdds for the vendors in gone, as a load deleting
// them does, and returns the keys it cancelled.
func cancelAdds(t *testing.T, d *db.DB, gone ...string) []string {
	t.Helper()
	ctx := context.Background()
	var cancelled []string
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		for _, q := range []string{
			`CREATE TEMP TABLE gone (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
			`CREATE TEMP TABLE cancelled (record_key TEXT NOT NULL, sub_key TEXT NOT NULL DEFAULT '', PRIMARY KEY (record_key, sub_key))`,
		} {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		for _, k := range gone {
			if _, err := conn.ExecContext(ctx, `INSERT INTO gone(record_key) VALUES (?)`, k); err != nil {
				return err
			}
		}
		if _, err := trigger.CancelAdds(ctx, conn, trigger.CodeVendor, `SELECT record_key, sub_key FROM gone`, "cancelled"); err != nil {
			return err
		}
		rows, err := conn.QueryContext(ctx, `SELECT record_key FROM cancelled ORDER BY record_key`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			cancelled = append(cancelled, k)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		_, err = trigger.Fold(ctx, conn, trigger.CodeVendor, `SELECT record_key, sub_key, 'D' AS capture FROM gone
  WHERE record_key NOT IN (SELECT record_key FROM cancelled)`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return cancelled
}

// TestGeneratedAddThenDelete: an add that trigger generate made is for a
// record that existed already, and may have been sent: a delete after it
// is sent as a delete (as C then D), while an add a load captured, for a
// record the partner never had, is cancelled with the delete. Taken for a
// captured add, the generated add of V1 was cancelled and V1 removed with
// no delete sent: the partner, sent V1 before, kept it for good.
func TestGeneratedAddThenDelete(t *testing.T) {
	d := openDB(t)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V1','One',?1,?1), ('V2','Two',?1,?1), ('V3','Three',?1,?1)`, db.Now())
	for _, v := range []string{"V1", "V3"} {
		fold(t, d, v, trigger.Added)
	}
	sent(t, d)
	// V2 is new: its add is captured, and generate leaves it as it is.
	fold(t, d, "V2", trigger.Added)
	generate(t, d, "vendor", 2)
	// A then C stays A, and still one that may have been sent.
	fold(t, d, "V3", trigger.Changed)
	if got, want := cancelAdds(t, d, "V1", "V2", "V3"), []string{"V2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cancelled %q, want %q", got, want)
	}
	wantTriggers(t, d,
		row{"VND", "V1", "", "A", "processed"},
		row{"VND", "V3", "", "A", "processed"},
		row{"VND", "V1", "", "D", "ready"},
		row{"VND", "V3", "", "D", "ready"},
	)
}

// loadFile writes content to a file and loads it as kind in mode.
func loadFile(t *testing.T, d *db.DB, kind, mode, content string) *catalog.Result {
	t.Helper()
	path := filepath.Join(t.TempDir(), kind+".csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := catalog.Load(context.Background(), d, kind, path, catalog.Options{Mode: mode, Force: true})
	if err != nil {
		t.Fatalf("load %s: %v", kind, err)
	}
	return res
}

// TestGeneratedAddThenFullLoad: the defect as operators met it. Vendors and
// items sent, then trigger generate for both, then full loads without V2
// and without IT1/RED: each leaves a tombstone with a D trigger, its
// whole record kept for the export. A vendor and an item added and
// deleted before any export (V4, IT3/GRN) still go without a trace.
func TestGeneratedAddThenFullLoad(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	loadFile(t, d, "vendors", catalog.ModeDelta, "vendor,name,city\nV1,One,Denver\nV2,Two,Portland\n")
	loadFile(t, d, "items", catalog.ModeDelta, "item,sku,description\nIT1,RED,Shirt\nIT1,BLUE,Shirt\nIT2,,Hat\n")
	sent(t, d)
	generate(t, d, "vendor", 2)
	generate(t, d, "item", 3)
	loadFile(t, d, "vendors", catalog.ModeDelta, "vendor,name,city\nV4,Four,Boise\n")
	loadFile(t, d, "items", catalog.ModeDelta, "item,sku,description\nIT3,GRN,Sock\n")
	exec(t, d, `DELETE FROM triggers WHERE status = 'processed'`)

	loadFile(t, d, "vendors", catalog.ModeFull, "vendor,name,city\nV1,One,Denver\n")
	loadFile(t, d, "items", catalog.ModeFull, "item,sku,description\nIT1,BLUE,Shirt\nIT2,,Hat\n")
	// In any order: generate inserts in the order its SELECT reads.
	got := all(t, d)
	slices.SortFunc(got, func(a, b row) int { return strings.Compare(a.String(), b.String()) })
	if want := []row{
		{"SKU", "IT1", "BLUE", "A", "ready"},
		{"SKU", "IT1", "RED", "D", "ready"},
		{"SKU", "IT2", "", "A", "ready"},
		{"VND", "V1", "", "A", "ready"},
		{"VND", "V2", "", "D", "ready"},
	}; !reflect.DeepEqual(got, want) {
		t.Errorf("triggers:\n  got  %v\n  want %v", got, want)
	}
	var rows []string
	r, err := d.QueryContext(ctx, `SELECT vendor || ' ' || name || ' ' || city || ' ' || CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'tombstone' END FROM vendors
UNION ALL SELECT item || '/' || sku || ' ' || CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'tombstone' END FROM skus
UNION ALL SELECT 'item ' || item || ' ' || CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'tombstone' END FROM items ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, s)
	}
	want := []string{"IT1/BLUE live", "IT1/RED tombstone", "IT2/ live", "V1 One Denver live", "V2 Two Portland tombstone", "item IT1 live", "item IT2 live"}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("records after the full loads:\n  got  %q\n  want %q", rows, want)
	}
}

// claimAll claims every ready vendor trigger into a new export file, still
// being written, and returns the file's id.
func claimAll(t *testing.T, d *db.DB) int64 {
	t.Helper()
	ctx := context.Background()
	var file int64
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		file = newFile(t, conn, trigger.FileWriting)
		_, _, err := trigger.Claim(ctx, conn, trigger.CodeVendor, file, 0, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func unclaim(t *testing.T, d *db.DB, file int64) {
	t.Helper()
	ctx := context.Background()
	if err := d.Tx(ctx, true, func(conn *sql.Conn) error { return trigger.Unclaim(ctx, conn, file) }); err != nil {
		t.Fatalf("Unclaim: %v", err)
	}
}

// TestUnclaimGeneratedAddThenDelete: an export file that claimed adds is
// given back after their records were deleted. The delete of a record
// whose add was generated stays (V1), the add goes; a captured add and its
// delete cancel each other, record and all (V2). A generated add given
// back into a pending change stays a generated add (V3): a delete after
// it is sent; a captured one (V4) is cancelled by it.
func TestUnclaimGeneratedAddThenDelete(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V1','One',?1,?1), ('V3','Three',?1,?1)`, db.Now())
	generate(t, d, "vendor", 2)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V2','Two',?1,?1), ('V4','Four',?1,?1)`, db.Now())
	for _, v := range []string{"V2", "V4"} {
		fold(t, d, v, trigger.Added)
	}
	file := claimAll(t, d)

	// V1 and V2 deleted (tombstones with a D, as a load leaves them),
	// V3 and V4 changed.
	exec(t, d, `UPDATE vendors SET deleted_at = ?1 WHERE vendor IN ('V1','V2')`, db.Now())
	for _, c := range []struct{ key, capture string }{{"V1", "D"}, {"V2", "D"}, {"V3", "C"}, {"V4", "C"}} {
		fold(t, d, c.key, c.capture)
	}
	unclaim(t, d, file)
	wantTriggers(t, d,
		row{"VND", "V1", "", "D", "ready"},
		row{"VND", "V3", "", "A", "ready"},
		row{"VND", "V4", "", "A", "ready"},
	)
	var vendors []string
	for _, v := range []string{"V1", "V2", "V3", "V4"} {
		var n int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM vendors WHERE vendor = ?`, v).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			vendors = append(vendors, v)
		}
	}
	if want := []string{"V1", "V3", "V4"}; !reflect.DeepEqual(vendors, want) {
		t.Errorf("vendors %q, want %q (V1 a tombstone until its delete is sent)", vendors, want)
	}

	if got, want := cancelAdds(t, d, "V3", "V4"), []string{"V4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("cancelled %q, want %q", got, want)
	}
	wantTriggers(t, d,
		row{"VND", "V1", "", "D", "ready"},
		row{"VND", "V3", "", "D", "ready"},
	)
}

// TestUnclaimGeneratedAddDeletedBetweenSteps: on PostgreSQL a load on
// another host deletes V1, whose generated add an export file holds,
// while the file is given back (its combining step is held on V2). The
// giving back meets the load's delete on triggers_pending and runs again:
// the delete stays and the claimed add goes, as on SQLite when the load
// comes first.
func TestUnclaimGeneratedAddDeletedBetweenSteps(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	exec(t, d, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V1','One',?1,?1), ('V2','Two',?1,?1)`, db.Now())
	generate(t, d, "vendor", 2)
	file := claimAll(t, d)
	fold(t, d, "V2", trigger.Changed)

	done, release := unclaimHeldOnV2(t, d, file)
	load := begin(t, d)
	if _, err := load.ExecContext(ctx, `UPDATE vendors SET deleted_at = ? WHERE vendor = 'V1'`, db.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := trigger.Fold(ctx, load, trigger.CodeVendor, oneChange, "V1", "", trigger.Deleted); err != nil || n != 1 {
		t.Fatalf("fold V1 = %d, %v; want 1", n, err)
	}
	commit(t, load)
	release()
	if err := <-done; err != nil {
		t.Fatalf("Unclaim: %v", err)
	}
	wantTriggers(t, d, row{"VND", "V2", "", "A", "ready"}, row{"VND", "V1", "", "D", "ready"})
}
