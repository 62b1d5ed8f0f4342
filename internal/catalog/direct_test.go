package catalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

// The tables a load of items writes, without the times of the run.
var itemTables = []string{
	`SELECT item || '|' || description || '|' || item_class || '|' || vendor || '|' || status || '|' ||
  coalesce(deleted_at, 'live') || '|' || change_seq FROM items ORDER BY item`,
	`SELECT item || '|' || sku || '|' || sku_description || '|' || color || '|' || size || '|' || width || '|' ||
  upc || '|' || retail_ref || '|' || coalesce(price, -1) || '|' || coalesce(cost, -1) || '|' ||
  coalesce(deleted_at, 'live') || '|' || change_seq || '|' || added_seq FROM skus ORDER BY item, sku`,
	// In id order, without the ids: on PostgreSQL a direct load that goes
	// on staged has taken ids its rollback does not give back.
	`SELECT file_code || '|' || record_key || '|' || sub_key || '|' || capture || '|' || status || '|' ||
  attempts || '|' || last_error FROM triggers ORDER BY id`,
}

// loadSeen is what a load showed: its result (without the file's
// folder), its warnings, its rejects file and the item tables after it.
type loadSeen struct {
	res      catalog.Result
	direct   bool // the load went without the staging table
	warnings []string
	rejects  string
	tables   [][]string
}

// loadAndLook loads content as items into f from a file named name.
func loadAndLook(f *fixture, name, content string, opts catalog.Options) loadSeen {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	var seen loadSeen
	opts.Warn = func(msg string) { seen.warnings = append(seen.warnings, strings.ReplaceAll(msg, f.dir, "DIR")) }
	opts.Debug = func(msg string) {
		seen.direct = seen.direct || strings.Contains(msg, "written without the staging table")
	}
	res, err := catalog.Load(context.Background(), f.d, "items", path, opts)
	if err != nil {
		f.t.Fatalf("load %s: %v", name, err)
	}
	seen.res = *res
	seen.res.File = ""
	if res.RejectsFile != "" {
		b, err := os.ReadFile(res.RejectsFile)
		if err != nil {
			f.t.Fatal(err)
		}
		seen.rejects = string(b)
		seen.res.RejectsFile = filepath.Base(res.RejectsFile)
	}
	for _, q := range itemTables {
		seen.tables = append(seen.tables, f.strings(q))
	}
	// A direct first load has SQLite check no foreign key.
	if f.d.Dialect != db.Postgres {
		if bad := f.strings(`SELECT "table" || ' ' || parent FROM pragma_foreign_key_check`); len(bad) > 0 {
			f.t.Errorf("load %s: foreign keys violated: %q", name, bad)
		}
	}
	return seen
}

// TestDirectFirstLoadAsStaged loads the same files, first loads then
// reloads, once as they go (a first load of a CSV file written straight
// into the tables when it can be) and once all through the staging table:
// results, warnings, rejects and tables must be the same. The files with
// something the direct load leaves to the staged one (rows rejected, an
// item's rows apart, a duplicate, item-level fields that differ, an
// unknown vendor) must come out the same too.
func TestDirectFirstLoadAsStaged(t *testing.T) {
	const header = "item,sku,description,sku_description,item_class,vendor,status,color,size,width,upc,retail_ref,price,cost\n"
	var good strings.Builder
	good.WriteString(header)
	for i := 1; i <= 700; i++ {
		if i%7 == 0 {
			fmt.Fprintf(&good, "I%04d,,Item %d,,CLS,V1,A,,,,%012d,R%d,%d.25,\n", i, i, i, i, i)
			continue
		}
		for s := 1; s <= 3; s++ {
			fmt.Fprintf(&good, "I%04d,S%d,Item %d,Size %d,CLS,V%d,A,RED,%d,,%012d,,%d.50,1.10\n", i, s, i, s, i%2+1, s, i*10+s, i)
		}
	}
	// A rejected row early in a file of many batches: the direct attempt
	// stops at the first batch, and the staged load must read the whole
	// file again, not share it with a parser still reading.
	var many strings.Builder
	many.WriteString(header + "I0000,S1,Item 0,Size 1,CLS,V1,A,RED,1,,,,x,\n")
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&many, "J%05d,S1,Item %d,Size 1,CLS,V1,A,RED,1,,,,%d.50,1.10\nJ%05d,S2,Item %d,Size 2,CLS,V1,A,RED,2,,,,%d.50,1.10\n", i, i, i, i, i, i)
	}
	// Many items in order, and the first one's row again at the end: on
	// PostgreSQL its item meets itself in another COPY than the first.
	var apart strings.Builder
	apart.WriteString(header)
	for i := 1; i <= 6000; i++ {
		fmt.Fprintf(&apart, "K%05d,S1,Item %d,Size 1,CLS,V1,A,RED,1,,,,%d.50,1.10\n", i, i, i)
	}
	apart.WriteString("K00001,S2,Item 1,Size 2,CLS,V1,A,RED,2,,,,1.50,1.10\n")
	changed := strings.Replace(good.String(), "Item 5,Size 2", "Item 5,Size two", 1)
	changed = strings.Replace(changed, "I0010,S3,Item 10", "I0010,S4,Item 10", 1)
	files := []struct {
		name, first string
		opts        catalog.Options // of the first load
	}{
		{"grouped", good.String(), catalog.Options{}},
		{"full", good.String(), catalog.Options{Mode: catalog.ModeFull}},
		{"dry run", good.String(), catalog.Options{DryRun: true}},
		{"unknown vendor rejected", "item,sku,description,vendor\nA,1,a,V1\nB,1,b,NOPE\n", catalog.Options{UnknownReferences: "reject"}},
		{"no optional columns", "item,sku,description\nA,1,a\nA,2,a\nB,,b\n", catalog.Options{}},
		{"rejected row", header + "A,1,a,,,V1,,,,,,,1.00,\nA,2,a,,,V1,,,,,,,x,\nB,,b,,,,,,,,,,,\n", catalog.Options{}},
		{"rejected row, many batches", many.String(), catalog.Options{}},
		{"item apart", "item,sku,description\nA,1,a\nB,1,b\nA,2,a\n", catalog.Options{}},
		{"item apart, many batches", apart.String(), catalog.Options{}},
		{"duplicate", "item,sku,description\nA,1,a\nA,1,a\nB,,b\n", catalog.Options{}},
		{"item-level differs", "item,sku,description\nA,1,a\nA,2,other\n", catalog.Options{}},
		{"form differs", "item,sku,description\nA,,a\nA,2,a\n", catalog.Options{}},
		{"unknown vendor", "item,sku,description,vendor\nA,1,a,V1\nB,1,b,NOPE\n", catalog.Options{}},
		{"unknown column", "item,sku,description,colour\nA,1,a,red\n", catalog.Options{}},
		{"no rows", "item,sku,description\n", catalog.Options{}},
	}
	// The files a first load writes without the staging table.
	directly := map[string]bool{"grouped": true, "full": true, "dry run": true, "no optional columns": true, "unknown column": true}
	for _, file := range files {
		t.Run(file.name, func(t *testing.T) {
			var seen [2][]loadSeen
			for i, staged := range []bool{false, true} {
				if staged {
					defer catalog.StageAlways()()
				}
				f := newFixture(t)
				f.delta("vendors", "vendor,name\nV1,One\nV2,Two\n")
				steps := []struct {
					name, content string
					opts          catalog.Options
				}{
					{"first.csv", file.first, file.opts},
					{"first.csv", file.first, catalog.Options{Force: true}},
					{"changed.csv", changed, catalog.Options{}},
					{"changed.csv", file.first, catalog.Options{Mode: catalog.ModeFull, AllowEmpty: true}},
				}
				for _, s := range steps {
					seen[i] = append(seen[i], loadAndLook(f, s.name, s.content, s.opts))
				}
			}
			if direct := seen[0][0].direct; direct != directly[file.name] {
				t.Errorf("first load without the staging table: %v", direct)
			}
			sameLoads(t, seen[0], seen[1])
		})
	}
}

// firstDifference is the first pair of rows of a and b that differ.
func firstDifference(a, b []string) [2]string {
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return [2]string{x, y}
		}
	}
	return [2]string{}
}

// TestDirectFirstLoadInterrupted interrupts a first load written without
// the staging table halfway through the file: nothing of it is applied,
// and the next load applies the whole file.
func TestDirectFirstLoadInterrupted(t *testing.T) {
	f := newFixture(t)
	var b strings.Builder
	b.WriteString("item,sku,description\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "I%05d,S1,Item %d\nI%05d,S2,Item %d\n", i, i, i, i)
	}
	path := filepath.Join(f.dir, "items.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first load drops the secondary indexes (and on PostgreSQL the
	// foreign key) of items and skus inside its transaction: cancelled
	// while its rows are read, it must leave them as they were.
	before := f.schemaOf("items", "skus")
	if len(before) < 4 {
		t.Fatalf("indexes and constraints of items and skus: %q, want the migrations' secondary indexes and foreign key", before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	half := int64(b.Len() / 2)
	_, err := catalog.Load(ctx, f.d, "items", path, catalog.Options{Progress: func(read int64) {
		if read > half {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("interrupted load: no error")
	}
	for _, table := range []string{"items", "skus", "triggers WHERE file_code = 'SKU'", "files"} {
		if n := f.strings(`SELECT count(*) FROM ` + table); n[0] != "0" {
			t.Errorf("after the interrupted load: %s rows in %s", n[0], table)
		}
	}
	if after := f.schemaOf("items", "skus"); !slices.Equal(after, before) {
		t.Errorf("after the interrupted load, indexes and constraints:\n%q\nwant\n%q", after, before)
	}
	res := f.delta("items", b.String())
	if res.Added != 40000 || res.Triggers != 40000 {
		t.Errorf("next load: %+v, want 40000 added and triggers", res)
	}
	if after := f.schemaOf("items", "skus"); !slices.Equal(after, before) {
		t.Errorf("after the first load, indexes and constraints:\n%q\nwant\n%q", after, before)
	}
}

// schemaOf lists the indexes and constraints of tables with their
// definitions, from the engine's catalog.
func (f *fixture) schemaOf(tables ...string) []string {
	f.t.Helper()
	var out []string
	for _, t := range tables {
		if f.d.Dialect == db.Postgres {
			out = append(out, f.strings(`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ? ORDER BY indexname`, t)...)
			out = append(out, f.strings(`SELECT conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated FROM pg_constraint
WHERE conrelid = ?::regclass ORDER BY conname`, t)...)
			continue
		}
		out = append(out, f.strings(`SELECT name || ' ' || coalesce(sql, '') FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? ORDER BY name`, t)...)
		out = append(out, f.strings(`SELECT "table" || ' ' || "from" || ' ' || "to" FROM pragma_foreign_key_list(?) ORDER BY id`, t)...)
	}
	return out
}

// TestDirectFirstLoadPendingTrigger: a first load whose SKU still has a
// pending trigger (its record purged before it was sent) cannot add its
// triggers with a plain insert: the load goes staged and folds them.
func TestDirectFirstLoadPendingTrigger(t *testing.T) {
	f := newFixture(t)
	if _, err := f.d.ExecContext(context.Background(), `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)
VALUES ('SKU', 'I2', 'S1', 'D', 'error', ?, ?)`, db.Now(), db.Now()); err != nil {
		t.Fatal(err)
	}
	res := f.delta("items", "item,sku,description\nI1,S1,One\nI2,S1,Two\nI2,S2,Two\n")
	if res.Added != 3 || res.Triggers != 3 {
		t.Errorf("load: %+v, want 3 added and 3 triggers", res)
	}
	want := []string{"I1/S1 A", "I2/S1 C", "I2/S2 A"}
	if got := f.pending("SKU"); !slices.Equal(got, want) {
		t.Errorf("pending triggers: %q, want %q", got, want)
	}
}

// TestDirectFirstLoadKeys: on SQLite a direct first load runs with the
// foreign key checks off, loadDirect vouching for each key its writes
// have. Every foreign key of a table the load changes must be one of
// those: a key declared since fails here until the direct load keeps it
// (by construction, or checked, going staged when it does not hold).
func TestDirectFirstLoadKeys(t *testing.T) {
	f := newFixture(t)
	if f.d.Dialect == db.Postgres {
		t.Skip("PostgreSQL checks the keys of a direct load (or drops and validates them again)")
	}
	vouched := map[string]bool{
		"skus(item) items(item)": true, // each item is written before its SKUs
		"files(run_id) runs(id)": true, // the run is looked up first
	}
	f.delta("vendors", "vendor,name\nV1,One\n")
	run := f.strings(`INSERT INTO runs(command, status, started_at) VALUES ('load items', 'running', ?) RETURNING id`, db.Now())[0]
	var runID int64
	fmt.Sscan(run, &runID)
	tables := f.strings(`SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	before := map[string]string{}
	for _, table := range tables {
		before[table] = f.contents(table)
	}
	seen := loadAndLook(f, "items.csv", "item,sku,description,vendor\nA,1,a,V1\nA,2,a,V1\nB,,b,\n", catalog.Options{RunID: runID})
	if !seen.direct {
		t.Fatal("the first load went staged")
	}
	var written []string
	for _, table := range tables {
		if f.contents(table) == before[table] {
			continue
		}
		written = append(written, table)
		keys := f.strings(`SELECT ? || '(' || group_concat("from") || ') ' || "table" || '(' || group_concat(coalesce("to", '')) || ')'
FROM pragma_foreign_key_list(?) GROUP BY id, "table" ORDER BY id`, table, table)
		for _, k := range keys {
			if !vouched[k] {
				t.Errorf("foreign key %s of a table the direct first load writes: not checked with the checks off", k)
			}
		}
	}
	if !slices.Contains(written, "skus") || !slices.Contains(written, "files") {
		t.Errorf("tables the first load changed: %q, want skus and files among them", written)
	}
	if bad := f.strings(`SELECT "table" || ' ' || parent FROM pragma_foreign_key_check`); len(bad) > 0 {
		t.Errorf("foreign keys violated after the direct first load: %q", bad)
	}
}

// contents is every row of table, as text (SQLite).
func (f *fixture) contents(table string) string {
	f.t.Helper()
	cols := f.strings(`SELECT 'quote("' || name || '")' FROM pragma_table_info(?) ORDER BY cid`, table)
	return f.strings(`SELECT coalesce(group_concat(` + strings.Join(cols, ` || ',' || `) + `, char(10)), '') FROM "` + table + `"`)[0]
}

// TestDirectFirstLoadUnknownRun: a load whose run is not in the runs table
// fails on the key of its ledger row, the direct first load as the staged
// one, with nothing applied; the direct load, which does not have SQLite
// check its keys, looks the run up.
func TestDirectFirstLoadUnknownRun(t *testing.T) {
	var msgs [2]string
	for i, staged := range []bool{false, true} {
		if staged {
			defer catalog.StageAlways()()
		}
		f := newFixture(t)
		path := filepath.Join(f.dir, "items.csv")
		if err := os.WriteFile(path, []byte("item,sku,description\nA,1,a\nA,2,a\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := catalog.Load(context.Background(), f.d, "items", path, catalog.Options{RunID: 999})
		if err == nil {
			t.Fatalf("staged %v: load with an unknown run: no error", staged)
		}
		msgs[i] = strings.ReplaceAll(err.Error(), f.dir, "DIR")
		for _, table := range []string{"items", "skus", "triggers", "files"} {
			if n := f.strings(`SELECT count(*) FROM ` + table); n[0] != "0" {
				t.Errorf("staged %v: after the failed load, %s rows in %s", staged, n[0], table)
			}
		}
	}
	if msgs[0] != msgs[1] {
		t.Errorf("direct first load: %s\nstaged: %s", msgs[0], msgs[1])
	}
}

// TestDirectFirstLoadManyVendors: the direct first load checks its items'
// vendors a thousand at a time; an unknown one among more than that still
// sends the file to the staged load, which warns about it.
func TestDirectFirstLoadManyVendors(t *testing.T) {
	for _, unknown := range []bool{false, true} {
		f := newFixture(t)
		var vendors, items strings.Builder
		vendors.WriteString("vendor,name\n")
		items.WriteString("item,sku,description,vendor\n")
		for i := range 2500 {
			fmt.Fprintf(&vendors, "V%04d,Vendor %d\n", i, i)
			fmt.Fprintf(&items, "I%04d,1,Item %d,V%04d\n", i, i, i)
		}
		if unknown {
			items.WriteString("I9999,1,Item 9999,NOPE\n")
		}
		f.delta("vendors", vendors.String())
		seen := loadAndLook(f, "items.csv", items.String(), catalog.Options{})
		if seen.direct == unknown {
			t.Errorf("unknown vendor %v: written without the staging table: %v", unknown, seen.direct)
		}
		if warned := len(seen.warnings) > 0 && strings.Contains(strings.Join(seen.warnings, "\n"), "NOPE"); warned != unknown {
			t.Errorf("unknown vendor %v: warnings %q", unknown, seen.warnings)
		}
	}
}
