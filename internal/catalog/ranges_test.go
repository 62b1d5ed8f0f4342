package catalog_test

import (
	"context"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/format"
)

// InvoiceTotals refuses, rather than wraps, an extended price or a total
// beyond the range of amounts, names which, and leaves the totals as they
// were.
func TestInvoiceTotalsRanges(t *testing.T) {
	const max = format.MaxAmount
	type line struct{ qty, price, disc, tax, freight int64 }
	tests := []struct {
		name    string
		lines   []line
		wantExt int64 // of the last line
		want    catalog.InvoiceTotals
		total   int64
		wantErr string // of the last line
	}{
		{"plain", []line{{2, 249900, 0, 41200, 0}, {1, 199500, 5000, 0, 79500}}, 199500,
			catalog.InvoiceTotals{Merchandise: 699300, Discount: 5000, Tax: 41200, Freight: 79500}, 815000, ""},
		{"credit", []line{{-1, 249900, 0, -20600, 0}}, -249900,
			catalog.InvoiceTotals{Merchandise: -249900, Tax: -20600}, -270500, ""},
		{"largest extended price", []line{{format.MaxQuantity, 999999, 0, 0, 0}}, 999999000000000,
			catalog.InvoiceTotals{Merchandise: 999999000000000}, 999999000000000, ""},
		{"extended price beyond", []line{{format.MaxQuantity, 1000000, 0, 0, 0}}, 0,
			catalog.InvoiceTotals{}, 0, "extended price (quantity × unit_price): out of range: 1000000000 × 100.00 is beyond ±99999999999.9999"},
		{"64-bit product", []line{{math.MaxInt64, math.MaxInt64, 0, 0, 0}}, 0, catalog.InvoiceTotals{}, 0, "extended price"},
		{"merchandise total beyond", []line{{1, max, 0, 0, 0}, {1, 1, 0, 0, 0}}, 0,
			catalog.InvoiceTotals{Merchandise: max}, max, "merchandise total: out of range: 100000000000.00 is beyond ±99999999999.9999"},
		{"tax total beyond", []line{{1, 0, 0, max, 0}, {1, 0, 0, 1, 0}}, 0,
			catalog.InvoiceTotals{Tax: max}, max, "tax total: out of range"},
		{"invoice total beyond", []line{{1, max, 0, 0, 0}, {1, 0, 0, 0, 1}}, 0,
			catalog.InvoiceTotals{Merchandise: max}, max, "invoice total: out of range: 100000000000.00 is beyond ±99999999999.9999"},
		{"discount brings it back", []line{{1, max, 1, 0, 0}, {1, 0, 0, 0, 1}}, 0,
			catalog.InvoiceTotals{Merchandise: max, Discount: 1, Freight: 1}, max, ""},
		{"stored beyond", []line{{1, 1, math.MaxInt64, 0, 0}}, 0, catalog.InvoiceTotals{}, 0, "discount total: out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum catalog.InvoiceTotals
			var ext int64
			var err error
			for i, l := range tt.lines {
				ext, err = sum.AddLine(l.qty, l.price, l.disc, l.tax, l.freight)
				if err != nil && i < len(tt.lines)-1 {
					t.Fatalf("line %d: %v", i+1, err)
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("AddLine: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, format.ErrRange)):
				t.Fatalf("AddLine error = %v, want ErrRange containing %q", err, tt.wantErr)
			}
			if tt.wantErr == "" && ext != tt.wantExt {
				t.Errorf("extended = %d, want %d", ext, tt.wantExt)
			}
			if sum != tt.want || sum.Total() != tt.total {
				t.Errorf("totals = %+v total %d, want %+v total %d", sum, sum.Total(), tt.want, tt.total)
			}
		})
	}
}

// A load, CSV or XML, refuses every quantity and amount beyond its range,
// and control characters in text, naming the field; the values at the
// edge load.
func TestLoadRanges(t *testing.T) {
	f := newFixture(t)
	f.delta("warehouses", warehousesFile)
	f.delta("items", "item,sku,description,price\nIT1,,Shirt,99999999999.9999\n")
	f.delta("customers", "customer,last_name\nC1,Smith\n")
	for _, tc := range []struct {
		kind, content string
		want          []string // reject messages in line order
	}{
		{"inventory", inventoryHead + "IT1,,WH1,A,1000000000,1000000000,1000000000\n" +
			"IT1,,WH1,B,9223372036854775807,0,0\n" +
			"IT1,,WH1,C,1,-1,0\n" +
			"IT1,,WH1,D,1,1000000001,0\n" +
			"IT1,,WH1,E,1,0,99999999999999999999\n", []string{
			`field on_hand "9223372036854775807": out of range: 9223372036854775807 is beyond ±1000000000`,
			`field reserved "-1": must be at least 0`,
			`field reserved "1000000001": out of range: 1000000001 is beyond ±1000000000`,
			`field threshold "99999999999999999999": out of range: 99999999999999999999 is beyond ±1000000000`,
		}},
		{"inventory", `<Inventory><Stock item="IT1" warehouse="WH1" location="X" on_hand="1000000001"/>
<Stock item="IT1" warehouse="WH1" location="Y" on_hand="7"/></Inventory>`, []string{
			`field on_hand "1000000001": out of range: 1000000001 is beyond ±1000000000`,
		}},
		{"items", "item,sku,description,price,cost\nIT2,,Dear,100000000000,\nIT3,,Tab\there,,\nIT4,,Esc\x1b[2J,,\nIT5,,Del\x7f,,\n", []string{
			`field price "100000000000": out of range: 100000000000.00 is beyond ±99999999999.9999`,
			`field description contains the control character U+001B`,
			`field description contains the control character U+007F`,
		}},
		{"invoices", "invoice,order,customer,invoice_date,line,item,quantity,unit_price,tax\n" +
			"I1,O1,C1,2026-01-02,1,IT1,1000000000,0.0001,-99999999999.9999\n" +
			"I2,O2,C1,2026-01-02,1,IT1,-1000000000,100,\n" +
			"I3,O3,C1,2026-01-02,1,IT1,1,99999999999.9999,\n" +
			"I3,O3,C1,2026-01-02,2,IT1,1,0,0.0001\n", []string{
			"invoice I2: extended price (quantity × unit_price): out of range: -1000000000 × 100.00 is beyond ±99999999999.9999",
			"invoice I3 not applied: another of its lines was rejected",
			"invoice I3: invoice total: out of range: 100000000000.00 is beyond ±99999999999.9999",
		}},
	} {
		ext := ".csv"
		if strings.HasPrefix(tc.content, "<") {
			ext = ".xml"
		}
		path := filepath.Join(f.dir, tc.kind+"-range"+ext)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := catalog.Load(context.Background(), f.d, tc.kind, path, catalog.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		rej, err := os.ReadFile(res.RejectsFile)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		lines := strings.Split(strings.TrimSpace(string(rej)), "\n")[1:]
		if len(lines) != len(tc.want) {
			t.Fatalf("%s: %d rejects, want %d:\n%s", tc.kind, len(lines), len(tc.want), rej)
		}
		for i, w := range tc.want {
			if !strings.Contains(strings.ReplaceAll(lines[i], `""`, `"`), w) {
				t.Errorf("%s: reject %d = %s\nwant it to hold %s", tc.kind, i+1, lines[i], w)
			}
		}
		if res.Read-res.Rejected != 1 {
			t.Errorf("%s: %d of %d rows applied, want 1", tc.kind, res.Read-res.Rejected, res.Read)
		}
	}
	equal(t, "stock", f.strings(`SELECT location || ' ' || on_hand || ' ' || reserved || ' ' || coalesce(CAST(threshold AS TEXT), '-') FROM inventory ORDER BY location`),
		[]string{"A 1000000000 1000000000 1000000000", "Y 7 0 -"})
}

// Whatever the line, AddLine either refuses it with ErrRange or gives the
// exact extended price and totals, all within the range of amounts.
func FuzzInvoiceTotals(f *testing.F) {
	f.Add(int64(2), int64(249900), int64(0), int64(41200), int64(0), int64(3))
	f.Add(int64(format.MaxQuantity), int64(999999), int64(-1), int64(1), int64(format.MaxAmount), int64(1))
	f.Add(int64(math.MinInt64), int64(-1), int64(0), int64(0), int64(0), int64(2))
	f.Fuzz(func(t *testing.T, qty, price, disc, tax, freight, times int64) {
		var sum catalog.InvoiceTotals
		want := [4]*big.Int{new(big.Int), new(big.Int), new(big.Int), new(big.Int)}
		inRange := func(v *big.Int) bool { return v.CmpAbs(big.NewInt(format.MaxAmount)) <= 0 }
		for i := int64(0); i < times%4+1; i++ {
			ext, err := sum.AddLine(qty, price, disc, tax, freight)
			exact := new(big.Int).Mul(big.NewInt(qty), big.NewInt(price))
			next := [4]*big.Int{new(big.Int).Add(want[0], exact), new(big.Int).Add(want[1], big.NewInt(disc)),
				new(big.Int).Add(want[2], big.NewInt(tax)), new(big.Int).Add(want[3], big.NewInt(freight))}
			total := new(big.Int).Sub(next[0], next[1])
			steps := []*big.Int{exact, big.NewInt(disc), big.NewInt(tax), big.NewInt(freight), next[0], next[1], next[2], next[3],
				new(big.Int).Set(total), total.Add(total, next[2]), new(big.Int).Add(total, next[3])}
			ok := true
			for _, v := range steps {
				ok = ok && inRange(v)
			}
			if err != nil {
				if !errors.Is(err, format.ErrRange) || ok {
					t.Fatalf("line %d: %v, though every step is in range", i+1, err)
				}
				return
			}
			if !ok {
				t.Fatalf("line %d: accepted %+v with a step beyond the range", i+1, sum)
			}
			want = next
			if ext != exact.Int64() || sum.Merchandise != want[0].Int64() || sum.Discount != want[1].Int64() ||
				sum.Tax != want[2].Int64() || sum.Freight != want[3].Int64() {
				t.Fatalf("line %d: %d %+v, want %v %v", i+1, ext, sum, exact, want)
			}
		}
	})
}
