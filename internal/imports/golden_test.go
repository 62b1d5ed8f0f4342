package imports

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"flag"
	"fmt"
	"html"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/trigger"
)

var update = flag.Bool("update", false, "rewrite the golden files of the package's tests")

// TestAppliedTablesGolden applies a generated file of every transaction
// code, every way of naming an item/SKU and every reject the state gives,
// as CSV and as the OMS XML, each on a fresh demo database, and compares
// the history, the stock rows, the inventory triggers and the reject file
// with testdata/applied.golden: the tables an import leaves must not change
// with how it gets there, and must be the same on both backends.
//
//	go test ./internal/imports -run TestAppliedTablesGolden -update
//
// With a few SKUs held at a time (maxHeld), the applier writes back and
// reads again many times in a file: the tables must not change with that
// either.
func TestAppliedTablesGolden(t *testing.T) {
	for _, held := range []int{maxHeld, 8} {
		t.Run(fmt.Sprintf("held %d", held), func(t *testing.T) {
			defer func(was int) { maxHeld = was }(maxHeld)
			maxHeld = held
			appliedTablesGolden(t)
		})
	}
}

func appliedTablesGolden(t *testing.T) {
	csvIn, xmlIn := goldenTransactions(3000)
	var out bytes.Buffer
	for _, c := range []struct{ name, content string }{{"in.csv", csvIn}, {"in.xml", xmlIn}} {
		f := newTxnFixture(t)
		// The load's triggers are sent: the import's own show, A or C.
		if _, err := f.d.Exec(`UPDATE triggers SET status = 'processed'`); err != nil {
			t.Fatal(err)
		}
		p := f.write(c.name, c.content)
		// CNT is a code of the configuration; P stays the POS sale in the XML.
		res, err := ImportTransactions(context.Background(), f.d, p, Options{Codes: map[string]string{"CNT": "O", "P": "P"}})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&out, "== %s: read %d, applied %d, rejected %d, triggers %d\n", c.name, res.Read, res.Applied, res.Rejected, res.Triggers)
		dumpRows(t, &out, f.d, "inventory_txns",
			`SELECT id - (SELECT min(id) FROM inventory_txns), file_id IS NULL, line, code, effect, item, sku, warehouse, location, quantity,
  before_on_hand, after_on_hand, to_item, to_sku, to_warehouse, to_location, to_before, to_after, reason, reference, txn_date, "user"
FROM inventory_txns ORDER BY id`)
		dumpRows(t, &out, f.d, "inventory",
			`SELECT item, sku, warehouse, location, on_hand, reserved, backordered, threshold, change_seq > 0 FROM inventory ORDER BY item, sku, warehouse, location`)
		dumpRows(t, &out, f.d, "triggers",
			`SELECT file_code, record_key, sub_key, capture, status FROM triggers WHERE file_code = '`+trigger.CodeInventory+`' AND status = 'ready' ORDER BY record_key, sub_key`)
		fmt.Fprintf(&out, "-- rejects\n%s", f.rejectsOf(p))
	}
	golden := filepath.Join("testdata", "applied.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		got := filepath.Join(t.TempDir(), "applied.got")
		os.WriteFile(got, out.Bytes(), 0o644)
		t.Fatalf("the tables differ from %s (got %s; diff them)", golden, got)
	}
}

// dumpRows writes the rows of q, one line each.
func dumpRows(t *testing.T, out *bytes.Buffer, d interface {
	Query(string, ...any) (*sql.Rows, error)
}, name, q string) {
	t.Helper()
	rows, err := d.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	fmt.Fprintf(out, "-- %s\n", name)
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if i > 0 {
				out.WriteByte('|')
			}
			if !v.Valid {
				out.WriteString("NULL")
				continue
			}
			// Booleans read as 1/0 on SQLite and true/false on PostgreSQL.
			s := v.String
			switch s {
			case "true":
				s = "1"
			case "false":
				s = "0"
			}
			out.WriteString(s)
		}
		out.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// goldenTransactions generates n transactions over the demo data as the
// CSV and the OMS XML upload: every code, items named by item/SKU, UPC and
// retail reference, unknown items and warehouses, stock going negative,
// transfers and item transfers to rows that do not exist yet.
func goldenTransactions(n int) (csvText, xmlText string) {
	r := rand.New(rand.NewPCG(18, 17))
	type sku struct{ item, sku, upc, ref string }
	skus := []sku{
		{"IT0000001", "BLK-8", "019876000205", "30000001"},
		{"IT0000001", "BLK-9", "019876000212", "30000002"},
		{"IT0000001", "BLK-10", "", ""},
		{"IT0000002", "", "", ""},
		{"IT0000001", "BLU-9", "", ""},
		{"IT0000002", "NVY  M", "", ""},
		{"IT0009999", "NOPE", "", ""}, // unknown
	}
	whs := []string{"DC1", "DC2", "S01", "DC1", "NOWH"}
	locs := []string{"A01-01", "", "B01-02", "BR01", "NEW1"}
	codes := []string{"A", "O", "T", "G", "R", "S", "P", "V", "OV", "CNT", "X", "a"}
	var c, x strings.Builder
	w := csv.NewWriter(&c)
	w.Write(txnColumns[:])
	x.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Batch>\n<Message source=\"POS\">\n")
	attr := func(name, v string) string {
		if v == "" {
			return ""
		}
		return fmt.Sprintf(` %s="%s"`, name, html.EscapeString(v))
	}
	for i := range n {
		s := skus[r.IntN(len(skus))]
		row := txnRow{Code: codes[r.IntN(len(codes))], Warehouse: whs[r.IntN(len(whs))], Location: locs[r.IntN(len(locs))],
			Reason: "r&<" + fmt.Sprint(i%7), Reference: fmt.Sprintf("REF%05d", i), User: "u"}
		switch by := r.IntN(10); {
		case by == 0 && s.upc != "":
			row.UPC = s.upc
		case by == 1 && s.ref != "":
			row.RetailRef = s.ref
		default:
			row.Item, row.SKU = s.item, s.sku
		}
		row.Quantity = fmt.Sprint(r.IntN(60) - 10)
		switch row.Code {
		case "T":
			row.ToWarehouse, row.ToLocation = whs[r.IntN(len(whs))], locs[r.IntN(len(locs))]
		case "G":
			t := skus[r.IntN(len(skus))]
			row.ToItem, row.ToSKU = t.item, t.sku
			if r.IntN(3) == 0 {
				row.ToLocation = locs[r.IntN(len(locs))]
			}
		}
		w.Write(row.values())
		fmt.Fprintf(&x, "<InventoryTransaction%s%s%s%s%s>\n  <Transaction%s%s%s%s%s%s/>\n",
			attr("identification_nbr", row.Reference), attr("transaction_code", row.Code), attr("transaction_quantity", row.Quantity),
			attr("transaction_reason", row.Reason), attr("entered_by_user", row.User),
			attr("item_number", row.Item), attr("sku_code", row.SKU), attr("upc_code", row.UPC), attr("retail_reference_nbr", row.RetailRef),
			attr("warehouse", row.Warehouse), attr("location", row.Location))
		if row.ToItem != "" || row.ToWarehouse != "" || row.ToLocation != "" {
			fmt.Fprintf(&x, "  <TransactionTo%s%s%s%s/>\n", attr("item_number", row.ToItem), attr("sku_code", row.ToSKU),
				attr("warehouse", row.ToWarehouse), attr("location", row.ToLocation))
		}
		x.WriteString("</InventoryTransaction>\n")
		if i%1000 == 999 {
			x.WriteString("</Message>\n<!-- next --><Message>\n")
		}
	}
	w.Flush()
	x.WriteString("</Message>\n</Batch>\n")
	return c.String(), x.String()
}
