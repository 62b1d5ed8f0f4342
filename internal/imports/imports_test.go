package imports

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/fsx"
)

// The inventory transaction import below the command line: the record
// checks, the readers, the applier on the demo data, and directory mode at
// moments a script cannot choose (a file vanishing in the middle of a run,
// the database busy, the run cancelled). The stories through the binary
// are cmd/posbridge/testdata/script/import_txn_*.txtar.

// txnFixture is a database with the demo warehouses, vendors, items and
// inventory loaded through the real loads.
type txnFixture struct {
	t   *testing.T
	d   *db.DB
	dir string
}

func repoFile(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func newTxnFixture(t *testing.T) *txnFixture {
	t.Helper()
	dir := t.TempDir()
	d, err := db.Open(context.Background(), dbtest.Target(t), db.Options{Create: true, BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, kind := range []string{"warehouses", "vendors", "items", "inventory"} {
		res, err := catalog.Load(context.Background(), d, kind, repoFile(t, "testdata", "demo", kind+".csv"), catalog.Options{})
		if err != nil {
			t.Fatalf("load %s: %v", kind, err)
		}
		if res.Rejected != 0 {
			t.Fatalf("load %s: %d rejected", kind, res.Rejected)
		}
	}
	return &txnFixture{t: t, d: d, dir: dir}
}

// write puts content into a file of the fixture's folder.
func (f *txnFixture) write(name, content string) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *txnFixture) onHand(item, sku, wh, loc string) int64 {
	f.t.Helper()
	var n int64
	err := f.d.QueryRow(`SELECT on_hand FROM inventory WHERE item = ? AND sku = ? AND warehouse = ? AND location = ?`, item, sku, wh, loc).Scan(&n)
	if err != nil {
		f.t.Fatalf("on hand of %s/%s %s %s: %v", item, sku, wh, loc, err)
	}
	return n
}

func (f *txnFixture) count(q string, args ...any) int64 {
	f.t.Helper()
	var n int64
	if err := f.d.QueryRow(q, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	return n
}

func (f *txnFixture) rejectsOf(path string) string {
	f.t.Helper()
	b, err := os.ReadFile(path + ".rejects.csv")
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

const txnHead = "transaction_code,item,sku,warehouse,location,quantity\n"

// TestCheck runs the state-free checks of one record for every code and
// every message.
func TestCheck(t *testing.T) {
	codes := (&Options{Codes: map[string]string{"cnt": "o"}}).codes()
	row := func(code, qty string, mod ...func(*txnRow)) txnRow {
		r := txnRow{Code: code, Item: "IT1", SKU: "S1", Warehouse: "DC1", Location: "L1", Quantity: qty}
		for _, m := range mod {
			m(&r)
		}
		return r
	}
	to := func(wh, loc string) func(*txnRow) {
		return func(r *txnRow) { r.ToWarehouse, r.ToLocation = wh, loc }
	}
	toItem := func(item, sku string) func(*txnRow) {
		return func(r *txnRow) { r.ToItem, r.ToSKU = item, sku }
	}
	cases := []struct {
		name   string
		row    txnRow
		effect string
		qty    int64
		err    string
	}{
		{"adjust up", row("A", "+5"), EffectAdjust, 5, ""},
		{"adjust down", row("a", "-5"), EffectAdjust, -5, ""},
		{"adjust zero", row("A", "0"), "", 0, "field quantity: an adjustment of 0 changes nothing"},
		{"overlay zero", row("O", "0"), EffectOverlay, 0, ""},
		{"overlay negative", row("O", "-1"), "", 0, `field quantity "-1": a stock count cannot be negative`},
		{"user code", row("Cnt", "7"), EffectOverlay, 7, ""},
		{"user code negative", row("CNT", "-7"), "", 0, `field quantity "-7": a stock count cannot be negative`},
		{"receipt", row("R", "3"), EffectReceipt, 3, ""},
		{"receipt zero", row("R", "0"), "", 0, `field quantity "0": must be positive for transaction code R`},
		{"sale negative", row("P", "-1"), "", 0, `field quantity "-1": must be positive for transaction code P`},
		{"return zero", row("V", "0"), "", 0, `must be positive for transaction code V`},
		{"negative adj zero", row("S", "0"), "", 0, `must be positive for transaction code S`},
		{"transfer", row("T", "2", to("DC2", "")), EffectTransfer, 2, ""},
		{"transfer location", row("T", "2", to("", "L2")), EffectTransfer, 2, ""},
		{"transfer zero", row("T", "0", to("DC2", "")), "", 0, `must be positive for transaction code T`},
		{"transfer nowhere", row("T", "2"), "", 0, "a transfer needs to_warehouse or to_location"},
		{"transfer same", row("T", "2", to("DC1", "L1")), "", 0, "a transfer to the same warehouse and location changes nothing"},
		{"transfer same location", row("T", "2", to("", "L1")), "", 0, "a transfer to the same warehouse and location changes nothing"},
		{"transfer to another item", row("T", "2", to("DC2", ""), toItem("IT2", "")), "", 0, "use G for an item transfer"},
		{"item transfer", row("G", "2", toItem("IT2", "")), EffectItem, 2, ""},
		{"item transfer zero", row("G", "0", toItem("IT2", "")), "", 0, `must be positive for transaction code G`},
		{"item transfer no item", row("G", "2"), "", 0, "an item transfer needs to_item (and to_sku)"},
		{"item transfer same", row("G", "2", toItem("IT1", "S1")), "", 0, "an item transfer to the same item/SKU changes nothing"},
		{"unknown code", row("X", "1"), "", 0, `field transaction_code "X": unknown transaction code`},
		{"streamlined overlay", row("ov", "4"), EffectOverlay, 4, ""},
		{"streamlined overlay negative", row("OV", "-4"), "", 0, `field quantity "-4": a stock count cannot be negative`},
		{"oracle customer return", row("C", "1"), "", 0, `field transaction_code "C": C is Oracle's customer return`},
		{"oracle make up", row("m", "1"), "", 0, `field transaction_code "m": M is Oracle's make up finished good`},
		{"oracle cost change", row("*", "1"), "", 0, `field transaction_code "*": * is Oracle's FIFO cost change`},
		{"no code", row("", "1"), "", 0, "field transaction_code is required"},
		{"no warehouse", row("A", "1", func(r *txnRow) { r.Warehouse = " " }), "", 0, "field warehouse is required"},
		{"no item", row("A", "1", func(r *txnRow) { r.Item, r.SKU = "", "" }), "", 0, "no item: give item (and sku), upc or retail_ref"},
		{"upc only", row("A", "1", func(r *txnRow) { r.Item, r.SKU, r.UPC = "", "", "123" }), EffectAdjust, 1, ""},
		{"no quantity", row("A", ""), "", 0, "field quantity is required"},
		{"text quantity", row("A", "ten"), "", 0, `field quantity "ten": not a whole number`},
		{"decimal quantity", row("R", "1.0"), "", 0, `field quantity "1.0": not a whole number`},
		{"huge quantity", row("R", "99999999999999999999"), "", 0, `field quantity "99999999999999999999": out of range: 99999999999999999999 is beyond ±1000000000`},
		{"bad date", row("R", "1", func(r *txnRow) { r.Date = "01/02/2026" }), "", 0, `field transaction_date "01/02/2026": `},
		{"good date", row("R", "1", func(r *txnRow) { r.Date = "2026-02-01" }), EffectReceipt, 1, ""},
		{"not utf-8", row("R", "1", func(r *txnRow) { r.Reason = "caf\xe9" }), "", 0, "field reason is not valid UTF-8"},
		{"control character", row("R", "1", func(r *txnRow) { r.User = "bob\x1b[2J" }), "", 0, "field user contains the control character U+001B"},
		{"NUL byte", row("R", "1", func(r *txnRow) { r.Reference = "a\x00b" }), "", 0, "field reference contains a NUL byte"},
		{"largest quantity", row("A", "-1000000000"), EffectAdjust, -1000000000, ""},
		{"quantity beyond range", row("R", "1000000001"), "", 0, `field quantity "1000000001": out of range: 1000000001 is beyond ±1000000000`},
		{"largest int64", row("R", "9223372036854775807"), "", 0, `field quantity "9223372036854775807": out of range: 9223372036854775807 is beyond ±1000000000`},
		{"several", row("", "", func(r *txnRow) { r.Warehouse = "" }), "", 0, "field transaction_code is required; field warehouse is required; field quantity is required"},
		{"spaces trimmed", row(" r ", " 4 "), EffectReceipt, 4, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := check(7, nil, c.row, codes, 1000)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if got.effect != c.effect || got.qty != c.qty || got.line != 7 {
				t.Fatalf("effect %q qty %d line %d, want %q %d 7", got.effect, got.qty, got.line, c.effect, c.qty)
			}
		})
	}
}

// TestOracleCodes: in the OMS XML upload P is Oracle's physical inventory
// (refused), in the CSV upload posbridge's POS sale, unless the
// configuration maps P.
func TestOracleCodes(t *testing.T) {
	row := txnRow{Code: "P", Item: "IT1", SKU: "S1", Warehouse: "DC1", Quantity: "1"}
	for _, c := range []struct {
		name  string
		codes map[string]string
		err   string
	}{
		{"csv", (&Options{}).codes(), ""},
		{"xml", oracleCodes(&Options{}), `field transaction_code "P": P is Oracle's physical inventory`},
		{"xml mapped", oracleCodes(&Options{Codes: map[string]string{"p": "P"}}), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := check(1, nil, row, c.codes, 0)
			switch {
			case c.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case c.err == "" && got.effect != EffectSale:
				t.Fatalf("effect %q, want %q", got.effect, EffectSale)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Fatalf("error %v, want one containing %q", err, c.err)
			}
		})
	}
}

// drain reads every record of a source.
func drain(t *testing.T, src source) []record {
	t.Helper()
	var out []record
	for {
		batch, err := src.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, batch...)
	}
}

// TestReadCSV reads CSV with columns in any order, case and spaces in the
// header, unknown columns (a warning), quoted fields over several lines,
// and rows of the wrong width (a record with an error).
func TestReadCSV(t *testing.T) {
	in := "\xef\xbb\xbfQuantity, Warehouse ,transaction_code,item,sku,note\r\n" +
		"5,DC1,R,IT1,S1,x\r\n" +
		"\"1\",DC1,A,\"IT\n2\",,\"a,b\"\r\n" +
		"2,DC1\r\n" +
		"3,DC2,P,IT3,,y\r\n"
	src, err := openSource(strings.NewReader(in), "x.csv", "auto")
	if err != nil {
		t.Fatal(err)
	}
	if h := src.header(); !reflect.DeepEqual(h, []string{"quantity", "warehouse", "transaction_code", "item", "sku", "note"}) {
		t.Fatalf("header %q", h)
	}
	if w := src.warnings(); len(w) != 1 || w[0] != `ignoring unknown column "note"` {
		t.Fatalf("warnings %q", w)
	}
	recs := drain(t, src)
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	wantLines := []int{2, 3, 5, 6}
	for i, r := range recs {
		if r.line != wantLines[i] {
			t.Errorf("record %d: line %d, want %d", i, r.line, wantLines[i])
		}
	}
	if r := recs[1].row; r.Item != "IT\n2" || r.Quantity != "1" || r.Code != "A" {
		t.Errorf("record 2: %+v", r)
	}
	if recs[2].err == nil || !strings.Contains(recs[2].err.Error(), "has 2 fields, the header has 6") {
		t.Errorf("record 3: error %v", recs[2].err)
	}
	if r := recs[3].row; r.Code != "P" || r.Warehouse != "DC2" || r.Item != "IT3" || r.Quantity != "3" {
		t.Errorf("record 4: %+v", r)
	}
}

// TestReadCSVFileErrors: what fails a CSV file as a whole.
func TestReadCSVFileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                                    "file is empty",
		"transaction_code,item,warehouse\n":   `missing required column "quantity"`,
		"transaction_code,warehouse,quantity": `missing required column "item" (or "upc" or "retail_ref")`,
		"item,sku\nIT1,S1\n":                  `missing required column "transaction_code", "warehouse", "quantity"`,
		"a,a\n":                               `column "a" appears twice`,
	} {
		_, err := openSource(strings.NewReader(in), "f.csv", "csv")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", in, err, want)
		}
	}
	if _, err := openSource(strings.NewReader(""), "f.csv", "json"); err == nil || !strings.Contains(err.Error(), `unknown format "json"`) {
		t.Errorf("format json: %v", err)
	}
}

// TestReadXML reads the OMS upload: any root, several Messages, the line
// of each InventoryTransaction, TransactionTo, the reference from
// identification_nbr or else batch_number.
func TestReadXML(t *testing.T) {
	in := `<?xml version="1.0"?>
<Root>
<Message type="x"><InventoryTransaction batch_number="B" identification_nbr="I" transaction_code="T" transaction_quantity="2" transaction_reason="R1" entered_by_user="U">
<Transaction item_number="IT1" sku_code="S1" warehouse="DC1" location="L1" upc_code="U1" retail_reference_nbr="RR"/>
<TransactionTo item_number="IT1" sku_code="S1" warehouse="DC2" location="L2"/>
</InventoryTransaction></Message>
<Message>
<InventoryTransaction batch_number="B2" transaction_code="P" transaction_quantity="1"><Transaction upc_code="U9" warehouse="S01"/></InventoryTransaction>
<InventoryTransaction transaction_code="R" transaction_quantity="1"><Transaction retail_reference_nbr="R9" warehouse="S01"/></InventoryTransaction>
</Message>
</Root>`
	src, err := openSource(strings.NewReader(in), "upload.XML", "auto")
	if err != nil {
		t.Fatal(err)
	}
	recs := drain(t, src)
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	want := []txnRow{
		{Code: "T", Item: "IT1", SKU: "S1", UPC: "U1", RetailRef: "RR", Warehouse: "DC1", Location: "L1", Quantity: "2",
			ToItem: "IT1", ToSKU: "S1", ToWarehouse: "DC2", ToLocation: "L2", Reason: "R1", Reference: "I", User: "U"},
		{Code: "P", UPC: "U9", Warehouse: "S01", Quantity: "1", Reference: "B2"},
		{Code: "R", RetailRef: "R9", Warehouse: "S01", Quantity: "1"},
	}
	for i, r := range recs {
		if r.row != want[i] {
			t.Errorf("record %d: %+v\nwant %+v", i, r.row, want[i])
		}
		if len(r.raw) != len(src.header()) {
			t.Errorf("record %d: %d fields, header %d", i, len(r.raw), len(src.header()))
		}
	}
	if lines := []int{recs[0].line, recs[1].line, recs[2].line}; !reflect.DeepEqual(lines, []int{3, 8, 9}) {
		t.Errorf("lines %v, want [3 8 9]", lines)
	}
}

// TestReadXMLFileErrors: what fails an XML file as a whole.
func TestReadXMLFileErrors(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"truncated":    {`<Message><InventoryTransaction transaction_code="A"><Transaction`, "XML ends before"},
		"no txn":       {`<Items><Item/></Items>`, "no InventoryTransaction element in the file"},
		"empty":        {``, "no InventoryTransaction element in the file"},
		"entity":       {`<!DOCTYPE M [<!ENTITY e "x">]><M><InventoryTransaction transaction_code="&e;"/></M>`, "invalid character entity &e;"},
		"charset":      {`<?xml version="1.0" encoding="ISO-8859-1"?><M/>`, `encoding "ISO-8859-1" is not supported`},
		"bad utf-8":    {"<M><InventoryTransaction transaction_reason=\"\xe9\"/></M>", "invalid UTF-8"},
		"mismatch tag": {`<M><InventoryTransaction></Inventory></M>`, "malformed XML"},
	} {
		src, err := openSource(strings.NewReader(c.in), "f.xml", "xml")
		for err == nil {
			_, err = src.next()
		}
		if errors.Is(err, io.EOF) || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrFile) {
			t.Errorf("%s: error %v, want a file error with %q", name, err, c.want)
		}
	}
}

// TestImportOnDemo applies a file on the demo data through
// ImportTransactions: UPC and retail reference resolution, a transfer
// creating a row, the history and the result; then the ambiguous UPC and a
// deleted SKU.
// TestItemTransferToItself: an item transfer whose from side is named by
// its UPC and whose to side is the same item/SKU is rejected, as one that
// names it twice is; applied, its two changes of one balance made 5 out
// of nothing (62 -> 67).
func TestItemTransferToItself(t *testing.T) {
	f := newTxnFixture(t)
	p := f.write("g.csv", "transaction_code,item,sku,upc,warehouse,location,quantity,to_item,to_sku\n"+
		"G,,,019876000205,DC1,A01-01,5,IT0000001,BLK-8\n")
	res, err := ImportTransactions(context.Background(), f.d, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 0 || res.Rejected != 1 {
		t.Errorf("result %+v, want the record rejected", res)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 62 {
		t.Errorf("BLK-8 DC1: %d, want 62", got)
	}
	if rj := f.rejectsOf(p); !strings.Contains(rj, "an item transfer to the same item/SKU changes nothing: both sides are IT0000001/BLK-8") {
		t.Errorf("rejects:\n%s", rj)
	}
}

func TestImportOnDemo(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	p := f.write("in.csv", "transaction_code,item,sku,upc,retail_ref,warehouse,location,quantity,to_warehouse,to_location\n"+
		"R,,,019876000205,,DC1,A01-01,8,,\n"+ // BLK-8 by UPC: 62 -> 70
		"P,,,,30000002,DC1,B01-02,2,,\n"+ // BLK-9 by retail reference: 112 -> 110
		"T,IT0000001,BLK-8,,,DC1,A01-01,5,DC2,NEW\n"+ // 70 -> 65, new row 0 -> 5
		"S,IT0000001,BLK-8,,,DC1,A01-01,1000,,\n") // rejected: below zero
	res, err := ImportTransactions(ctx, f.d, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Read != 4 || res.Applied != 3 || res.Rejected != 1 || res.RejectsFile != p+".rejects.csv" || res.SHA256 == "" {
		t.Fatalf("result %+v", res)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 65 {
		t.Errorf("BLK-8 DC1: %d, want 65", got)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC2", "NEW"); got != 5 {
		t.Errorf("BLK-8 DC2 NEW: %d, want 5", got)
	}
	if got := f.onHand("IT0000001", "BLK-9", "DC1", "B01-02"); got != 110 {
		t.Errorf("BLK-9 DC1: %d, want 110", got)
	}
	if n := f.count(`SELECT count(*) FROM inventory_txns`); n != 3 {
		t.Errorf("%d history rows, want 3", n)
	}
	if rj := f.rejectsOf(p); !strings.Contains(rj, "5,on hand of IT0000001/BLK-8 in DC1 location A01-01 would be -935 (now 65): negative stock is not allowed") {
		t.Errorf("rejects:\n%s", rj)
	}

	// Two SKUs with one UPC: the UPC names neither.
	if _, err := f.d.Exec(`UPDATE skus SET upc = '019876000205' WHERE item = 'IT0000001' AND sku = 'BLK-9'`); err != nil {
		t.Fatal(err)
	}
	// A deleted SKU is unknown.
	if _, err := f.d.Exec(`UPDATE skus SET deleted_at = '2026-01-01T00:00:00Z' WHERE item = 'IT0000001' AND sku = 'BLK-10'`); err != nil {
		t.Fatal(err)
	}
	p = f.write("amb.csv", "transaction_code,item,sku,upc,warehouse,location,quantity\n"+
		"R,,,019876000205,DC1,A01-01,1\n"+
		"R,IT0000001,BLK-10,,DC1,C01-03,1\n")
	res, err = ImportTransactions(ctx, f.d, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Applied != 0 || res.Rejected != 2 {
		t.Fatalf("result %+v", res)
	}
	rj := f.rejectsOf(p)
	for _, want := range []string{"2,UPC 019876000205 belongs to more than one item/SKU: give item and sku,", "3,unknown item/SKU IT0000001/BLK-10,"} {
		if !strings.Contains(rj, want) {
			t.Errorf("rejects lack %q:\n%s", want, rj)
		}
	}
}

// TestImportOptions: all-or-nothing keeps only the ledger row, dry run
// keeps nothing, the same content is skipped unless forced, rejects go to
// RejectsDir.
func TestImportOptions(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	p := f.write("a.csv", txnHead+"R,IT0000001,BLK-9,DC1,B01-02,1\nR,IT0000001,BLK-9,DC7,B01-02,1\n")
	rjDir := filepath.Join(f.dir, "rj")
	res, err := ImportTransactions(ctx, f.d, p, Options{AllOrNothing: true, RejectsDir: rjDir})
	if err != nil {
		t.Fatal(err)
	}
	if !res.RolledBack || res.Applied != 0 || res.Rejected != 1 || res.RejectsFile != filepath.Join(rjDir, "a.csv.rejects.csv") {
		t.Fatalf("all or nothing: %+v", res)
	}
	if got := f.onHand("IT0000001", "BLK-9", "DC1", "B01-02"); got != 112 {
		t.Errorf("on hand %d after all-or-nothing, want 112", got)
	}
	if n := f.count(`SELECT count(*) FROM files WHERE name = 'a.csv' AND status = 'rejected'`); n != 1 {
		t.Errorf("%d rejected ledger rows, want 1", n)
	}
	if n := f.count(`SELECT count(*) FROM inventory_txns`); n != 0 {
		t.Errorf("%d history rows, want 0", n)
	}

	res, err = ImportTransactions(ctx, f.d, p, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || res.Applied != 1 || res.RejectsFile != "" {
		t.Fatalf("dry run: %+v", res)
	}
	if _, err := os.Stat(p + ".rejects.csv"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a dry run wrote a rejects file: %v", err)
	}
	if got := f.onHand("IT0000001", "BLK-9", "DC1", "B01-02"); got != 112 {
		t.Errorf("on hand %d after a dry run, want 112", got)
	}

	if res, err = ImportTransactions(ctx, f.d, p, Options{}); err != nil || res.Applied != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	res, err = ImportTransactions(ctx, f.d, p, Options{})
	if err != nil || res.SameAs == "" || res.Read != 0 {
		t.Fatalf("again: %+v %v", res, err)
	}
	if res, err = ImportTransactions(ctx, f.d, p, Options{Force: true}); err != nil || res.Applied != 1 || res.SameAs != "" {
		t.Fatalf("forced: %+v %v", res, err)
	}
	if got := f.onHand("IT0000001", "BLK-9", "DC1", "B01-02"); got != 114 {
		t.Errorf("on hand %d, want 114", got)
	}
}

// outcomes runs Paths and returns what it reported, by file name.
func outcomes(args []string, fo Folders, run ImportFunc) map[string]Outcome {
	out := map[string]Outcome{}
	Paths(args, fo, run, func(o Outcome) { out[filepath.Base(o.Path)] = o })
	return out
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func copyBad(t *testing.T, f *txnFixture, folder string, files ...string) {
	t.Helper()
	for _, n := range files {
		b, err := os.ReadFile(repoFile(t, "testdata", "bad", n))
		if err != nil {
			t.Fatal(err)
		}
		f.write(filepath.Join(folder, n), string(b))
	}
}

// TestPathsVanishing: a file listed at the start of a folder run that is
// gone when its turn comes (taken away by another process) is skipped
// without an error, as is one that goes between the run's look at it and
// the import opening it; the files around them are imported.
// (testdata/bad/txn-vanish-a.csv, -b, -c.)
func TestPathsVanishing(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	in := filepath.Join(f.dir, "in")
	copyBad(t, f, "in", "txn-vanish-a.csv", "txn-vanish-b.csv", "txn-vanish-c.csv")
	copyBad(t, f, "in2", "txn-vanish-a.csv")
	var order []string
	run := func(path, rejectsDir string) (*Result, error) {
		order = append(order, filepath.Base(path))
		switch filepath.Base(path) {
		case "txn-vanish-a.csv":
			// While a is imported, b goes.
			if err := os.Remove(filepath.Join(in, "txn-vanish-b.csv")); err != nil {
				t.Fatal(err)
			}
		case "txn-vanish-c.csv":
			// c goes after the run looked at it, before the import opens it.
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}
		return ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir})
	}
	got := outcomes([]string{in}, Folders{}, run)
	if !reflect.DeepEqual(order, []string{"txn-vanish-a.csv", "txn-vanish-c.csv"}) {
		t.Errorf("imported %q, want a and c (b was gone)", order)
	}
	if o, ok := got["txn-vanish-a.csv"]; !ok || o.Err != nil || o.MovedTo != filepath.Join(in, "processed", "txn-vanish-a.csv") {
		t.Errorf("a: %+v", o)
	}
	for _, n := range []string{"txn-vanish-b.csv", "txn-vanish-c.csv"} {
		if o, ok := got[n]; ok {
			t.Errorf("%s reported: %+v", n, o)
		}
	}
	if got := names(t, filepath.Join(in, "error")); len(got) != 0 {
		t.Errorf("error/ holds %q", got)
	}
	if got := f.onHand("IT0000001", "BLK-8", "S01", "BR01"); got != 4 {
		t.Errorf("on hand %d, want 3 + 1 (only a applied)", got)
	}

	// A file named on the command line that does not exist is an error.
	got = outcomes([]string{filepath.Join(f.dir, "nosuch.csv"), filepath.Join(f.dir, "in2")}, Folders{},
		func(path, rejectsDir string) (*Result, error) {
			return ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir, Force: true})
		})
	if o := got["nosuch.csv"]; o.Err == nil || !errors.Is(o.Err, os.ErrNotExist) {
		t.Errorf("nosuch.csv: %+v", o)
	}
	if o := got["txn-vanish-a.csv"]; o.Err != nil || o.Result == nil || o.Result.Applied != 1 {
		t.Errorf("in2/txn-vanish-a.csv: %+v", o)
	}
}

// TestPathsTakenByAnotherRun: two runs import one folder (two hosts on a
// shared mount, or two processes on one host), and the other run moves a
// file into processed/ while this one is at it. A file the other run
// applied and took away while this one found its content applied is not
// this run's: it is neither reported nor moved again, and a line says
// another run took it. A file this run applied, which the other run moved
// first (having found it applied), is reported as applied, with a line
// saying another run moved it. Neither is a failure, and each is applied
// once.
func TestPathsTakenByAnotherRun(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	in := filepath.Join(f.dir, "in")
	f.write("in/theirs.csv", txnHead+"R,IT0000001,BLK-8,S01,BR01,2\n")
	f.write("in/ours.csv", txnHead+"R,IT0000001,BLK-8,S01,BR01,5\n")
	processed := filepath.Join(in, "processed")
	// other is the other run: it applies the file, or finds it applied,
	// and moves it into processed/.
	other := func(path string) {
		if _, err := ImportTransactions(ctx, f.d, path, Options{}); err != nil {
			t.Fatal(err)
		}
		if _, err := fsx.MoveInto(path, processed); err != nil {
			t.Fatal(err)
		}
	}
	var warns []string
	fo := Folders{Warn: func(msg string) { warns = append(warns, msg) }}
	got := outcomes([]string{in}, fo, func(path, rejectsDir string) (*Result, error) {
		if filepath.Base(path) == "ours.csv" {
			res, err := ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir})
			other(path)
			return res, err
		}
		// The other run applied theirs.csv first, and moves it after this
		// run read it.
		if _, err := ImportTransactions(ctx, f.d, path, Options{}); err != nil {
			t.Fatal(err)
		}
		res, err := ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir})
		if err != nil || res.SameAs == "" {
			t.Fatalf("theirs.csv, applied by the other run: %+v %v", res, err)
		}
		other(path)
		return res, err
	})
	if o, ok := got["theirs.csv"]; ok {
		t.Errorf("theirs.csv reported: %+v", o)
	}
	if o := got["ours.csv"]; o.Err != nil || o.Result == nil || o.Result.Applied != 1 || o.MovedTo != "" {
		t.Errorf("ours.csv: %+v", o)
	}
	want := []string{
		filepath.Join(in, "ours.csv") + ": moved away by another run",
		filepath.Join(in, "theirs.csv") + ": taken by another run, skipped",
	}
	if !reflect.DeepEqual(warns, want) {
		t.Errorf("said %q, want %q", warns, want)
	}
	if got, want := names(t, processed), []string{"ours.csv", "theirs.csv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("processed/ holds %q, want %q", got, want)
	}
	if got := names(t, filepath.Join(in, "error")); len(got) != 0 {
		t.Errorf("error/ holds %q", got)
	}
	if got := f.onHand("IT0000001", "BLK-8", "S01", "BR01"); got != 3+2+5 {
		t.Errorf("on hand %d, want 3 + 2 + 5 (each file applied once)", got)
	}
}

// TestPathsMinAgeAndOrder: young files wait, the rest go in name order;
// hidden files, rejects files, folders and links are not touched.
func TestPathsMinAgeAndOrder(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	in := filepath.Join(f.dir, "in")
	for _, n := range []string{"b.csv", "a.csv", "c.xml", ".hidden.csv", "x.csv.rejects.csv", "sub/d.csv"} {
		f.write(filepath.Join("in", n), txnHead+"R,IT0000001,BLK-8,S01,BR01,1\n")
	}
	if err := os.Symlink("a.csv", filepath.Join(in, "link.csv")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"a.csv", "b.csv"} {
		os.Chtimes(filepath.Join(in, n), old, old)
	}
	var order []string
	var waiting []string
	Paths([]string{in}, Folders{MinAge: 10 * time.Minute}, func(path, rejectsDir string) (*Result, error) {
		order = append(order, filepath.Base(path))
		return ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir, Force: true})
	}, func(o Outcome) {
		if o.Waiting {
			waiting = append(waiting, filepath.Base(o.Path))
		}
	})
	if !reflect.DeepEqual(order, []string{"a.csv", "b.csv"}) {
		t.Errorf("imported %q, want a.csv, b.csv", order)
	}
	if !reflect.DeepEqual(waiting, []string{"c.xml"}) {
		t.Errorf("waiting %q, want c.xml", waiting)
	}
	if got, want := names(t, in), []string{".hidden.csv", "c.xml", "link.csv", "processed", "sub", "x.csv.rejects.csv"}; !reflect.DeepEqual(got, want) {
		t.Errorf("left in the folder %q, want %q", got, want)
	}
}

// lockDB holds a lock that keeps imports of d from writing until the
// returned function is called, as another posbridge process in the middle
// of a load would: SQLite's write lock, or on PostgreSQL the file ledger
// table locked against writers.
func lockDB(t *testing.T, d *db.DB) func() {
	t.Helper()
	ctx := context.Background()
	other, err := db.Open(ctx, d.Path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock := "BEGIN IMMEDIATE"
	if d.Dialect == db.Postgres {
		lock = "BEGIN; LOCK TABLE files IN EXCLUSIVE MODE"
	}
	if _, err := conn.ExecContext(ctx, lock); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		other.Close()
	}
}

// TestPathsTemporaryFailure: a file that could not be imported because the
// database was busy (another process held the lock past the busy timeout:
// exit 75, try again later) did not fail: nothing of it was looked at, so
// it must stay in the folder for the next run, not go to error/ where no
// later run will see it.
func TestPathsTemporaryFailure(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	in := filepath.Join(f.dir, "in")
	f.write("in/a.csv", txnHead+"R,IT0000001,BLK-8,S01,BR01,1\n")
	unlock := lockDB(t, f.d)
	got := outcomes([]string{in}, Folders{}, func(path, rejectsDir string) (*Result, error) {
		return ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir})
	})
	unlock()
	o := got["a.csv"]
	if o.Err == nil || !errors.Is(o.Err, db.ErrBusy) {
		t.Fatalf("a.csv with the database locked: %+v, want a busy error", o)
	}
	if _, err := os.Stat(filepath.Join(in, "a.csv")); err != nil {
		t.Errorf("a.csv is not in the folder any more (moved to %q): a busy database is no reason to give up on it", o.MovedTo)
	}
}

// TestPathsCancelled: a run cancelled (SIGINT, SIGTERM) stops; the files it
// did not import are left in the folder, not moved to error/.
func TestPathsCancelled(t *testing.T) {
	f := newTxnFixture(t)
	in := filepath.Join(f.dir, "in")
	for _, n := range []string{"a.csv", "b.csv", "c.csv"} {
		f.write("in/"+n, txnHead+"R,IT0000001,BLK-8,S01,BR01,1\nR,IT0000001,BLK-8,S01,BR01,1,"+n+"\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	outcomes([]string{in}, Folders{}, func(path, rejectsDir string) (*Result, error) {
		if filepath.Base(path) == "b.csv" {
			cancel() // the signal arrives while b is imported
		}
		return ImportTransactions(ctx, f.d, path, Options{RejectsDir: rejectsDir})
	})
	if got := names(t, filepath.Join(in, "processed")); !reflect.DeepEqual(got, []string{"a.csv"}) {
		t.Errorf("processed/ holds %q, want a.csv", got)
	}
	for _, n := range []string{"b.csv", "c.csv"} {
		if _, err := os.Stat(filepath.Join(in, n)); err != nil {
			t.Errorf("%s was not imported but is gone from the folder (error/ holds %q)", n, names(t, filepath.Join(in, "error")))
		}
	}
}

// TestBillionLaughsBounded reads testdata/bad/txn-billion-laughs.xml: the
// reader fails at the first entity, having allocated next to nothing (an
// expansion of lol9 would be 3 GB).
func TestBillionLaughsBounded(t *testing.T) {
	b, err := os.ReadFile(repoFile(t, "testdata", "bad", "txn-billion-laughs.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	src, err := openSource(strings.NewReader(string(b)), "x.xml", "auto")
	for err == nil {
		_, err = src.next()
	}
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "invalid character entity &lol9;") {
		t.Fatalf("error %v", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("reading it allocated %d bytes", n)
	}
}
