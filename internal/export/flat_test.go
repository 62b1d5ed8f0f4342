package export

import (
	"bytes"
	"context"
	"encoding/csv"
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
