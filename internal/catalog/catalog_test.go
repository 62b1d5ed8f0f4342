package catalog_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// fixture is a fresh database and a folder for the files loaded into it.
type fixture struct {
	t   *testing.T
	d   *db.DB
	dir string
	n   int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, d: dbtest.Open(t), dir: t.TempDir()}
}

// load writes content to a new file (.xml when it starts with "<") and
// loads it as kind.
func (f *fixture) load(kind, content string, opts catalog.Options) *catalog.Result {
	f.t.Helper()
	f.n++
	ext := ".csv"
	if strings.HasPrefix(content, "<") {
		ext = ".xml"
	}
	path := filepath.Join(f.dir, fmt.Sprintf("%02d-%s%s", f.n, kind, ext))
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	res, err := catalog.Load(context.Background(), f.d, kind, path, opts)
	if err != nil {
		f.t.Fatalf("load %s: %v", kind, err)
	}
	if res.Rejected != 0 {
		rej, _ := os.ReadFile(res.RejectsFile)
		f.t.Fatalf("load %s rejected %d rows:\n%s", kind, res.Rejected, rej)
	}
	return res
}

func (f *fixture) delta(kind, content string) *catalog.Result {
	f.t.Helper()
	return f.load(kind, content, catalog.Options{Mode: catalog.ModeDelta})
}

func (f *fixture) full(kind, content string) *catalog.Result {
	f.t.Helper()
	return f.load(kind, content, catalog.Options{Mode: catalog.ModeFull})
}

// markSent plays the export: every pending trigger is processed.
func (f *fixture) markSent() {
	f.t.Helper()
	if _, err := f.d.ExecContext(context.Background(),
		`UPDATE triggers SET status='processed', processed_at=?, updated_at=? WHERE status IN ('ready','error')`, db.Now(), db.Now()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) strings(q string, args ...any) []string {
	f.t.Helper()
	rows, err := f.d.QueryContext(context.Background(), q, args...)
	if err != nil {
		f.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// pending lists the pending triggers of code as "KEY/SUB CAPTURE".
func (f *fixture) pending(code string) []string {
	f.t.Helper()
	return f.strings(`SELECT record_key || '/' || sub_key || ' ' || capture FROM triggers
WHERE file_code = ? AND status IN ('ready','error') ORDER BY record_key, sub_key`, code)
}

func (f *fixture) triggerCount() int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRowContext(context.Background(), `SELECT count(*) FROM triggers`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// state says whether the row of table matching where is live, a
// tombstone or missing.
func (f *fixture) state(table, where string, args ...any) string {
	f.t.Helper()
	var deleted sql.NullString
	err := f.d.QueryRowContext(context.Background(), `SELECT deleted_at FROM `+table+` WHERE `+where, args...).Scan(&deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "missing"
	case err != nil:
		f.t.Fatal(err)
	case deleted.Valid:
		return "tombstone"
	}
	return "live"
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

// counts is the part of a Result the tests compare.
type counts struct {
	Added, Changed, Deleted, Unchanged, Triggers int64
}

func countsOf(r *catalog.Result) counts {
	return counts{r.Added, r.Changed, r.Deleted, r.Unchanged, r.Triggers}
}

const (
	warehousesFile = "warehouse,name\nWH1,Main\nWH2,Store\n"
	oneItemFile    = "item,sku,description\nIT1,,Shirt\n"
	inventoryHead  = "item,sku,warehouse,location,on_hand,reserved,threshold\n"
)

func stock(onHand, reserved int, threshold string) string {
	return inventoryHead + fmt.Sprintf("IT1,,WH1,,%d,%d,%s\n", onHand, reserved, threshold)
}

// The ITW trigger of a stock row follows the availability threshold rule:
// available = on_hand - reserved; a trigger when available falls below the
// threshold, drops further while below, or rises back to it or above; with
// no threshold (empty or 0) every change of available.
func TestInventoryThresholdRule(t *testing.T) {
	type level struct {
		onHand, reserved int
		threshold        string // as in the file: "" keeps the stored one
	}
	tests := []struct {
		name     string
		old, new level
		trigger  bool
	}{
		{"falls below the threshold", level{15, 0, "10"}, level{8, 0, ""}, true},
		{"drops to exactly the threshold: not below it", level{15, 0, "10"}, level{10, 0, ""}, false},
		{"drops further while below", level{8, 0, "10"}, level{5, 0, ""}, true},
		{"drops to zero while below", level{8, 0, "10"}, level{0, 0, ""}, true},
		{"rises while still below", level{5, 0, "10"}, level{8, 0, ""}, false},
		{"rises back to the threshold", level{8, 0, "10"}, level{10, 0, ""}, true},
		{"rises from below to above the threshold", level{8, 0, "10"}, level{25, 0, ""}, true},
		{"changes while above the threshold", level{20, 0, "10"}, level{15, 0, ""}, false},
		{"reservations push available below", level{15, 0, "10"}, level{15, 7, ""}, true},
		{"an empty threshold in the file keeps the stored one", level{15, 0, "10"}, level{12, 0, ""}, false},
		{"a threshold first given in the file applies at once", level{15, 0, ""}, level{8, 0, "10"}, true},
		{"no threshold: any fall", level{20, 0, ""}, level{19, 0, ""}, true},
		{"no threshold: any rise", level{20, 0, ""}, level{21, 0, ""}, true},
		{"threshold 0: any change", level{20, 0, "0"}, level{21, 0, ""}, true},
		{"threshold 0 in the file removes the threshold", level{20, 0, "10"}, level{19, 0, "0"}, true},
		{"no threshold: on_hand and reserved change, available does not", level{20, 5, ""}, level{25, 10, ""}, false},
		{"below the threshold: on_hand and reserved change, available does not", level{8, 0, "10"}, level{10, 2, ""}, false},
		{"nothing changes", level{8, 0, "10"}, level{8, 0, ""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.delta("warehouses", warehousesFile)
			f.delta("items", oneItemFile)
			first := f.delta("inventory", stock(tt.old.onHand, tt.old.reserved, tt.old.threshold))
			if first.Added != 1 || first.Triggers != 1 {
				t.Fatalf("first load: %+v, want the new stock row added with a trigger", countsOf(first))
			}
			f.markSent()

			res := f.delta("inventory", stock(tt.new.onHand, tt.new.reserved, tt.new.threshold))
			var want []string
			var wantTriggers int64
			if tt.trigger {
				want, wantTriggers = []string{"IT1/ C"}, 1
			}
			equal(t, "pending ITW triggers", f.pending("ITW"), want)
			if res.Triggers != wantTriggers {
				t.Errorf("Result.Triggers = %d, want %d", res.Triggers, wantTriggers)
			}
			// The stock itself is stored whether or not it triggers.
			var onHand, reserved int
			f.d.QueryRowContext(context.Background(), `SELECT on_hand, reserved FROM inventory WHERE item='IT1'`).Scan(&onHand, &reserved)
			if onHand != tt.new.onHand || reserved != tt.new.reserved {
				t.Errorf("stored on_hand %d reserved %d, want %d %d", onHand, reserved, tt.new.onHand, tt.new.reserved)
			}
		})
	}
}

// A new stock row always triggers: A when the SKU had no stock anywhere,
// C when it had stock in another warehouse.
func TestInventoryNewRows(t *testing.T) {
	f := newFixture(t)
	f.delta("warehouses", warehousesFile)
	f.delta("items", "item,sku,description\nIT1,RED,Shirt\nIT1,BLUE,Shirt\n")
	f.delta("inventory", inventoryHead+"IT1,RED,WH1,,5,0,\n")
	equal(t, "after the first stock row", f.pending("ITW"), []string{"IT1/RED A"})
	f.markSent()

	res := f.delta("inventory", inventoryHead+"IT1,RED,WH2,,0,0,10\nIT1,BLUE,WH1,A-01,3,0,\n")
	if got := countsOf(res); got != (counts{Added: 2, Triggers: 2}) {
		t.Errorf("counts %+v, want 2 added, 2 triggers", got)
	}
	equal(t, "after rows in more warehouses", f.pending("ITW"), []string{"IT1/BLUE A", "IT1/RED C"})
}

// recordKind describes, for the full-mode delete rules, a kind whose
// records are tombstoned: files with two records and with only the first.
type recordKind struct {
	kind, code  string
	setup       [][2]string // kind, content loaded first
	both, first string
	table       string // where the tombstone lives
	second      string // condition selecting the second record in table
	secondKey   string // its trigger key as pending() shows it
}

var recordKinds = []recordKind{
	{
		kind: "vendors", code: "VND",
		both: "vendor,name\nV1,One\nV2,Two\n", first: "vendor,name\nV1,One\n",
		table: "vendors", second: "vendor = 'V2'", secondKey: "V2/",
	},
	{
		kind: "customers", code: "CST",
		both: "customer,last_name\nC1,Smith\nC2,Jones\n", first: "customer,last_name\nC1,Smith\n",
		table: "customers", second: "customer = 'C2'", secondKey: "C2/",
	},
	{
		kind: "items", code: "SKU",
		both: "item,sku,description\nIT1,,Shirt\nIT2,,Shoe\n", first: "item,sku,description\nIT1,,Shirt\n",
		table: "skus", second: "item = 'IT2' AND sku = ''", secondKey: "IT2/",
	},
	{
		kind: "items (one SKU of an item)", code: "SKU",
		both:  "item,sku,description\nIT1,RED,Shirt\nIT1,BLUE,Shirt\n",
		first: "item,sku,description\nIT1,RED,Shirt\n",
		table: "skus", second: "item = 'IT1' AND sku = 'BLUE'", secondKey: "IT1/BLUE",
	},
	{
		kind: "invoices", code: "IHD",
		setup: [][2]string{{"customers", "customer,last_name\nC1,Smith\n"}, {"items", oneItemFile}},
		both: "invoice,order,customer,invoice_date,line,item,quantity,unit_price\n" +
			"INV1,O1,C1,2024-01-05,1,IT1,1,9.99\nINV2,O2,C1,2024-01-06,1,IT1,2,9.99\nINV2,O2,C1,2024-01-06,2,IT1,1,5.00\n",
		first: "invoice,order,customer,invoice_date,line,item,quantity,unit_price\n" +
			"INV1,O1,C1,2024-01-05,1,IT1,1,9.99\n",
		table: "invoices", second: "invoice = 'INV2'", secondKey: "INV2/",
	},
}

func (k recordKind) loadKind() string {
	kind, _, _ := strings.Cut(k.kind, " ")
	return kind
}

// A record missing from a full load whose add was already sent becomes a
// tombstone with a D trigger: the delete message needs the whole record.
func TestFullLoadDeletesSentRecord(t *testing.T) {
	for _, k := range recordKinds {
		t.Run(k.kind, func(t *testing.T) {
			f := newFixture(t)
			for _, s := range k.setup {
				f.delta(s[0], s[1])
			}
			f.delta(k.loadKind(), k.both)
			f.markSent()

			res := f.full(k.loadKind(), k.first)
			if res.Deleted != 1 || res.Added != 0 || res.Changed != 0 || res.Triggers != 1 {
				t.Errorf("counts %+v, want 1 deleted with 1 trigger", countsOf(res))
			}
			if got := f.state(k.table, k.second); got != "tombstone" {
				t.Errorf("deleted record is %s, want a tombstone", got)
			}
			equal(t, "pending triggers", f.pending(k.code), []string{k.secondKey + " D"})
		})
	}
}

// A record added and deleted before anything was sent is never sent: its
// pending A trigger and the record are removed outright.
func TestFullLoadDeletesUnsentRecord(t *testing.T) {
	for _, k := range recordKinds {
		t.Run(k.kind, func(t *testing.T) {
			f := newFixture(t)
			for _, s := range k.setup {
				f.delta(s[0], s[1])
			}
			f.markSent()
			f.delta(k.loadKind(), k.both)
			before := f.pending(k.code)

			res := f.full(k.loadKind(), k.first)
			if res.Deleted != 1 {
				t.Errorf("counts %+v, want 1 deleted", countsOf(res))
			}
			if got := f.state(k.table, k.second); got != "missing" {
				t.Errorf("deleted record is %s, want it removed", got)
			}
			var want []string
			for _, p := range before {
				if !strings.HasPrefix(p, k.secondKey+" ") {
					want = append(want, p)
				}
			}
			equal(t, "pending triggers", f.pending(k.code), want)
			if k.code == "IHD" {
				equal(t, "lines of the removed invoice", f.strings(`SELECT line_no FROM invoice_lines WHERE invoice = 'INV2'`), nil)
			}
			if k.loadKind() == "items" && k.secondKey == "IT2/" {
				if got := f.state("items", "item = 'IT2'"); got != "missing" {
					t.Errorf("item IT2 without SKUs is %s, want it removed", got)
				}
			}
		})
	}
}

// A tombstoned record that comes back: while its D trigger is pending the
// two fold into C (the partner still has the record); once the D was sent,
// it is added again.
func TestDeletedRecordReloaded(t *testing.T) {
	for _, k := range recordKinds {
		for _, sent := range []bool{false, true} {
			want := k.secondKey + " C"
			name := k.kind + ": D pending, reload gives C"
			if sent {
				want = k.secondKey + " A"
				name = k.kind + ": D sent, reload gives A"
			}
			t.Run(name, func(t *testing.T) {
				f := newFixture(t)
				for _, s := range k.setup {
					f.delta(s[0], s[1])
				}
				f.delta(k.loadKind(), k.both)
				f.markSent()
				f.full(k.loadKind(), k.first)
				if sent {
					f.markSent()
				}

				res := f.delta(k.loadKind(), k.both)
				if res.Added != 1 || res.Triggers != 1 {
					t.Errorf("counts %+v, want the record added back with 1 trigger", countsOf(res))
				}
				if got := f.state(k.table, k.second); got != "live" {
					t.Errorf("reloaded record is %s, want live", got)
				}
				equal(t, "pending triggers", f.pending(k.code), []string{want})
			})
		}
	}
}

// An item whose only SKU was deleted is tombstoned with it, and comes
// back with it.
func TestItemTombstoneFollowsItsSKUs(t *testing.T) {
	f := newFixture(t)
	f.delta("items", "item,sku,description\nIT1,,Shirt\nIT2,,Shoe\n")
	f.markSent()
	f.full("items", oneItemFile)
	if got := f.state("items", "item = 'IT2'"); got != "tombstone" {
		t.Fatalf("item IT2 is %s after its only SKU row was deleted, want a tombstone", got)
	}
	f.delta("items", "item,sku,description\nIT2,,Shoe\n")
	if got := f.state("items", "item = 'IT2'"); got != "live" {
		t.Fatalf("item IT2 is %s after reload, want live", got)
	}
}

const invoiceHead = "invoice,order,customer,invoice_date,line,item,quantity,unit_price\n"

// Invoices are merged as wholes: the file carries all lines of an invoice.
func TestInvoiceResent(t *testing.T) {
	const original = invoiceHead +
		"INV1,O1,C1,2024-01-05,1,IT1,1,9.99\n" +
		"INV1,O1,C1,2024-01-05,2,IT1,2,5.00\n" +
		"INV1,O1,C1,2024-01-05,3,IT1,1,1.50\n"
	tests := []struct {
		name    string
		resent  string
		trigger bool
		lines   []string // line_no:quantity after the load
	}{
		{
			name:    "a line removed is deleted and the invoice changes",
			resent:  invoiceHead + "INV1,O1,C1,2024-01-05,1,IT1,1,9.99\nINV1,O1,C1,2024-01-05,2,IT1,2,5.00\n",
			trigger: true, lines: []string{"1:1", "2:2"},
		},
		{
			name:    "a line added",
			resent:  original + "INV1,O1,C1,2024-01-05,4,IT1,3,2.00\n",
			trigger: true, lines: []string{"1:1", "2:2", "3:1", "4:3"},
		},
		{
			name: "a line changed",
			resent: invoiceHead + "INV1,O1,C1,2024-01-05,1,IT1,1,9.99\n" +
				"INV1,O1,C1,2024-01-05,2,IT1,5,5.00\nINV1,O1,C1,2024-01-05,3,IT1,1,1.50\n",
			trigger: true, lines: []string{"1:1", "2:5", "3:1"},
		},
		{
			name:    "the header changed",
			resent:  strings.ReplaceAll(original, "2024-01-05", "2024-01-06"),
			trigger: true, lines: []string{"1:1", "2:2", "3:1"},
		},
		{
			name:    "the same invoice again, lines in another order",
			resent:  invoiceHead + "INV1,O1,C1,2024-01-05,3,IT1,1,1.5\nINV1,O1,C1,2024-01-05,1,IT1,1,9.990\nINV1,O1,C1,2024-01-05,2,IT1,2,5\n",
			trigger: false, lines: []string{"1:1", "2:2", "3:1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.delta("customers", "customer,last_name\nC1,Smith\n")
			f.delta("items", oneItemFile)
			f.delta("invoices", original)
			f.markSent()

			res := f.delta("invoices", tt.resent)
			want := counts{Unchanged: 1}
			var wantPending []string
			if tt.trigger {
				want = counts{Changed: 1, Triggers: 1}
				wantPending = []string{"INV1/ C"}
			}
			if got := countsOf(res); got != want {
				t.Errorf("counts %+v, want %+v", got, want)
			}
			equal(t, "pending IHD triggers", f.pending("IHD"), wantPending)
			equal(t, "invoice lines", f.strings(`SELECT line_no || ':' || quantity FROM invoice_lines WHERE invoice='INV1' ORDER BY line_no`), tt.lines)
		})
	}
}

// Loading the same content again changes nothing and creates no trigger:
// the very same file again, and the same data in a file that differs only
// in its bytes (CRLF line ends), in delta and in full mode.
func TestReloadIdenticalContent(t *testing.T) {
	tests := []struct {
		kind      string
		content   string
		unchanged int64 // records: SKU rows for items, invoices for invoices
	}{
		{"warehouses", "warehouse,name,allocatable,store\nWH1,Main,Y,N\nWH2,Store 2,N,Y\n", 2},
		{"vendors", "vendor,name,city,email\nV1,Acme,Springfield,a@example.com\nV2,\"Smith, Jones & Co\",,\n", 2},
		{"items", "item,sku,description,vendor,item_class,price,cost,color,size\n" +
			"IT1,RED-M,Shirt,V1,APP,12.50,4.1,Red,M\nIT1,BLUE-M,Shirt,V1,APP,12.5,4.1,Blue,M\nIT2,,Hat,,ACC,,,,\n", 3},
		{"customers", "customer,first_name,last_name,company_name,email_opt_in,customer_class\n" +
			"C1,Ann,Smith,,Y,VIP\nC2,,,Acme Ltd,n,\n", 2},
		{"invoices", "invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price,discount,tax\n" +
			"INV1,O1,C1,I,2024-01-05,1,IT1,RED-M,2,12.50,,1.00\nINV1,O1,C1,I,2024-01-05,2,IT2,,1,3.00,0.50,\n" +
			"CR1,O1,C1,C,2024-01-07,1,IT2,,-1,3.00,,\n", 2},
		{"inventory", inventoryHead + "IT1,RED-M,WH1,,10,2,5\nIT1,RED-M,WH2,BIN-1,3,0,\nIT2,,WH1,,0,0,\n", 3},
		{"items", `<Items>
  <Item item="IT3" description="Scarf" price="9.99"/>
  <Item item="IT4" sku="S"><description>Glove</description><price>1.0</price></Item>
</Items>`, 2},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			first := f.delta(tt.kind, tt.content)
			if first.Added != tt.unchanged {
				t.Fatalf("first load: %+v, want %d added", countsOf(first), tt.unchanged)
			}
			before := f.triggerCount()

			// A loader may recognise the very same file and skip it; either
			// way nothing changes.
			same := f.delta(tt.kind, tt.content)
			if got := countsOf(same); got.Added != 0 || got.Changed != 0 || got.Deleted != 0 || got.Triggers != 0 {
				t.Errorf("same file again: counts %+v, want no change and no trigger", got)
			}

			crlf := strings.ReplaceAll(tt.content, "\n", "\r\n")
			for i, mode := range []string{catalog.ModeDelta, catalog.ModeFull} {
				if mode == catalog.ModeFull && strings.HasPrefix(tt.content, "<") {
					continue // a full load of the XML items would delete the CSV ones
				}
				// Each file differs from the last (a blank line more at the end),
				// so the data is really compared.
				res := f.load(tt.kind, crlf+strings.Repeat("\r\n", i), catalog.Options{Mode: mode})
				if got := countsOf(res); got != (counts{Unchanged: tt.unchanged}) {
					t.Errorf("%s load of the same data with CRLF: counts %+v, want all %d unchanged and no trigger", mode, got, tt.unchanged)
				}
			}
			if after := f.triggerCount(); after != before {
				t.Errorf("%d triggers after the reloads, was %d", after, before)
			}
		})
	}
}

// The same data in XML and in CSV is the same data: amounts are compared
// as numbers, not as text.
func TestSameDataInXMLIsUnchanged(t *testing.T) {
	f := newFixture(t)
	f.delta("items", "item,sku,description,price\nIT1,RED,Shirt,12.50\nIT1,BLUE,Shirt,12.50\n")
	res := f.delta("items", `<?xml version="1.0"?>
<Items>
  <Item item="IT1" sku="RED" description="Shirt" price="12.5"/>
  <Item item="IT1" sku="BLUE"><description>Shirt</description><price>12.5000</price></Item>
</Items>
`)
	if got := countsOf(res); got != (counts{Unchanged: 2}) {
		t.Fatalf("counts %+v, want 2 unchanged", got)
	}
}

// A full inventory load sets the stock missing from the file to zero
// (counted as deleted); the threshold rule decides whether that triggers.
func TestFullInventoryZeroesMissingStock(t *testing.T) {
	f := newFixture(t)
	f.delta("warehouses", warehousesFile)
	f.delta("items", "item,sku,description\nIT1,,Shirt\nIT2,,Shoe\nIT3,,Hat\n")
	f.delta("inventory", inventoryHead+"IT1,,WH1,,10,0,\nIT2,,WH1,,20,0,5\nIT3,,WH1,,3,0,5\nIT1,,WH2,,0,0,\n")
	f.markSent()

	res := f.full("inventory", inventoryHead+"IT1,,WH1,,10,0,\n")
	// IT2 drops from 20 to 0 below its threshold 5; IT3 was already below
	// it and drops further; IT1 in WH2 was already zero.
	if got := countsOf(res); got != (counts{Deleted: 2, Unchanged: 1, Triggers: 2}) {
		t.Errorf("counts %+v, want 2 deleted, 1 unchanged, 2 triggers", got)
	}
	equal(t, "pending ITW triggers", f.pending("ITW"), []string{"IT2/ C", "IT3/ C"})
	equal(t, "stock", f.strings(`SELECT item || '@' || warehouse || '=' || on_hand FROM inventory ORDER BY 1`),
		[]string{"IT1@WH1=10", "IT1@WH2=0", "IT2@WH1=0", "IT3@WH1=0"})
}

// TestChangeSequence: every load transaction that writes customers, items
// or invoices takes the next number of the change sequence and stamps it
// on the rows it adds, changes or deletes (change_seq), and on the rows it
// adds or brings back (added_seq); unchanged rows keep theirs; an invoice
// keeps the number of the load that added it. The engagement feed reads
// these (migration 0007).
func TestChangeSequence(t *testing.T) {
	f := newFixture(t)
	rows := func(q string) []string { t.Helper(); return f.strings(q) }
	f.delta("customers", "customer,last_name\nC1,Ash\nC2,Birch\nC3,Cedar\n")      // 1
	f.delta("items", "item,sku,description\nIT1,S1,Mug\nIT1,S2,Mug\nIT2,,Tape\n") // 2
	f.delta("customers", "customer,last_name\nC2,Birch\nC3,Cedars\n")             // 3: C3 changes
	f.markSent()
	f.full("customers", "customer,last_name\nC2,Birch\nC3,Cedars\n") // 4: C1 deleted
	equal(t, "tombstone", rows(`SELECT customer || ' ' || change_seq || ' ' || added_seq FROM customers WHERE deleted_at IS NOT NULL`),
		[]string{"C1 4 1"})
	f.delta("customers", "customer,last_name\nC1,Ash\n")       // 5: C1 back
	f.delta("items", "item,sku,description\nIT1,S1,Big mug\n") // 6: IT1 changes
	f.delta("invoices", "invoice,order,customer,invoice_date,line,item,sku,quantity,unit_price\n"+
		"I1,O1,C1,2026-01-02,1,IT2,,1,3.50\n") // 7
	f.delta("invoices", "invoice,order,customer,invoice_date,line,item,sku,quantity,unit_price\n"+
		"I1,O1,C1,2026-01-02,1,IT2,,2,3.50\n") // 8: I1 changes, keeps 7
	equal(t, "counter", rows(`SELECT last FROM sequences WHERE kind = 'catalog_changes'`), []string{"8"})
	equal(t, "customers", rows(`SELECT customer || ' ' || change_seq || ' ' || added_seq || ' ' || CASE WHEN deleted_at IS NULL THEN 'live' ELSE 'tombstone' END FROM customers ORDER BY 1`),
		[]string{"C1 5 5 live", "C2 1 1 live", "C3 3 1 live"})
	equal(t, "items", rows(`SELECT item || ' ' || change_seq FROM items ORDER BY 1`), []string{"IT1 6", "IT2 2"})
	equal(t, "skus", rows(`SELECT item || '/' || sku || ' ' || change_seq || ' ' || added_seq FROM skus ORDER BY 1`),
		[]string{"IT1/S1 6 2", "IT1/S2 2 2", "IT2/ 2 2"})
	equal(t, "invoices", rows(`SELECT invoice || ' ' || change_seq FROM invoices`), []string{"I1 7"})
}

// The rejects of one line (XML holds several records on one line) come in
// the same order on both engines: those rejected as read first, then
// those rejected against the other rows.
func TestRejectsOfOneLine(t *testing.T) {
	f := newFixture(t)
	path := filepath.Join(f.dir, "items.xml")
	content := `<Items><Item item="IT7" description="A"/><Item item="IT7" description="B"/><Item item="IT8"/></Items>` + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := catalog.Load(context.Background(), f.d, "items", path, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rej, err := os.ReadFile(res.RejectsFile)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(rej)), "\n")[1:] {
		fields := strings.SplitN(line, ",", 3)
		got = append(got, fields[0]+" "+fields[1])
	}
	equal(t, "rejects", got, []string{"1 field description is required", "1 duplicate key item IT7 sku : first on line 1"})
}

// Full loads of one kind at once apply one after the other, as a
// database with one writer runs them: the state is one file's, never a
// mix of both.
func TestConcurrentFullLoads(t *testing.T) {
	f := newFixture(t)
	var files [2]string
	for i := range files {
		var b strings.Builder
		b.WriteString("vendor,name\n")
		for v := range 2000 {
			fmt.Fprintf(&b, "V%d%04d,Vendor %d\n", i, v, v)
		}
		files[i] = filepath.Join(f.dir, fmt.Sprintf("vendors-%d.csv", i))
		if err := os.WriteFile(files[i], []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 3 {
		errs := make(chan error, len(files))
		for _, path := range files {
			go func() {
				_, err := catalog.Load(context.Background(), f.d, "vendors", path, catalog.Options{Mode: catalog.ModeFull, Force: true})
				errs <- err
			}()
		}
		for range files {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		live := f.strings(`SELECT DISTINCT substr(vendor, 1, 2) FROM vendors WHERE deleted_at IS NULL`)
		if len(live) != 1 {
			t.Fatalf("round %d: live vendors of files %q, want those of one file", round, live)
		}
	}
}

const itemsHead = "item,sku,description,sku_description,item_class,vendor,status,color,size,width,upc,retail_ref,price,cost\n"

// TestLoadAnalyzesOnPostgres: on PostgreSQL a load that changed a large
// share of its tables has their planner statistics brought up to date
// once it has committed (ANALYZE), without waiting for autovacuum: the
// exports after a first load are planned for the rows it wrote. A small
// delta on the analyzed tables, and a load of another kind, leave the
// tables they did not change much alone.
func TestLoadAnalyzesOnPostgres(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	f := &fixture{t: t, d: d, dir: t.TempDir()}
	analyzed := func() map[string]string {
		t.Helper()
		got := map[string]string{}
		rows, err := d.QueryContext(ctx, `SELECT relname, coalesce(CAST(last_analyze AS TEXT), '') FROM pg_stat_user_tables
WHERE relname IN ('items', 'skus', 'triggers', 'vendors')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var table, at string
			if err := rows.Scan(&table, &at); err != nil {
				t.Fatal(err)
			}
			got[table] = at
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := analyzed(); got["skus"] != "" || got["items"] != "" || got["triggers"] != "" {
		t.Fatalf("analyzed before the load: %v", got)
	}

	var b strings.Builder
	b.WriteString(itemsHead)
	for i := 0; i < 1500; i++ {
		fmt.Fprintf(&b, "I%05d,S,Item %d,,FTW,,A,,,,,,9.99,5.00\n", i, i)
	}
	if res := f.delta("items", b.String()); res.Added != 1500 || res.Triggers != 1500 {
		t.Fatalf("first load: %+v", res)
	}
	first := analyzed()
	for _, table := range []string{"items", "skus", "triggers"} {
		if first[table] == "" {
			t.Errorf("%s not analyzed after a load of 1500 items into it", table)
		}
	}
	if first["vendors"] != "" {
		t.Errorf("vendors analyzed after a load of items: %v", first)
	}

	f.delta("items", itemsHead+"I00001,S,Item 1 renamed,,FTW,,A,,,,,,9.99,5.00\n")
	f.delta("vendors", "vendor,name\nV1,Vendor one\n")
	second := analyzed()
	for _, table := range []string{"items", "skus", "triggers"} {
		if second[table] != first[table] {
			t.Errorf("%s analyzed again after a delta of one item of 1500: %v, then %v", table, first[table], second[table])
		}
	}
	if second["vendors"] == "" {
		t.Errorf("vendors not analyzed after the first rows went into it (never analyzed): %v", second)
	}
}
