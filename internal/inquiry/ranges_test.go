package inquiry

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/format"
)

// Stock summed over locations and warehouses stays within the range of
// quantities, and a sum beyond it is an error naming the SKU, not a
// wrapped number or SQLite's "integer overflow".
func TestInventorySumsInRange(t *testing.T) {
	d := demoDB(t)
	// IT0000001 ORG-11 has no stock in the demo data.
	exec(t, d, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES
  ('IT0000001', 'ORG-11', 'DC1', 'A', 600000000, 0, '2026-01-01T00:00:00Z'),
  ('IT0000001', 'ORG-11', 'DC1', 'B', 400000000, 1000000000, '2026-01-01T00:00:00Z')`)
	q := InventoryQuery{Item: "IT0000001", SKU: "ORG-11"}
	r, err := Inventory(context.Background(), d, q)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IT0000001/ORG-11 DC1:1000000000/1000000000/0/0 =1000000000/1000000000/0/0"}
	if got := stockLines(r); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, tc := range []struct{ name, sql, want string }{
		{"warehouse sum beyond", `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at)
VALUES ('IT0000001', 'ORG-11', 'DC1', 'C', 1, 0, '2026-01-01T00:00:00Z')`,
			"inventory inquiry: stock of IT0000001/ORG-11 in DC1: on_hand: out of range: 1000000001 is beyond ±1000000000"},
		{"total beyond", `UPDATE inventory SET warehouse = 'DC2' WHERE item = 'IT0000001' AND sku = 'ORG-11' AND location = 'C'`,
			"inventory inquiry: stock of IT0000001/ORG-11: on_hand: out of range: 1000000001 is beyond ±1000000000"},
		{"stored beyond", `UPDATE inventory SET on_hand = 9223372036854775807 WHERE item = 'IT0000001' AND sku = 'ORG-11' AND location = 'C'`,
			"inventory inquiry: stock of IT0000001/ORG-11 in DC2: on_hand: out of range: 9223372036854775807 is beyond ±1000000000"},
	} {
		exec(t, d, tc.sql)
		_, err := Inventory(context.Background(), d, q)
		if !errors.Is(err, format.ErrRange) || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Counts of request files: a number beyond every range is out of the
// count's range, not "not a whole number"; text is not a number.
func TestIntAttr(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int
		err  string
	}{
		{"", 0, ""},
		{" 7 ", 7, ""},
		{"1000", 1000, ""},
		{"-3", -3, ""}, // the query says "limit -3: want 1 to 1000"
		{"1001", 0, `attribute limit: "1001": want 1 to 1000`},
		{"99999999999999999999", 0, `attribute limit: "99999999999999999999": want 1 to 1000`},
		{"-99999999999999999999", 0, `attribute limit: "-99999999999999999999": want 1 to 1000`},
		{"ten", 0, `attribute limit: "ten" is not a whole number`},
		{"1.5", 0, `attribute limit: "1.5" is not a whole number`},
	} {
		n, err := intAttr("limit", tc.v, MaxLimit)
		switch {
		case tc.err == "" && (err != nil || n != tc.want):
			t.Errorf("%q: %d, %v; want %d", tc.v, n, err, tc.want)
		case tc.err != "" && (err == nil || err.Error() != tc.err || !errors.Is(err, ErrQuery)):
			t.Errorf("%q: %v, want %q", tc.v, err, tc.err)
		}
	}
}

// An order's totals in a history stay within the range of amounts: two
// invoices of one order whose sum leaves it fail the inquiry, naming the
// order.
func TestHistoryTotalsInRange(t *testing.T) {
	d := demoDB(t)
	exec(t, d, `INSERT INTO invoices(invoice, order_no, customer, invoice_type, invoice_date, created_at, updated_at) VALUES
  ('90001', '90000', '100010', 'I', '2026-03-01', '2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z'),
  ('90002', '90000', '100010', 'I', '2026-03-02', '2026-03-01T00:00:00Z', '2026-03-01T00:00:00Z')`)
	exec(t, d, `INSERT INTO invoice_lines(invoice, line_no, item, sku, quantity, unit_price) VALUES
  ('90001', 1, 'IT0000001', 'BLK-8', 1, 999999999999999),
  ('90002', 1, 'IT0000001', 'BLK-8', 1, 1)`)
	_, err := History(context.Background(), d, HistoryQuery{Customer: "100010", Order: "90000"})
	if !errors.Is(err, format.ErrRange) || !strings.Contains(err.Error(), "order history: order 90000: merchandise total: out of range: 100000000000.00 is beyond ±99999999999.9999") {
		t.Errorf("History: %v", err)
	}
	exec(t, d, `UPDATE invoice_lines SET quantity = 1000000000 WHERE invoice = '90002'`)
	exec(t, d, `UPDATE invoice_lines SET unit_price = 1000000 WHERE invoice = '90002'`)
	_, err = History(context.Background(), d, HistoryQuery{Customer: "100010", Order: "90000"})
	if !errors.Is(err, format.ErrRange) || !strings.Contains(err.Error(), "order history: invoice 90002 line 1: extended price") {
		t.Errorf("History: %v", err)
	}
}
