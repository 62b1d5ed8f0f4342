package imports

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// TestImportKeysHold: the import writes with SQLite's foreign key checks
// off (Upload.KeysHold), so nothing but its own construction keeps the
// keys of what it writes. A file of every kind of write, among records
// naming SKUs, warehouses and items that do not exist (bytewise: a case
// that differs is another key), leaves no row without its parent, the
// rejected records rejected as before, and the checks on again.
func TestImportKeysHold(t *testing.T) {
	ctx := context.Background()
	f := newTxnFixture(t)
	p := f.write("keys.csv", "transaction_code,item,sku,warehouse,location,quantity,to_item,to_sku,to_warehouse,to_location\n"+
		"R,IT0000001,BLK-8,DC1,A01-01,5,,,,\n"+
		"R,IT0000001,BLK-9,DC2,NEW-LOC,3,,,,\n"+ // a new stock row
		"T,IT0000001,BLK-8,DC1,A01-01,2,,,DC2,Z9\n"+ // a new stock row in another warehouse
		"G,IT0000001,BLK-8,DC1,A01-01,1,IT0000001,BLU-9,,\n"+ // to another SKU
		"R,IT0000001,blk-8,DC1,A01-01,1,,,,\n"+
		"R,it0000001,BLK-8,DC1,A01-01,1,,,,\n"+
		"R,IT0000001,BLK-8,dc1,A01-01,1,,,,\n"+
		"R,IT0000001,NOPE,DC1,A01-01,1,,,,\n"+
		"T,IT0000001,BLK-8,DC1,A01-01,1,,,DC9,A\n"+
		"G,IT0000001,BLK-8,DC1,A01-01,1,IT0000001,NOPE,,\n"+
		"G,IT0000001,BLK-8,DC1,A01-01,1,IT0000001,BLU-9,dc2,\n")
	res, err := ImportTransactions(ctx, f.d, p, Options{RejectsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 4 || res.Rejected != 7 {
		t.Errorf("applied %d, rejected %d; want 4 and 7", res.Applied, res.Rejected)
	}
	if n := f.count(`SELECT count(*) FROM inventory_txns t JOIN files f ON f.id = t.file_id WHERE f.sha256 = ?`, res.SHA256); n != 4 {
		t.Errorf("%d history rows of the file, want 4", n)
	}
	orphans := map[string]string{
		"inventory (sku)":       `SELECT count(*) FROM inventory v WHERE NOT EXISTS (SELECT 1 FROM skus k WHERE k.item = v.item AND k.sku = v.sku)`,
		"inventory (warehouse)": `SELECT count(*) FROM inventory v WHERE NOT EXISTS (SELECT 1 FROM warehouses w WHERE w.warehouse = v.warehouse)`,
		"inventory_txns (file)": `SELECT count(*) FROM inventory_txns t WHERE t.file_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = t.file_id)`,
	}
	for what, q := range orphans {
		if n := f.count(q); n != 0 {
			t.Errorf("%s: %d rows without their parent", what, n)
		}
	}
	if f.d.Dialect == db.SQLite {
		if n := f.count(`SELECT count(*) FROM pragma_foreign_key_check`); n != 0 {
			t.Errorf("foreign_key_check: %d rows", n)
		}
		// Every connection the pool holds has its checks on again.
		var conns []*sql.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 4 {
			c, err := f.d.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			var on int
			if err := c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&on); err != nil {
				t.Fatal(err)
			}
			if on != 1 {
				t.Errorf("a connection of the pool has foreign_keys = %d after the import", on)
			}
		}
	}
}

// TestHistoryText: the history keeps every text as read, on PostgreSQL
// too, where it goes in by COPY's text format, whose tab, newline and
// backslash end or escape a value.
func TestHistoryText(t *testing.T) {
	f := newTxnFixture(t)
	texts := []string{`back\slash`, "tab\there", "two\nlines", "cr\rx", `\N`, `\.`, `\\`, "é ü 日本", `"quoted"`, "end\\"}
	var b strings.Builder
	b.WriteString("transaction_code,item,sku,warehouse,location,quantity,reason,reference\n")
	for i, s := range texts {
		q := `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
		fmt.Fprintf(&b, "R,IT0000001,BLK-8,DC1,A01-01,%d,%s,%s\n", i+1, q, q)
	}
	res, err := ImportTransactions(context.Background(), f.d, f.write("text.csv", b.String()), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != int64(len(texts)) {
		t.Fatalf("applied %d of %d", res.Applied, len(texts))
	}
	rows, err := f.d.Query(`SELECT quantity, reason, reference, to_item, to_before IS NULL FROM inventory_txns t JOIN files f ON f.id = t.file_id
WHERE f.sha256 = ? ORDER BY t.id`, res.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var qty int
		var reason, ref, toItem string
		var noTo bool
		if err := rows.Scan(&qty, &reason, &ref, &toItem, &noTo); err != nil {
			t.Fatal(err)
		}
		want := texts[n]
		if qty != n+1 || reason != want || ref != want || toItem != "" || !noTo {
			t.Errorf("row %d: quantity %d, reason %q, reference %q, to_item %q, to_before null %v; want %d, %q", n, qty, reason, ref, toItem, noTo, n+1, want)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != len(texts) {
		t.Errorf("%d history rows, want %d", n, len(texts))
	}
}

// TestHistoryOrder: a file of many statements' worth of history (written
// on SQLite while the next records are applied) keeps its history in the
// order of the file, one row per applied record; a database failure in
// the middle of it fails the whole file and keeps nothing.
func TestHistoryOrder(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	// Ten statements' or COPYs' worth and a part.
	per := historyPerStmt
	if f.d.Dialect == db.Postgres {
		per = historyPerCopy
	}
	total, failAt := 10*per+per/2, 7*per
	var b strings.Builder
	b.WriteString(txnHead)
	var applied []int
	for i := range total {
		line := i + 2
		if i%97 == 5 && line != failAt {
			b.WriteString("R,IT0000001,NOPE,DC1,A01-01,1\n")
			continue
		}
		b.WriteString("R,IT0000001,BLK-8,DC1,A01-01,1\n")
		applied = append(applied, line)
	}
	content := b.String()
	before := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01")

	exec := func(q string) {
		t.Helper()
		if _, err := f.d.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The failure first: the same file applies afterwards.
	drop := `DROP TRIGGER boom`
	if f.d.Dialect == db.SQLite {
		exec(`CREATE TRIGGER boom BEFORE INSERT ON inventory_txns WHEN NEW.line = ` + fmt.Sprint(failAt) + ` BEGIN SELECT RAISE(ABORT, 'boom'); END`)
	} else {
		exec(`CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.line = ` + fmt.Sprint(failAt) + ` THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`)
		exec(`CREATE TRIGGER boom BEFORE INSERT ON inventory_txns FOR EACH ROW EXECUTE FUNCTION boom()`)
		drop += ` ON inventory_txns`
	}
	p := f.write("many.csv", content)
	if _, err := ImportTransactions(ctx, f.d, p, Options{RejectsDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("import with a failing history insert: %v, want the failure", err)
	}
	f.nothingKept("a failed file", "many.csv", before)
	exec(drop)

	res, err := ImportTransactions(ctx, f.d, p, Options{RejectsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != int64(len(applied)) || res.Rejected != int64(total-len(applied)) {
		t.Fatalf("applied %d, rejected %d; want %d and %d", res.Applied, res.Rejected, len(applied), total-len(applied))
	}
	rows, err := f.d.Query(`SELECT line FROM inventory_txns t JOIN files f ON f.id = t.file_id WHERE f.sha256 = ? ORDER BY t.id`, res.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []int
	for rows.Next() {
		var l int
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lines, applied) {
		t.Errorf("history lines in id order: %d rows, want %d in file order (first differences: %v)", len(lines), len(applied), firstDiff(lines, applied))
	}
}

// nothingKept checks that nothing of the file name is kept, which had
// IT0000001/BLK-8 in DC1 A01-01 at before: no history, no ledger row,
// the same on hand.
func (f *txnFixture) nothingKept(what, name string, before int64) {
	f.t.Helper()
	if n := f.count(`SELECT count(*) FROM inventory_txns`); n != 0 {
		f.t.Errorf("%d history rows kept of %s", n, what)
	}
	if n := f.count(`SELECT count(*) FROM files WHERE name = ?`, name); n != 0 {
		f.t.Errorf("%d ledger rows of %s", n, what)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != before {
		f.t.Errorf("on hand %d after %s, want %d", got, what, before)
	}
}

func firstDiff(got, want []int) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %d, want %d", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}
