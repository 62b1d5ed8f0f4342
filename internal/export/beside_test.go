package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestReadBeside: each file's records are read beside the file's claim
// (on SQLite by a process of their own, on PostgreSQL on a connection of
// their own), and the files are the same, byte for byte, as those read
// after the claim: items (several files, a limit, a SKU deleted after its
// change, an item gone without a tombstone, whose file is read again
// after the check), vendors, customers, XML and CSV.
func TestReadBeside(t *testing.T) {
	delivered, again := countBeside(t)
	run := func(beside bool) map[string]string {
		f := newFixture(t)
		f.load("vendors", catalog.ModeDelta, "vendor,name\nV1,One\nV2,Two\n")
		f.load("items", catalog.ModeDelta, "item,description,vendor,sku,color,price\n"+
			"I1,Mug,V1,S1,RED,1.00\nI1,Mug,V1,S2,BLU,1.50\nI2,Cap,V2,,,2.00\nI3,Hat,V1,S1,,3.00\nI4,Bag,V2,S1,,4.00\nI5,Pen,V1,,,0.50\n")
		f.load("customers", catalog.ModeDelta, "customer,customer_class,last_name\nC1,RT,One\nC2,WH,Two\n")
		ctx := context.Background()
		// I4 leaves without a tombstone; I1's S2 is deleted after its change.
		for _, q := range []string{`DELETE FROM skus WHERE item = 'I4'`, `DELETE FROM items WHERE item = 'I4'`,
			`UPDATE skus SET deleted_at = '2026-01-01T00:00:00Z' WHERE item = 'I1' AND sku = 'S2'`} {
			if _, err := f.d.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		out := map[string]string{}
		for _, c := range []struct {
			kind, format string
			max          int
		}{{"items", "xml", 2}, {"vendors", "csv", 0}, {"customers", "xml", 0}} {
			o := f.opts()
			o.ReadBeside, o.Format, o.MaxRecords = beside, c.format, c.max
			if _, err := Run(ctx, f.d, c.kind, o); err != nil {
				t.Fatalf("export %s: %v", c.kind, err)
			}
			files, _ := filepath.Glob(filepath.Join(f.outbox(), c.kind, "*"))
			for _, p := range files {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				// The envelope's time differs from run to run.
				name := filepath.Base(p)
				out[name[:len(c.kind)]+name[len(c.kind)+17:]] = stripCreated(string(b))
			}
		}
		return out
	}
	serial := run(false)
	if *delivered+*again != 0 {
		t.Fatalf("read beside %d times without ReadBeside", *delivered+*again)
	}
	beside := run(true)
	if len(serial) < 4 || len(beside) != len(serial) {
		t.Fatalf("files: %d beside, %d after the claim", len(beside), len(serial))
	}
	for name, want := range serial {
		if beside[name] != want {
			t.Errorf("%s read beside:\n%s\nafter the claim:\n%s", name, beside[name], want)
		}
	}
	// Every file but the one whose record is gone (read again after the
	// check) is delivered as the reader wrote it.
	if *delivered != 3 || *again != 1 {
		t.Errorf("read beside: %d delivered, %d read again; want 3 delivered (items I1-I2, vendors, customers), 1 read again (items I3-I4, I4 gone)", *delivered, *again)
	}
}

// countBeside counts, until the test ends, the files read beside their
// claim that were delivered and those read again.
func countBeside(t *testing.T) (delivered, again *int) {
	delivered, again = new(int), new(int)
	prev := besideUsed
	t.Cleanup(func() { besideUsed = prev })
	besideUsed = func(ok bool) {
		if ok {
			*delivered++
		} else {
			*again++
		}
	}
	return delivered, again
}

// onceBeforeClaim runs fn in the first claim's transaction (beforeClaim),
// until the test ends.
func onceBeforeClaim(t *testing.T, fn func(ctx context.Context)) {
	prev := beforeClaim
	t.Cleanup(func() { beforeClaim = prev })
	var done bool
	beforeClaim = func(ctx context.Context) {
		if !done {
			done = true
			fn(ctx)
		}
	}
}

// itemsBeside is a fixture with vendor V1 and the items of rows (item,
// description, vendor, sku, price), and the counts of countBeside.
func itemsBeside(t *testing.T, rows string) (f *fixture, delivered, again *int) {
	delivered, again = countBeside(t)
	f = newFixture(t)
	f.load("vendors", catalog.ModeDelta, "vendor,name\nV1,One\n")
	f.load("items", catalog.ModeDelta, "item,description,vendor,sku,price\n"+rows)
	return f, delivered, again
}

// readAgain exports the items of f as CSV in one file, which must have
// been read again after its claim, not taken from the reader beside it;
// it returns the run's result and the file.
func readAgain(t *testing.T, f *fixture, delivered, again *int) (*Result, []byte) {
	t.Helper()
	o := f.opts()
	o.Format = "csv"
	res, err := Run(context.Background(), f.d, "items", o)
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	if *delivered != 0 || *again != 1 {
		t.Errorf("read beside: %d delivered, %d read again; want the file read again", *delivered, *again)
	}
	b, err := os.ReadFile(res.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// TestReadBesideChangedSinceSnapshot: on PostgreSQL a load that changes an
// item and folds into its trigger after the snapshot the reader reads in,
// before the claim takes the trigger, fails that claim (REPEATABLE READ);
// the file is claimed again and read after the claim, with the change.
// Read in the snapshot, the file would carry the item as it was, and the
// change, folded into a trigger the file took, would never go out.
func TestReadBesideChangedSinceSnapshot(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("on SQLite no writer commits while the claim's transaction is open")
	}
	f, delivered, again := itemsBeside(t, "I1,Mug,V1,S1,1.00\nI2,Cap,V1,S1,2.00\n")
	onceBeforeClaim(t, func(context.Context) {
		f.load("items", catalog.ModeDelta, "item,description,vendor,sku,price\nI1,Jug,V1,S1,1.00\n")
	})
	o := f.opts()
	o.Format = "csv"
	res, err := Run(context.Background(), f.d, "items", o)
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	b, err := os.ReadFile(res.Files[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "I1,Jug") || strings.Contains(string(b), "Mug") || !strings.Contains(string(b), "I2,Cap") {
		t.Errorf("the file has not the items as changed:\n%s", b)
	}
	if *delivered != 0 || *again != 0 {
		t.Errorf("read beside: %d delivered, %d read again; want none (claimed again without a reader)", *delivered, *again)
	}
	f.want("triggers", f.rows(`SELECT record_key, capture, status FROM triggers WHERE file_code = 'SKU' ORDER BY record_key`),
		"I1|A|processed", "I2|A|processed")
	f.want("temporary files", strayTemps(t, filepath.Dir(res.Files[0].Path)))
}

// TestReadBesideSkipsLocked: on PostgreSQL the claim passes over a
// trigger another transaction holds, which the reader's snapshot holds as
// ready: the file is read again after the claim, without that record,
// which the next file takes.
func TestReadBesideSkipsLocked(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SKIP LOCKED is PostgreSQL's")
	}
	f, delivered, again := itemsBeside(t, "I1,Mug,V1,S1,1.00\nI1,Mug,V1,S2,1.50\nI2,Cap,V1,S1,2.00\n")
	ctx := context.Background()
	// I1's S2 trigger: the item goes out with S1's trigger only.
	_, release := dbtest.Hold(t, f.d, `SELECT id FROM triggers WHERE record_key = 'I1' AND sub_key = 'S2' FOR UPDATE`)
	res, b := readAgain(t, f, delivered, again)
	if res.Files[0].Triggers != 2 {
		t.Errorf("the file claimed %d triggers, want 2", res.Files[0].Triggers)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// The header, I1's two SKUs (S2 sent unchanged along with S1, the
	// item's action C) and I2.
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "A,I1,Mug,,V1,,S1,") || !strings.HasPrefix(lines[2], "C,I1,Mug,,V1,,S2,") || !strings.HasPrefix(lines[3], "A,I2,") {
		t.Errorf("file:\n%s", b)
	}
	release()
	res, err := Run(ctx, f.d, "items", f.opts())
	if err != nil || len(res.Files) != 1 || res.Files[0].Triggers != 1 {
		t.Fatalf("second Run: %+v, %v", res, err)
	}
	f.want("temporary files", strayTemps(t, filepath.Dir(res.Files[0].Path)))
}

// strayTemps lists the temporary files left in dir.
func strayTemps(t *testing.T, dir string) []string {
	t.Helper()
	temps, err := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	return temps
}

// stripCreated blanks the created attribute of an XML envelope.
func stripCreated(s string) string {
	i := strings.Index(s, `created="`)
	if i < 0 {
		return s
	}
	j := strings.IndexByte(s[i+9:], '"')
	return s[:i+9] + s[i+9+j:]
}

// TestRemoveStrays: a temporary file of the kind that no file of the
// ledger names, left by a reader beside a claim that never committed (the
// run killed during its claim), goes at the next run; one the ledger
// names stays for recovery, and other kinds' files stay.
func TestRemoveStrays(t *testing.T) {
	f := newFixture(t)
	f.load("vendors", catalog.ModeDelta, "vendor,name\nV1,One\n")
	o := f.opts()
	dir := filepath.Join(f.outbox(), "vendors")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, ".vendors_20260101T000000Z_000001.xml.tmp")
	other := filepath.Join(dir, ".items_20260101T000000Z_000001.xml.tmp")
	for _, p := range []string{stray, other} {
		if err := os.WriteFile(p, []byte("<Message"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(context.Background(), f.d, "vendors", o)
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Errorf("the stray temporary file is still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another kind's temporary file went: %v", err)
	}
}

// TestReadBesideSameCountOtherSet: on PostgreSQL the claim passes over a
// trigger another transaction holds (I2's), and a claimed SKU trigger's
// SKU is gone without a tombstone (I1/S2): the reader finds two SKUs with
// a trigger (I1/S1, I2/S1) and the claim takes two triggers (I1/S1,
// I1/S2). The same number of another set: the file is read again after
// the claim, without I2 (which the next file sends once), and I1/S2 is
// put in error as a record not found. Compared by the SKUs found alone,
// the reader's file went out with I2 in it and I1/S2 stayed processed.
func TestReadBesideSameCountOtherSet(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SKIP LOCKED is PostgreSQL's")
	}
	f, delivered, again := itemsBeside(t, "I1,Mug,V1,S1,1.00\nI1,Mug,V1,S2,1.50\nI2,Cap,V1,S1,2.00\n")
	ctx := context.Background()
	if _, err := f.d.ExecContext(ctx, `DELETE FROM skus WHERE item = 'I1' AND sku = 'S2'`); err != nil {
		t.Fatal(err)
	}
	_, release := dbtest.Hold(t, f.d, `SELECT id FROM triggers WHERE record_key = 'I2' FOR UPDATE`)
	_, b := readAgain(t, f, delivered, again)
	if strings.Contains(string(b), "I2") {
		t.Errorf("the file has I2, which the claim did not take:\n%s", b)
	}
	release()
	f.want("triggers", f.rows(`SELECT record_key, sub_key, status FROM triggers WHERE file_code = 'SKU' ORDER BY record_key, sub_key`),
		"I1|S1|processed", "I1|S2|error", "I2|S1|ready")
}
