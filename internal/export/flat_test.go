package export

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
)

// TestMassCustomersUnitSeparator: a customer record is read as one value,
// its fields joined by the unit separator (US). Values holding one, put in
// behind the loads' back, still go out as they are, and so do the records
// after them, each once and in order.
func TestMassCustomersUnitSeparator(t *testing.T) {
	f := newFixture(t)
	f.load("customers", catalog.ModeDelta, "customer,customer_class,first_name,last_name,city,email_opt_in\n"+
		"C1,RT,Ann,One,Reno,Y\nC2,RT,Bob,Two,Elko,N\nC3,WH,,Three,,Y\nC4,RT,Dee,Four,Ely,N\n")
	if _, err := f.d.ExecContext(context.Background(), `UPDATE customers SET city = ? WHERE customer = ?`, "a\x1fb", "C2"); err != nil {
		t.Fatal(err)
	}
	o := f.opts()
	o.Dir = filepath.Join(f.outbox(), "mass")
	o.Classes = []string{"RT", "WH"}
	o.Format = "csv"
	res, err := MassCustomers(context.Background(), f.d, o)
	if err != nil || len(res.Files) != 1 {
		t.Fatalf("MassCustomers: %+v, %v; want one file", res, err)
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, res.Files[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	got, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{customerAttrs,
		{"A", "C1", "", "RT", "Ann", "One", "", "", "", "Reno", "", "", "", "", "", "Y"},
		{"A", "C2", "", "RT", "Bob", "Two", "", "", "", "a\x1fb", "", "", "", "", "", "N"},
		{"A", "C3", "", "WH", "", "Three", "", "", "", "", "", "", "", "", "", "Y"},
		{"A", "C4", "", "RT", "Dee", "Four", "", "", "", "Ely", "", "", "", "", "", "N"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records:\n%q\nwant\n%q", got, want)
	}
}

// TestMassCustomersOneSnapshot: the count a mass download states and the
// records it writes are read from one state of the database, so that a
// load committing between them changes neither (before, the file failed
// with "wrote 4 records, the claim has 3").
func TestMassCustomersOneSnapshot(t *testing.T) {
	f := newFixture(t)
	f.load("customers", catalog.ModeDelta, "customer,customer_class,last_name\nC1,RT,One\nC2,RT,Two\nC3,RT,Three\n")
	o := f.opts()
	o.Dir = filepath.Join(f.outbox(), "mass")
	o.Classes = []string{"RT"}
	loaded := false
	o.create = func(path string, perm os.FileMode) (io.WriteCloser, error) {
		if !loaded {
			loaded = true
			f.load("customers", catalog.ModeDelta, "customer,customer_class,last_name\nC0,RT,Zero\n")
		}
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	}
	res, err := MassCustomers(context.Background(), f.d, o)
	if err != nil || len(res.Files) != 1 || res.Files[0].Records != 3 {
		t.Fatalf("MassCustomers: %+v, %v; want one file of the 3 customers before the load", res, err)
	}
	b, err := os.ReadFile(filepath.Join(o.Dir, res.Files[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`count="3"`)) || bytes.Contains(b, []byte(`"C0"`)) || !bytes.Contains(b, []byte(`"C3"`)) {
		t.Fatalf("file:\n%s\nwant count 3, C1 to C3 and no C0", b)
	}
	o.create = nil
	res, err = MassCustomers(context.Background(), f.d, o)
	if err != nil || len(res.Files) != 1 || res.Files[0].Records != 4 {
		t.Fatalf("the next run: %+v, %v; want one file of 4 customers", res, err)
	}
}
