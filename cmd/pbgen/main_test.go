package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/imports"
)

var allKinds = []string{"warehouses", "items", "vendors", "customers", "invoices", "inventory"}

// kindSpec is what the tests know about a kind, written out independently
// of the generator's own tables.
var kindSpec = map[string]struct {
	header  string
	keys    []int // key columns
	changed int   // column that -change-pct alters
}{
	"warehouses": {"warehouse,name,allocatable,store", []int{0}, 1},
	"items": {"item,sku,description,sku_description,item_class,vendor,status,color,size,width,upc,retail_ref,price,cost",
		[]int{0, 1}, 12},
	"vendors": {"vendor,name,address1,address2,city,state,postal_code,country,contact,email,phone", []int{0}, 10},
	"customers": {"customer,alt_customer,customer_class,first_name,last_name,company_name,address1,address2,city,state,postal_code,country,email,phone,email_opt_in",
		[]int{0}, 13},
	"invoices": {"invoice,order,customer,invoice_type,invoice_date,line,item,sku,quantity,unit_price,discount,tax,freight",
		[]int{0, 5}, 9},
	"inventory": {"item,sku,warehouse,location,on_hand,reserved,threshold", []int{0, 1, 2, 3}, 4},
}

func gen(t *testing.T, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("pbgen %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.Bytes()
}

func records(t *testing.T, data []byte) [][]string {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("parse output: %v", err)
	}
	return recs
}

func key(rec []string, cols []int) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = rec[c]
	}
	return strings.Join(parts, "\x00")
}

func TestHeaderAndRowCount(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			out := gen(t, "-kind", kind, "-rows", "0")
			if got, want := string(out), kindSpec[kind].header+"\n"; got != want {
				t.Errorf("header = %q, want %q", got, want)
			}
			recs := records(t, gen(t, "-kind", kind, "-rows", "1234", "-seed", "5"))
			if len(recs) != 1235 {
				t.Errorf("got %d records, want header + 1234", len(recs))
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			a := gen(t, "-kind", kind, "-rows", "3000", "-seed", "7")
			b := gen(t, "-kind", kind, "-rows", "3000", "-seed", "7")
			if !bytes.Equal(a, b) {
				t.Fatal("two runs with the same flags differ")
			}
			if bytes.Contains(a, []byte("\r")) {
				t.Error("output has CR line endings")
			}
			if kind == "warehouses" {
				return // no randomness
			}
			if c := gen(t, "-kind", kind, "-rows", "3000", "-seed", "8"); bytes.Equal(a, c) {
				t.Error("seeds 7 and 8 give the same output")
			}
		})
	}
}

func TestUniqueKeys(t *testing.T) {
	for _, kind := range allKinds {
		t.Run(kind, func(t *testing.T) {
			recs := records(t, gen(t, "-kind", kind, "-rows", "5000", "-seed", "11"))
			seen := map[string]int{}
			for i, rec := range recs[1:] {
				k := key(rec, kindSpec[kind].keys)
				if j, dup := seen[k]; dup {
					t.Fatalf("rows %d and %d have the same key %q", j+1, i+1, k)
				}
				seen[k] = i
			}
		})
	}
}

func TestItems(t *testing.T) {
	recs := records(t, gen(t, "-kind", "items", "-rows", "5000", "-seed", "3"))[1:]
	upcs, refs := map[string]bool{}, map[string]bool{}
	done := map[string]bool{} // items already finished
	var cur string
	var level []string
	skus, items, noSKU := 0, 0, 0
	for i, rec := range recs {
		if rec[0] != cur {
			if done[rec[0]] {
				t.Fatalf("row %d: item %s is not on consecutive rows", i+1, rec[0])
			}
			done[cur] = true
			cur, level, skus = rec[0], []string{rec[2], rec[4], rec[5], rec[6]}, 0
			items++
			if rec[1] == "" {
				noSKU++
			}
		}
		skus++
		if got := []string{rec[2], rec[4], rec[5], rec[6]}; strings.Join(got, "|") != strings.Join(level, "|") {
			t.Errorf("row %d: item-level columns %q differ from the item's first row %q", i+1, got, level)
		}
		if skus > 12 {
			t.Errorf("row %d: item %s has more than 12 SKUs", i+1, cur)
		}
		if rec[1] == "" && skus > 1 {
			t.Errorf("row %d: item %s has an empty SKU among others", i+1, cur)
		}
		if len(rec[1]) > 14 || strings.TrimSpace(rec[1]) != rec[1] {
			t.Errorf("row %d: bad SKU code %q", i+1, rec[1])
		}
		if !validUPC(rec[10]) || upcs[rec[10]] {
			t.Errorf("row %d: UPC %q invalid or repeated", i+1, rec[10])
		}
		if rec[11] == "" || refs[rec[11]] {
			t.Errorf("row %d: retail_ref %q empty or repeated", i+1, rec[11])
		}
		upcs[rec[10]], refs[rec[11]] = true, true
		price, cost := cents(t, rec[12]), cents(t, rec[13])
		if cost <= 0 || cost >= price {
			t.Errorf("row %d: want 0 < cost < price, got cost %s price %s", i+1, rec[13], rec[12])
		}
		if v, _ := strconv.Atoi(strings.TrimPrefix(rec[5], "V")); v < 1 || v > 25 {
			t.Errorf("row %d: vendor %s outside V00001..V00025", i+1, rec[5])
		}
	}
	if pct := 100 * noSKU / items; pct < 5 || pct > 15 {
		t.Errorf("%d%% of items have no SKUs, want about 10%%", pct)
	}
}

func validUPC(s string) bool {
	if len(s) != 12 {
		return false
	}
	sum := 0
	for i := range 12 {
		d := int(s[i] - '0')
		if d < 0 || d > 9 {
			return false
		}
		if i == 11 {
			return (10-sum%10)%10 == d
		}
		if i%2 == 0 {
			sum += 3 * d
		} else {
			sum += d
		}
	}
	return false
}

func cents(t *testing.T, s string) int64 {
	t.Helper()
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 {
		t.Fatalf("amount %q does not have two decimal places", s)
	}
	w, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("amount %q is not a decimal", s)
	}
	if strings.HasPrefix(whole, "-") {
		return w*100 - f
	}
	return w*100 + f
}

// itemSKUs returns the item/SKU pairs of `pbgen -kind items -rows rows`.
func itemSKUs(t *testing.T, seed string, rows int) map[string]string {
	t.Helper()
	pairs := map[string]string{}
	for _, rec := range records(t, gen(t, "-kind", "items", "-rows", strconv.Itoa(rows), "-seed", seed))[1:] {
		pairs[rec[0]+"\x00"+rec[1]] = rec[12]
	}
	return pairs
}

func TestInventoryReferencesItems(t *testing.T) {
	for _, tc := range []struct{ rows, itemRows int }{{3000, 0}, {3000, 700}, {3000, 400}, {500, 4000}} {
		t.Run(fmt.Sprintf("rows=%d,item-rows=%d", tc.rows, tc.itemRows), func(t *testing.T) {
			args := []string{"-kind", "inventory", "-rows", strconv.Itoa(tc.rows), "-seed", "9"}
			itemRows := tc.rows
			if tc.itemRows > 0 {
				args = append(args, "-item-rows", strconv.Itoa(tc.itemRows))
				itemRows = tc.itemRows
			}
			pairs := itemSKUs(t, "9", itemRows)
			seen := map[string]bool{}
			for i, rec := range records(t, gen(t, args...))[1:] {
				if k := key(rec, kindSpec["inventory"].keys); seen[k] {
					t.Fatalf("row %d: key %q repeats", i+1, k)
				} else {
					seen[k] = true
				}
				if _, ok := pairs[rec[0]+"\x00"+rec[1]]; !ok {
					t.Fatalf("row %d: %s/%q is not in the items file", i+1, rec[0], rec[1])
				}
				if !strings.Contains(" W1 W2 W3 S01 S02 ", " "+rec[2]+" ") {
					t.Errorf("row %d: unexpected warehouse %q", i+1, rec[2])
				}
				onHand, _ := strconv.Atoi(rec[4])
				reserved, _ := strconv.Atoi(rec[5])
				threshold, _ := strconv.Atoi(rec[6])
				if onHand < 0 || onHand > 500 || reserved < 0 || reserved > onHand {
					t.Errorf("row %d: on_hand %d reserved %d", i+1, onHand, reserved)
				}
				if threshold != 0 && (threshold < 5 || threshold > 20) {
					t.Errorf("row %d: threshold %d", i+1, threshold)
				}
			}
		})
	}
}

func TestInvoices(t *testing.T) {
	const rows = 4000
	pairs := itemSKUs(t, "4", rows)
	recs := records(t, gen(t, "-kind", "invoices", "-rows", strconv.Itoa(rows), "-seed", "4"))[1:]
	done := map[string]bool{}
	var cur, head string
	line, credits, invoices := 0, 0, 0
	lastDate := ""
	for i, rec := range recs {
		if rec[0] != cur {
			if done[rec[0]] {
				t.Fatalf("row %d: invoice %s is not on consecutive rows", i+1, rec[0])
			}
			done[cur] = true
			cur, head, line = rec[0], strings.Join(rec[1:5], "|"), 0
			invoices++
			if rec[3] == "C" {
				credits++
			}
		}
		line++
		if rec[5] != strconv.Itoa(line) {
			t.Errorf("row %d: line %s, want %d", i+1, rec[5], line)
		}
		if line > 5 {
			t.Errorf("row %d: invoice %s has more than 5 lines", i+1, cur)
		}
		if got := strings.Join(rec[1:5], "|"); got != head {
			t.Errorf("row %d: invoice header %q differs from the first line %q", i+1, got, head)
		}
		if rec[4] < "2026-01-01" || rec[4] > "2026-10-31" || rec[4] < lastDate {
			t.Errorf("row %d: date %s out of range or order", i+1, rec[4])
		}
		lastDate = rec[4]
		price, ok := pairs[rec[6]+"\x00"+rec[7]]
		if !ok {
			t.Fatalf("row %d: %s/%q is not in the items file", i+1, rec[6], rec[7])
		}
		if rec[9] != price {
			t.Errorf("row %d: unit_price %s, item file says %s", i+1, rec[9], price)
		}
		qty, err := strconv.Atoi(rec[8])
		if err != nil || qty == 0 || (qty < 0) != (rec[3] == "C") {
			t.Errorf("row %d: type %s quantity %q", i+1, rec[3], rec[8])
		}
		for _, c := range rec[10:13] {
			cents(t, c)
		}
	}
	if pct := 100 * credits / invoices; pct < 5 || pct > 15 {
		t.Errorf("%d%% credits, want about 10%%", pct)
	}
}

func TestWarehouses(t *testing.T) {
	got := string(gen(t, "-kind", "warehouses", "-rows", "6"))
	for _, want := range []string{"\nW1,", "\nW2,", "\nW3,", "\nS01,", "\nS02,", "\nW4,"} {
		if !strings.Contains(got, want) {
			t.Errorf("warehouses lack %q:\n%s", want[1:], got)
		}
	}
}

func TestChangePct(t *testing.T) {
	for _, kind := range allKinds {
		for _, tc := range []struct {
			rows int
			pct  string
			want int
		}{{2000, "10", 200}, {2000, "2.5", 50}, {333, "100", 333}, {10, "5", 0}} {
			t.Run(fmt.Sprintf("%s/%s%%", kind, tc.pct), func(t *testing.T) {
				spec := kindSpec[kind]
				n, seed := strconv.Itoa(tc.rows), "21"
				base := records(t, gen(t, "-kind", kind, "-rows", n, "-seed", seed))
				changed := records(t, gen(t, "-kind", kind, "-rows", n, "-seed", seed, "-change-pct", tc.pct))
				if len(base) != len(changed) {
					t.Fatalf("row count %d, want %d", len(changed), len(base))
				}
				diff := 0
				for i := range base {
					if strings.Join(base[i], ",") == strings.Join(changed[i], ",") {
						continue
					}
					diff++
					if key(base[i], spec.keys) != key(changed[i], spec.keys) {
						t.Errorf("row %d: key changed", i)
					}
					for c := range base[i] {
						if (base[i][c] != changed[i][c]) != (c == spec.changed) {
							t.Errorf("row %d column %s: %q -> %q", i, strings.Split(spec.header, ",")[c], base[i][c], changed[i][c])
						}
					}
				}
				if diff != tc.want {
					t.Errorf("%d rows changed, want %d", diff, tc.want)
				}
			})
		}
	}
}

func TestChangePctSpreadsEvenly(t *testing.T) {
	base := records(t, gen(t, "-kind", "vendors", "-rows", "100"))
	changed := records(t, gen(t, "-kind", "vendors", "-rows", "100", "-change-pct", "10"))
	for i := 1; i < len(base); i++ {
		if got, want := base[i][10] != changed[i][10], i%10 == 0; got != want {
			t.Errorf("data row %d changed = %v, want every 10th row", i, got)
		}
	}
}

func TestOutputFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "items.csv")
	gen(t, "-kind", "items", "-rows", "300", "-seed", "2", "-o", path)
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := gen(t, "-kind", "items", "-rows", "300", "-seed", "2"); !bytes.Equal(got, want) {
		t.Error("-o file differs from stdout output")
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-rows", "10"},
		{"-kind", "stores"},
		{"-kind", "items", "-rows", "-1"},
		{"-kind", "items", "-rows", "ten"},
		{"-kind", "items", "-change-pct", "101"},
		{"-kind", "items", "-change-pct", "-1"},
		{"-kind", "items", "-item-rows", "10"},
		{"-kind", "inventory", "-item-rows", "0"},
		{"-kind", "items", "extra"},
		{"-kind", "items", "-bogus"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
		if out.Len() != 0 || errb.Len() == 0 {
			t.Errorf("%q: want a message on stderr only, got stdout %q stderr %q", args, out.String(), errb.String())
		}
	}
}

func TestPermuterIsOneToOne(t *testing.T) {
	for _, p := range []permuter{newPermuter(10, 100, 1, 2), newPermuter(10, 73, 5, 6), newPermuter(100, 9_999, 7, 8)} {
		seen := make(map[uint64]bool, p.m)
		for i := range p.m {
			v := p.apply(i)
			if v >= p.m || seen[v] {
				t.Fatalf("%+v: apply(%d) = %d repeats or is out of range", p, i, v)
			}
			seen[v] = true
		}
	}
}

// TestTransactionColumnsAreTheImports holds the transaction header pbgen
// writes to the columns the import reads: every column one of them, and
// every column the import requires there, item among them.
func TestTransactionColumnsAreTheImports(t *testing.T) {
	names, required := imports.TransactionColumns()
	for _, c := range transactionColumns {
		if !slices.Contains(names, c) {
			t.Errorf("pbgen writes column %q, which the import does not read (it reads %v)", c, names)
		}
	}
	for _, c := range append(required, "item") {
		if !slices.Contains(transactionColumns, c) {
			t.Errorf("pbgen does not write column %q, which the import requires", c)
		}
	}
}
