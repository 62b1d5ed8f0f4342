package catalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

const reloadHeader = "item,sku,description,sku_description,item_class,vendor,status,color,size,width,upc,retail_ref,price,cost\n"

// reloadBase is a file of n items in key order: every fifth without SKUs,
// the others with three (item I0002 with 300, over two batches of the
// parser), prices and costs of every kind.
func reloadBase(n int) []string {
	var rows []string
	for i := 1; i <= n; i++ {
		if i%5 == 0 {
			rows = append(rows, fmt.Sprintf("I%04d,,Item %d,,CLS,V1,A,,,,%012d,R%d,%d.25,", i, i, i, i, i))
			continue
		}
		skus := 3
		if i == 2 {
			skus = 300
		}
		for s := 1; s <= skus; s++ {
			rows = append(rows, fmt.Sprintf("I%04d,S%03d,Item %d,Size %d,CLS,V%d,A,RED,%d,,%012d,,%d.50,1.10", i, s, i, s, i%2+1, s, i*1000+s, i))
		}
	}
	return rows
}

// file is a CSV file of rows under reloadHeader.
func file(rows []string) string {
	return reloadHeader + strings.Join(rows, "\n") + "\n"
}

// edit returns rows with the row starting with prefix replaced by with
// (dropped when with is empty).
func edit(t *testing.T, rows []string, prefix, with string) []string {
	t.Helper()
	out := slices.Clone(rows)
	for i, r := range out {
		if strings.HasPrefix(r, prefix) {
			if with == "" {
				return slices.Delete(out, i, i+1)
			}
			out[i] = with
			return out
		}
	}
	t.Fatalf("no row starts with %q", prefix)
	return nil
}

// setField returns the row of rows starting with prefix with its field
// number field (0-based) set to v.
func setField(t *testing.T, rows []string, prefix string, field int, v string) []string {
	t.Helper()
	for _, r := range rows {
		if strings.HasPrefix(r, prefix) {
			fields := strings.Split(r, ",")
			fields[field] = v
			return edit(t, rows, prefix, strings.Join(fields, ","))
		}
	}
	t.Fatalf("no row starts with %q", prefix)
	return nil
}

// reloadStep is one load of a scenario, after before (when set) ran on
// the database.
type reloadStep struct {
	content string
	opts    catalog.Options
	before  string
	// direct is whether the load must go without the staging table when
	// it may (not all staged).
	direct bool
}

// TestReloadAsStaged runs scenarios of loads of items, once as they go (a
// reload of a CSV file merged without the staging table when it can be)
// and once all through the staging table: results, warnings, rejects and
// the item tables must be the same after every load, and each reload
// must have gone the way the scenario says.
func TestReloadAsStaged(t *testing.T) {
	base := reloadBase(120)
	first := reloadStep{content: file(base), direct: false}
	sent := `UPDATE triggers SET status = 'processed', processed_at = '2026-01-01T00:00:00Z' WHERE status IN ('ready', 'error')`
	ok := func(content string, opts catalog.Options) reloadStep {
		return reloadStep{content: content, opts: opts, direct: true}
	}
	staged := func(content string, opts catalog.Options) reloadStep {
		return reloadStep{content: content, opts: opts}
	}
	full := catalog.Options{Mode: catalog.ModeFull}
	delta := catalog.Options{}
	// One change of each column that is not a key, of an item with SKUs
	// (item-level columns on every row of the item) and of a SKU row.
	columns := strings.Split(strings.TrimSpace(reloadHeader), ",")
	itemLevel := map[string]bool{"description": true, "item_class": true, "vendor": true, "status": true}
	var each []reloadStep
	for c := 2; c < len(columns); c++ {
		rows := base
		v := "X'" + columns[c][:min(4, len(columns[c]))]
		switch columns[c] {
		case "vendor":
			v = "V1"
		case "price", "cost":
			v = "9.99"
		}
		if itemLevel[columns[c]] {
			for s := 1; s <= 3; s++ {
				rows = setField(t, rows, fmt.Sprintf("I0007,S%03d,", s), c, v)
			}
		} else {
			rows = setField(t, rows, "I0008,S002,", c, v)
		}
		each = append(each, reloadStep{content: file(rows), direct: true, before: sent})
	}
	numbers := []reloadStep{
		// The same amounts written otherwise: unchanged.
		ok(file(setField(t, setField(t, base, "I0003,S001,", 12, "3.5"), "I0003,S002,", 12, "3.5000")), delta),
		ok(file(setField(t, base, "I0004,S001,", 13, "1.1")), delta),
		ok(file(setField(t, base, "I0005,,", 12, "5.250")), delta),
		// Empty: NULL where there was an amount, and back.
		ok(file(setField(t, base, "I0003,S001,", 12, "")), delta),
		ok(file(setField(t, base, "I0003,S001,", 12, "3.50")), delta),
		ok(file(setField(t, base, "I0010,,", 13, "0")), delta),
		ok(file(setField(t, base, "I0010,,", 13, "")), delta),
		ok(file(setField(t, base, "I0004,S003,", 12, "4.5001")), delta),
		ok(file(setField(t, base, "I0004,S003,", 12, "4.5")), delta),
	}
	// The file with the SKU-level columns only, then without price and
	// cost, then with text that needs quoting.
	few := func(cols int) string {
		var b strings.Builder
		b.WriteString(strings.Join(columns[:cols], ",") + "\n")
		for _, r := range base {
			b.WriteString(strings.Join(strings.Split(r, ",")[:cols], ",") + "\n")
		}
		return b.String()
	}
	var cased []string
	for _, r := range base {
		cased = append(cased, strings.Replace(r, "RED", "Red", 1))
	}
	quoted := edit(t, base, "I0006,S001,", `I0006,S001,Item 6,"O'Brien, ""the"" 6",CLS,V1,A,RED,1,,000000006001,,6.50,1.10`)
	// 1% of the rows changed, over the whole file.
	var onePct []string
	for i, r := range base {
		if i%100 == 50 {
			r = strings.Replace(r, ".50,", ".75,", 1)
		}
		onePct = append(onePct, r)
	}
	// Form changes: I0015 gets SKUs, I0011 loses them.
	form := edit(t, base, "I0015,,", "I0015,S001,Item 15,Size 1,CLS,V1,A,,,,,,15.25,")
	form = edit(t, form, "I0011,S002,", "")
	form = edit(t, form, "I0011,S003,", "")
	form = edit(t, form, "I0011,S001,", "I0011,,Item 11,,CLS,V2,A,,,,,,11.50,")
	// SKUs added and removed, items added before, between and after.
	moved := edit(t, base, "I0009,S002,", "")
	moved = edit(t, moved, "I0012,S001,", "I0012,S000,Item 12,Size 0,CLS,V1,A,RED,0,,,,12.50,1.10\nI0012,S001,Item 12,Size 1,CLS,V1,A,RED,1,,000000012001,,12.50,1.10")
	moved = append([]string{"A0001,,First,,,,,,,,,,,"}, moved...)
	moved = edit(t, moved, "I0020,,", "I0020,,Item 20,,CLS,V1,A,,,,000000000020,R20,20.25,\nI0020A,S1,Between,,,,,,,,,,,")
	moved = append(moved, "Z0001,S1,Last,,,,,,,,,,,")
	gone := slices.DeleteFunc(slices.Clone(base), func(r string) bool {
		return strings.HasPrefix(r, "I0001,") || strings.HasPrefix(r, "I0050,") || strings.HasPrefix(r, "I0120,") || strings.HasPrefix(r, "I0013,S002")
	})
	unsorted := slices.Clone(base)
	i14 := slices.IndexFunc(unsorted, func(r string) bool { return strings.HasPrefix(r, "I0014,S001,") })
	unsorted[i14], unsorted[i14+2] = unsorted[i14+2], unsorted[i14]
	// A few items over the whole table, changed: their stored rows are
	// looked up, not read in one range.
	var sparse []string
	for _, r := range base {
		if slices.ContainsFunc([]string{"I0001,", "I0030,", "I0060,", "I0090,", "I0119,"}, func(p string) bool { return strings.HasPrefix(r, p) }) {
			sparse = append(sparse, strings.Replace(r, "CLS", "NEW", 1))
		}
	}
	// An item of more SKUs than one statement takes parameters for
	// (SQLite: 32,766, 10 per SKU row, 2 per gone key).
	var huge, hugeChanged, hugeGone []string
	for i := 1; i <= 17000; i++ {
		row := fmt.Sprintf("H0001,S%05d,Huge,Size,CLS,V1,A,RED,1,,,,1.00,1.00", i)
		if i <= 4000 {
			huge = append(huge, row)
			hugeChanged = append(hugeChanged, strings.Replace(row, ",1.00,1.00", ",2.00,1.00", 1))
		}
		hugeGone = append(hugeGone, row)
	}
	// An item of 700 SKUs, over three of the parser's batches, among
	// others; then without the items on both sides of it and one of its
	// SKUs.
	var big []string
	for _, r := range base {
		if strings.HasPrefix(r, "I0003,S001") {
			for i := 1; i <= 700; i++ {
				big = append(big, fmt.Sprintf("I0002Z,S%04d,Big,Size,CLS,V1,A,RED,1,,,,1.00,1.00", i))
			}
		}
		big = append(big, r)
	}
	bigGone := slices.DeleteFunc(slices.Clone(big), func(r string) bool {
		return strings.HasPrefix(r, "I0002,") || strings.HasPrefix(r, "I0003,") || strings.HasPrefix(r, "I0002Z,S0005")
	})
	bothForms := `INSERT INTO skus(item, sku, created_at, updated_at) SELECT item, '', created_at, updated_at FROM skus WHERE sku = 'S001' AND item IN ('I0001', 'I0099') ON CONFLICT DO NOTHING`
	pendingError := `UPDATE triggers SET status = 'error', last_error = 'refused', attempts = 2 WHERE record_key = 'I0003'`
	scenarios := []struct {
		name  string
		steps []reloadStep
	}{
		{"identical", []reloadStep{first, ok(file(base), catalog.Options{Force: true}), ok(file(base), catalog.Options{Force: true, Mode: catalog.ModeFull})}},
		{"one percent", []reloadStep{first, ok(file(onePct), delta), {content: file(base), before: sent, direct: true}}},
		{"each column", append([]reloadStep{first}, each...)},
		{"amounts", append([]reloadStep{first}, numbers...)},
		{"columns left out", []reloadStep{first, ok(few(4), delta), ok(few(12), full), ok(few(3), delta), ok(file(base), delta)}},
		{"case and quotes", []reloadStep{first, ok(file(cased), delta), ok(file(quoted), delta), ok(file(quoted), catalog.Options{Force: true})}},
		{"form change", []reloadStep{first, ok(file(form), delta), ok(file(base), full), {content: file(form), opts: full, before: sent, direct: true}}},
		{"sparse", []reloadStep{first, ok(file(sparse), delta), ok(file(sparse[:4]), delta), {content: file(base), before: sent, direct: true}}},
		{"moved, delta", []reloadStep{first, ok(file(moved), delta), {content: file(base), before: sent, direct: true}}},
		{"moved, full", []reloadStep{first, ok(file(moved), full), {content: file(base), opts: full, before: sent, direct: true}}},
		{"gone and revived", []reloadStep{first, {content: file(gone), opts: full, before: sent, direct: true},
			{content: file(base), before: sent, direct: true}, ok(file(gone), full), ok(file(base), delta)}},
		{"unsent gone", []reloadStep{first, ok(file(gone), full), ok(file(base), full)}},
		{"pending triggers", []reloadStep{first, ok(file(onePct), delta), {content: file(base), before: pendingError, direct: true},
			{content: file(onePct), before: sent, direct: true}, ok(file(base), delta)}},
		{"item tombstoned by hand", []reloadStep{first, {content: file(base), before: `UPDATE items SET deleted_at = '2026-01-01T00:00:00Z' WHERE item = 'I0003'`, opts: catalog.Options{Force: true}, direct: true}}},
		// An item with rows of both forms (not something loads leave): its
		// row of the other form goes only when the load adds rows.
		{"both forms", []reloadStep{first, {content: file(base), before: bothForms, opts: catalog.Options{Force: true}, direct: true},
			ok(file(onePct), delta), {content: file(base), before: bothForms, opts: full, direct: true}}},
		{"dry run", []reloadStep{first, ok(file(onePct), catalog.Options{DryRun: true}), ok(file(gone), catalog.Options{DryRun: true, Mode: catalog.ModeFull})}},
		{"unsorted skus", []reloadStep{first, ok(file(unsorted), delta), ok(file(base), full)}},
		{"unknown vendor", []reloadStep{first, staged(file(setField(t, base, "I0004,S001,", 5, "NOPE")), delta)}},
		{"unknown vendor rejected", []reloadStep{first, staged(file(setField(t, base, "I0004,S001,", 5, "NOPE")), catalog.Options{UnknownReferences: "reject"})}},
		{"out of order", []reloadStep{first, staged(file(append(slices.Clone(base[1:]), base[0])), full)}},
		{"item apart", []reloadStep{first, staged(file(append(slices.Clone(base), strings.Replace(base[0], "S001", "S999", 1))), delta)}},
		{"item met again", []reloadStep{first, staged(file(append(slices.Clone(base), base[0])), delta)}},
		{"duplicate", []reloadStep{first, staged(file(edit(t, base, "I0004,S002,", base[slices.IndexFunc(base, func(r string) bool { return strings.HasPrefix(r, "I0004,S001") })])), delta)}},
		{"rejected row", []reloadStep{first, staged(file(setField(t, base, "I0004,S002,", 12, "x")), full)}},
		{"item-level differs", []reloadStep{first, staged(file(setField(t, base, "I0004,S002,", 2, "Other")), delta)}},
		{"form differs", []reloadStep{first, staged(file(edit(t, base, "I0005,,", "I0005,,Item 5,,CLS,V1,A,,,,,,5.25,\nI0005,S1,Item 5,,CLS,V1,A,,,,,,5.25,")), delta)}},
		{"no rows", []reloadStep{first, staged(reloadHeader, catalog.Options{Mode: catalog.ModeFull, AllowEmpty: true}), ok(file(base), delta)}},
		{"sparse full", []reloadStep{first, ok(file(sparse), full), ok(file(base), full), ok(file(sparse[:4]), full)}},
		{"one item full", []reloadStep{first, ok(file(base[3:303]), full), ok(file(base), full)}},
		{"huge item", []reloadStep{first, ok(file(huge), delta), ok(file(hugeChanged), delta), ok(file(base), full)}},
		{"huge item gone", []reloadStep{{content: file(hugeGone)}, ok(file(hugeGone[:1]), full)}},
		{"big item, its neighbours gone", []reloadStep{first, ok(file(big), full), ok(file(bigGone), full), ok(file(base), delta)}},
		{"xml", []reloadStep{first, staged(`<Items><Item item="I0001" sku="S001" description="Item 1"/></Items>`, delta)}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			asItGoes, staged := bothWays(t, func(f *fixture) []loadSeen {
				var seen []loadSeen
				for j, s := range sc.steps {
					if s.before != "" {
						if _, err := f.d.ExecContext(context.Background(), s.before); err != nil {
							t.Fatal(err)
						}
					}
					name := fmt.Sprintf("load%d.csv", j)
					if strings.HasPrefix(s.content, "<") {
						name = fmt.Sprintf("load%d.xml", j)
					}
					seen = append(seen, loadAndLook(f, name, s.content, s.opts))
				}
				return seen
			})
			for j, s := range sc.steps {
				if j > 0 && asItGoes[j].direct != s.direct {
					t.Errorf("load %d without the staging table: %v, want %v", j+1, asItGoes[j].direct, s.direct)
				}
			}
			sameLoads(t, asItGoes, staged)
		})
	}
}

// bothWays runs loads on a new database with vendors V1 and V2, once as
// the loads go and once all through the staging table.
func bothWays(t *testing.T, loads func(f *fixture) []loadSeen) (asItGoes, staged []loadSeen) {
	t.Helper()
	withVendors := func() *fixture {
		f := newFixture(t)
		f.delta("vendors", "vendor,name\nV1,One\nV2,Two\n")
		return f
	}
	asItGoes = loads(withVendors())
	defer catalog.StageAlways()()
	return asItGoes, loads(withVendors())
}

// sameLoads compares what the same loads showed as they went and all
// staged (whether each went without the staging table aside), but for
// the times the tables hold.
func sameLoads(t *testing.T, asItGoes, staged []loadSeen) {
	t.Helper()
	for j := range asItGoes {
		got, want := withoutTimes(asItGoes[j]), withoutTimes(staged[j])
		got.direct, want.direct = false, false
		for k := range got.tables {
			if !reflect.DeepEqual(got.tables[k], want.tables[k]) {
				t.Errorf("load %d, table %d: as it goes %d rows, all staged %d rows; first difference: %q",
					j+1, k+1, len(got.tables[k]), len(want.tables[k]), firstDifference(got.tables[k], want.tables[k]))
			}
		}
		got.tables, want.tables = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Errorf("load %d: as it goes:\n%+v\nall staged:\n%+v", j+1, got, want)
		}
	}
}

// stamp is a time a load writes (a tombstone's deleted_at).
var stamp = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

// withoutTimes is s with the times in its tables replaced: two loads of
// the same file may run in different seconds.
func withoutTimes(s loadSeen) loadSeen {
	tables := make([][]string, len(s.tables))
	for i, rows := range s.tables {
		for _, r := range rows {
			tables[i] = append(tables[i], stamp.ReplaceAllString(r, "TIME"))
		}
	}
	s.tables = tables
	return s
}

// TestReloadInterrupted interrupts a reload merged without the staging
// table halfway through the file: nothing of it is applied.
func TestReloadInterrupted(t *testing.T) {
	f := newFixture(t)
	var b, changed strings.Builder
	b.WriteString("item,sku,description\n")
	changed.WriteString("item,sku,description\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "I%05d,S1,Item %d\nI%05d,S2,Item %d\n", i, i, i, i)
		fmt.Fprintf(&changed, "I%05d,S1,Item %d\nI%05d,S2,Item %d changed\n", i, i, i, i)
	}
	f.delta("items", b.String())
	f.markSent()
	before := make([][]string, len(itemTables))
	for i, q := range itemTables {
		before[i] = f.strings(q)
	}
	path := filepath.Join(f.dir, "changed.csv")
	if err := os.WriteFile(path, []byte(changed.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	half := int64(changed.Len() / 2)
	direct := false
	_, err := catalog.Load(ctx, f.d, "items", path, catalog.Options{Mode: catalog.ModeFull,
		Progress: func(read int64) {
			if read > half {
				cancel()
			}
		},
		Debug: func(msg string) { direct = direct || strings.HasPrefix(msg, "reload:") },
	})
	if err == nil {
		t.Fatal("interrupted load: no error")
	}
	if !direct {
		t.Error("the reload went staged")
	}
	for i, q := range itemTables {
		if after := f.strings(q); !slices.Equal(after, before[i]) {
			t.Errorf("after the interrupted load, table %d: %q", i+1, firstDifference(after, before[i]))
		}
	}
	if n := f.strings(`SELECT count(*) FROM files WHERE kind = 'load-items'`); n[0] != "1" {
		t.Errorf("loads of items in the ledger: %s, want 1", n[0])
	}
}

// TestReloadKeepsTextTypes: the merge compares a stored value with the
// file's as SQLite's IS DISTINCT FROM does, types included: a price
// stored as text (written by hand) is not the same as the file's number.
func TestReloadKeepsTextTypes(t *testing.T) {
	f := newFixture(t)
	if f.d.Dialect == db.Postgres {
		t.Skip("PostgreSQL's price column holds integers only")
	}
	content := "item,sku,description,price\nA,1,a,1.00\nA,2,a,2.00\n"
	f.delta("items", content)
	if _, err := f.d.ExecContext(context.Background(), `UPDATE skus SET price = 'x' WHERE sku = '1'`); err != nil {
		t.Fatal(err)
	}
	seen := loadAndLook(f, "again.csv", content, catalog.Options{Force: true})
	if !seen.direct || seen.res.Changed != 1 || seen.res.Unchanged != 1 {
		t.Errorf("reload: direct %v, %+v; want direct, 1 changed, 1 unchanged", seen.direct, seen.res)
	}
	if got := f.strings(`SELECT typeof(price) || ' ' || price FROM skus ORDER BY sku`); !slices.Equal(got, []string{"integer 10000", "integer 20000"}) {
		t.Errorf("prices after the reload: %q", got)
	}
}
