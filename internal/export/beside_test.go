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

// TestReadBeside: on SQLite each file's records are read by a process of
// their own beside the file's claim, and the files are the same, byte for
// byte, as those read after the claim: items (several files, a limit, a
// SKU deleted after its change, an item gone without a tombstone, whose
// file is read again after the check), vendors, customers, XML and CSV.
func TestReadBeside(t *testing.T) {
	if dbtest.Postgres() {
		t.Skip("PostgreSQL reads after the claim (SKIP LOCKED)")
	}
	var delivered, again int
	defer func(f func(bool)) { besideUsed = f }(besideUsed)
	besideUsed = func(ok bool) {
		if ok {
			delivered++
		} else {
			again++
		}
	}
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
	if delivered+again != 0 {
		t.Fatalf("read beside %d times without ReadBeside", delivered+again)
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
	if delivered != 3 || again != 1 {
		t.Errorf("read beside: %d delivered, %d read again; want 3 delivered (items I1-I2, vendors, customers), 1 read again (items I3-I4, I4 gone)", delivered, again)
	}
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
