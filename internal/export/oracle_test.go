package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
)

func TestCheckFraming(t *testing.T) {
	for _, c := range []struct {
		framing string
		perMsg  bool
		err     string
	}{
		{"", false, ""},
		{FramingBatch, false, ""},
		{FramingOracle, false, ""},
		{FramingOracle, true, ""},
		{"", true, "goes with the oracle framing"},
		{FramingBatch, true, "goes with the oracle framing"},
		{"Oracle", false, `unknown framing "Oracle"`},
	} {
		o := Options{Framing: c.framing, FilePerMessage: c.perMsg}
		err := o.checkFraming()
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("framing %q, file per message %v: %v, want %q", c.framing, c.perMsg, err, c.err)
		}
	}
}

// TestFilePerMessageWriteFails: with a file per message every record is an
// export file of its own, so a write that fails on the second file keeps
// the first delivered, gives only the second's trigger back, and the next
// run sends the rest under the next numbers: every vendor in exactly one
// complete file.
func TestFilePerMessageWriteFails(t *testing.T) {
	f := newFixture(t)
	f.load("vendors", catalog.ModeDelta, "vendor,name\nV1,One\nV2,Two\nV3,Three\n")
	ctx := context.Background()
	o := f.opts()
	o.Framing, o.FilePerMessage = FramingOracle, true
	o.create = failingCreate(2, 10)
	res, err := Run(ctx, f.d, "vendors", o)
	if !errors.Is(err, errDiskFull) || len(res.Files) != 1 {
		t.Fatalf("Run: %+v, %v; want one file delivered, then the disk-full error", res, err)
	}
	f.want("files", f.rows(`SELECT sequence, status, records FROM files WHERE direction = 'out' ORDER BY id`),
		"1|complete|1", "2|abandoned|0")
	f.want("triggers", f.rows(`SELECT record_key, shown FROM `+shownTriggers+` ORDER BY record_key`),
		"V1|processed", "V2|ready", "V3|ready")
	o.create = nil
	if res, err = Run(ctx, f.d, "vendors", o); err != nil || len(res.Files) != 2 {
		t.Fatalf("the next run: %+v, %v; want two files", res, err)
	}
	f.want("files", f.rows(`SELECT sequence, status, records FROM files WHERE direction = 'out' AND status = 'complete' ORDER BY id`),
		"1|complete|1", "3|complete|1", "4|complete|1")
	f.want("each vendor in its own complete file", f.rows(`SELECT t.record_key, f.sequence FROM triggers t JOIN files f ON f.id = t.file_id
WHERE f.status = 'complete' ORDER BY t.record_key`), "V1|1", "V2|3", "V3|4")
	for _, p := range f.rows(`SELECT path FROM files WHERE direction = 'out' AND status = 'complete' ORDER BY id`) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); strings.Count(s, "<Message ") != 1 || !strings.Contains(s, `<Message source="POSBRIDGE" target="POS" type="CWVendorOut">`) {
			t.Errorf("%s is not one Oracle-framed message:\n%s", filepath.Base(p), s)
		}
	}
}

// TestMassFilePerMessage: the mass download writes one file per customer
// of the classes, in customer order; a failure on one leaves the ones
// before it delivered.
func TestMassFilePerMessage(t *testing.T) {
	f := newFixture(t)
	f.load("customers", catalog.ModeDelta, "customer,customer_class,last_name\nC1,RT,One\nC2,RT,Two\nC3,WH,Three\nC4,RT,Four\n")
	o := f.opts()
	o.Dir = filepath.Join(f.outbox(), "mass")
	o.Classes = []string{"RT"}
	o.Framing, o.FilePerMessage = FramingOracle, true
	o.create = failingCreate(3, 10)
	if _, err := MassCustomers(context.Background(), f.d, o); !errors.Is(err, errDiskFull) {
		t.Fatalf("MassCustomers: %v, want the disk-full error", err)
	}
	f.want("files", f.rows(`SELECT sequence, status, records FROM files WHERE direction = 'out' ORDER BY id`),
		"1|complete|1", "2|complete|1", "3|abandoned|0")
	o.create = nil
	res, err := MassCustomers(context.Background(), f.d, o)
	if err != nil || len(res.Files) != 3 {
		t.Fatalf("the next run: %+v, %v; want three files", res, err)
	}
	for i, want := range []string{`customer_number="C1"`, `customer_number="C2"`, `customer_number="C4"`} {
		b, err := os.ReadFile(res.Files[i].Path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), want) || strings.Count(string(b), "<Customer ") != 1 {
			t.Errorf("file %d: want one customer with %s:\n%s", i+1, want, b)
		}
	}
}
