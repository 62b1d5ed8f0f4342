package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

func TestParseTime(t *testing.T) {
	for in, want := range map[string]string{
		"2026-03-01 10:15:00":           "2026-03-01T10:15:00Z",
		"2026-03-01T10:15:00Z":          "2026-03-01T10:15:00Z",
		"2020-10-16T20:22:28.000+00:00": "2020-10-16T20:22:28Z",
		"2026-03-01T11:00:00.000+01:00": "2026-03-01T10:00:00Z",
		"23-08-2023T12:07:18":           "2023-08-23T12:07:18Z",
		"2026-03-01T10:15:00":           "2026-03-01T10:15:00Z",
		"2026-03-01":                    "2026-03-01T00:00:00Z",
		"2013-11-22 13: 00: 00":         "2013-11-22T13:00:00Z", // GoFrugal's own sample
	} {
		got, err := ParseTime(in)
		if err != nil || got != want {
			t.Errorf("ParseTime(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2026-13-45 99:00:00", "01/02"} {
		if got, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) = %q, want an error", bad, got)
		}
	}
}

func TestSplitName(t *testing.T) {
	for in, want := range map[string][2]string{"Ana Maria Lima": {"Ana Maria", "Lima"}, "Cher": {"", "Cher"}, " ": {"", "(online customer)"}} {
		if f, l := splitName(in); f != want[0] || l != want[1] {
			t.Errorf("splitName(%q) = %q, %q; want %q", in, f, l, want)
		}
	}
}

// seed is a state with one SKU and 5 on hand in S01.
func seed(t *testing.T) *db.DB {
	t.Helper()
	d := dbtest.Open(t)
	seedRows(t, d)
	return d
}

// seedRows puts seed's state into d.
func seedRows(t *testing.T, d *db.DB) {
	t.Helper()
	ctx := context.Background()
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Store', '` + now + `', '` + now + `')`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Jacket', '` + now + `', '` + now + `')`,
		`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'RED S', '111', '` + now + `', '` + now + `')`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'S01', 'A1', 5, 0, '` + now + `')`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func stockOf(t *testing.T, d *db.DB) (onHand, reserved int64) {
	t.Helper()
	if err := d.QueryRowContext(context.Background(), `SELECT on_hand, reserved FROM inventory WHERE item = 'IT1' AND location = 'A1'`).Scan(&onHand, &reserved); err != nil {
		t.Fatal(err)
	}
	return
}

// TestReserveCancelComplete follows an order from import (by UPC) through
// a partial cancel, a refused cancel and complete, checking the stock and
// the events at each step.
func TestReserveCancelComplete(t *testing.T) {
	ctx := context.Background()
	d := seed(t)
	path := filepath.Join(t.TempDir(), "o.json")
	os.WriteFile(path, []byte(`{"ONLINEREFERENCENO": "W1", "CreatedAt": "2026-03-01 10:00:00",
	  "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": 7}]}`), 0o644)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	res, st, err := Import(ctx, d, p, path, imports.Options{})
	if err != nil || res.Applied != 1 || st.Added != 1 || st.Short != 1 {
		t.Fatalf("import: %+v %+v %v", res, st, err)
	}
	if oh, r := stockOf(t, d); oh != 5 || r != 7 {
		t.Fatalf("after import: on hand %d reserved %d, want 5 7", oh, r)
	}
	o, err := Get(ctx, d, "W1")
	if err != nil || o.Code != "SO0000001" || o.Short != 2 || o.OrderTime != "2026-03-01T10:00:00Z" {
		t.Fatalf("Get: %+v %v", o, err)
	}
	if _, err := Cancel(ctx, d, "SO0000001", 1, 8); !errors.Is(err, ErrRefused) {
		t.Fatalf("cancel 8 of 7: %v, want refused", err)
	}
	if ch, err := Cancel(ctx, d, "SO0000001", 1, 3); err != nil || ch.Event != EventPartialCancel {
		t.Fatalf("cancel 3: %+v %v", ch, err)
	}
	if oh, r := stockOf(t, d); oh != 5 || r != 4 {
		t.Fatalf("after cancel: on hand %d reserved %d, want 5 4", oh, r)
	}
	if ch, err := Complete(ctx, d, "SO0000001", false); err != nil || ch.Quantity != 4 || ch.Order.Status != StatusCompleted {
		t.Fatalf("complete: %+v %v", ch, err)
	}
	if oh, r := stockOf(t, d); oh != 1 || r != 0 {
		t.Fatalf("after complete: on hand %d reserved %d, want 1 0", oh, r)
	}
	events, err := db.QueryAll(ctx, d, func(s db.Scanner) (e string, err error) { return e, s.Scan(&e) },
		`SELECT event_type FROM order_messages WHERE stream = 'events' ORDER BY id`)
	if err != nil || strings.Join(events, " ") != "SUBORDER_CREATE SUBORDER_PARTIAL_CANCEL SUBORDER_COMPLETE" {
		t.Errorf("events: %s %v", events, err)
	}
	if _, err := Cancel(ctx, d, "SO0000001", 0, 0); !errors.Is(err, ErrRefused) {
		t.Errorf("cancel of a completed order: %v, want refused", err)
	}
	if _, err := Get(ctx, d, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(NOPE): %v", err)
	}
}

// TestDecodeOrder reads GoFrugal's "Create a sales order" body in its
// shapes, and refuses what is not an order, naming the field.
func TestDecodeOrder(t *testing.T) {
	const line = `"orderItems": [{"RowNo": 1, "itemId": 7, "quantity": "2", "salePrice": " 179.00 "}]`
	for _, c := range []struct {
		name, in string
		want     string // the order as kept (MarshalJSON)
		err      string // the reject, with the field after a |
	}{
		{"wrapped", `{"salesOrder": {"onlineReferenceNo": 1, "status": "pending", ` + line + `}}`,
			`{"onlineReferenceNo":1,"status":"pending","orderItems":[{"rowNo":1,"itemId":7,"salePrice":179.00,"quantity":2}]}`, ""},
		{"bare, keys in any case, layout ignored", `{ "OnlineReferenceNo" : "W1",  "CHANNEL": "web", "shippingaddress2": "x", ` + line + `}`,
			`{"onlineReferenceNo":"W1","Channel":"web","ShippingAddress2":"x","orderItems":[{"rowNo":1,"itemId":7,"salePrice":179.00,"quantity":2}]}`, ""},
		{"old shippingCity, documented name wins", `{"shippingCity": "A", "shippingPlace": "B"}`, `{"shippingPlace":"B"}`, ""},
		{"old shippingCity alone", `{"shippingCity": "A", "unknown": {"x": 1}}`, `{"shippingPlace":"A"}`, ""},
		{"wrapper of an array", `{"salesOrder": [{}]}`, "", "salesOrder: want the order object, got an array|salesOrder"},
		{"not an object", `[1]`, "", "not an order: want an order object or {\"salesOrder\": {…}}, got an array|"},
		{"two spellings", `{"status": "pending", "Status": "x"}`, "", `keys "status" and "Status" in the record are one field in two spellings: ambiguous, give it once|status`},
		{"items not an array", `{"orderItems": {"rowNo": 1}}`, "", "orderItems: want an array of order lines, got an object|orderItems"},
		{"item not an object", `{"orderItems": [3]}`, "", "orderItems[0]: want an order line object, got a number|orderItems"},
	} {
		so, err := decodeOrder(json.RawMessage(c.in))
		if c.err != "" {
			var rj *rejectError
			if !errors.As(err, &rj) || rj.msg+"|"+rj.field != c.err {
				t.Errorf("%s: err %v (%+v), want %s", c.name, err, rj, c.err)
			}
			continue
		}
		b, _ := so.MarshalJSON()
		if err != nil || string(b) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, b, err, c.want)
		}
	}
}

// TestRecordTypes: where the pages document a value, an object, array or
// boolean is refused; a number field takes a number or a string holding
// one, and nothing else.
func TestRecordTypes(t *testing.T) {
	r := record{"shippingPincode": json.RawMessage(`{"a":1}`), "customerPincode": json.RawMessage(`97209`),
		"totalAmount": number("totalAmount", json.RawMessage(`"12.50"`)), "shippingCharge": json.RawMessage(`"two"`),
		"userId": json.RawMessage(`true`), "orderRemarks": json.RawMessage(`null`)}
	if _, err := r.text("shippingPincode"); err == nil || err.Error() != "shippingPincode: want a string or a number, got an object" {
		t.Errorf("object: %v", err)
	}
	if _, err := r.text("userId"); err == nil {
		t.Errorf("boolean: no error")
	}
	if v := r.str("customerPincode"); v != "97209" {
		t.Errorf("number as text: %q", v)
	}
	if v, ok := r["orderRemarks"]; !ok || r.str("orderRemarks") != "" {
		t.Errorf("null: %s", v)
	}
	if v, ok, err := r.amount("totalAmount"); err != nil || !ok || v != 125000 || string(r["totalAmount"]) != "12.50" {
		t.Errorf("amount from a string: %d %v %v %s", v, ok, err, r["totalAmount"])
	}
	if _, _, err := r.amount("shippingCharge"); err == nil || !strings.HasPrefix(err.Error(), `shippingCharge "two": want a number`) {
		t.Errorf("word as a number: %v", err)
	}
	if _, ok, err := r.amount("totalTaxAmount"); ok || err != nil {
		t.Errorf("absent: %v %v", ok, err)
	}
}

// TestRetrievedOrder writes the "Retrieve a sales order" body: the order
// as kept, with the status and updatedAt here.
func TestRetrievedOrder(t *testing.T) {
	src := `{"onlineReferenceNo":5,"status":"pending","updatedAt":"2013-11-22 13: 00: 00","orderItems":[{"rowNo":1,"quantity":2}]}`
	b, err := retrievedOrder(src, "5", StatusCancelled, "2026-03-02T09:30:00Z")
	want := `{"onlineReferenceNo":5,"updatedAt":"2026-03-02 09:30:00","status":"cancelled","orderItems":[{"rowNo":1,"quantity":2}]}`
	if err != nil || string(b) != want {
		t.Errorf("got %s, %v; want %s", b, err, want)
	}
	b, err = retrievedOrder("", "W9", StatusOpen, "2026-03-02T09:30:00Z")
	if want := `{"onlineReferenceNo":"W9","updatedAt":"2026-03-02 09:30:00","status":"pending"}`; err != nil || string(b) != want {
		t.Errorf("without a source: %s, %v; want %s", b, err, want)
	}
	for status, want := range map[string]string{StatusOpen: "pending", StatusCompleted: "delivered", StatusCancelled: "cancelled"} {
		if got := WireStatus(status); got != want {
			t.Errorf("WireStatus(%s) = %s, want %s", status, got, want)
		}
	}
}

// TestCustomerLimits holds the limits of the order fields that fill a
// customer to the customer export's schema: a customer an order creates
// must pass it.
func TestCustomerLimits(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "schemas", "customers.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	xsd := string(b)
	for col, n := range customerMax {
		m := regexp.MustCompile(`<xs:attribute name="` + col + `" type="Text(\d+)"`).FindStringSubmatch(xsd)
		if m == nil {
			t.Errorf("customers.xsd has no text attribute %s", col)
			continue
		}
		if m[1] != strconv.Itoa(n) {
			t.Errorf("%s: %d here, %s in customers.xsd", col, n, m[1])
		}
	}
	for field, col := range customerColumns {
		if customerMax[col] == 0 || customerLimit(field) != customerMax[col] {
			t.Errorf("order field %s fills %s, which has no limit", field, col)
		}
	}
}

// TestShortStock: a short order is refused completion where negative stock
// is not allowed, also when it arrives delivered; its short follows the
// stock as it comes, newest order short first; with negative stock allowed
// it completes.
func TestShortStock(t *testing.T) {
	ctx := context.Background()
	d := seed(t)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	imp := func(body string, o imports.Options) *imports.Result {
		t.Helper()
		path := filepath.Join(t.TempDir(), "o.json")
		os.WriteFile(path, []byte(body), 0o644)
		res, _, err := Import(ctx, d, p, path, o)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	order := `{"onlineReferenceNo": "%s", "createdAt": "2026-03-01 10:00:00", "status": "%s", "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": %d}]}`
	imp(fmt.Sprintf(order, "W1", "pending", 4), imports.Options{})
	imp(fmt.Sprintf(order, "W2", "pending", 3), imports.Options{})
	short := func(code string) int64 {
		t.Helper()
		o, err := Get(ctx, d, code)
		if err != nil {
			t.Fatal(err)
		}
		return o.Short
	}
	// 5 on hand, 7 reserved: the newer order is the short one.
	if a, b := short("W1"), short("W2"); a != 0 || b != 2 {
		t.Fatalf("short W1 %d W2 %d, want 0 2", a, b)
	}
	if res := imp(fmt.Sprintf(order, "W3", "delivered", 10), imports.Options{}); res.Rejected != 1 {
		t.Fatalf("a delivered order beyond the stock: %+v, want rejected", res)
	}
	// W2 ships 3 of the 5 on hand; W1's 4 are then not there.
	if _, err := Complete(ctx, d, "W2", false); err != nil {
		t.Fatalf("complete W2: %v", err)
	}
	if a := short("W1"); a != 2 {
		t.Fatalf("short W1 after W2 shipped: %d, want 2", a)
	}
	if _, err := Complete(ctx, d, "W1", false); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "would take on hand below zero") {
		t.Fatalf("complete short W1: %v, want refused", err)
	}
	if oh, r := stockOf(t, d); oh != 2 || r != 4 {
		t.Fatalf("after the refusal: on hand %d reserved %d, want 2 4", oh, r)
	}
	if _, err := d.ExecContext(ctx, `UPDATE inventory SET on_hand = on_hand + 1`); err != nil {
		t.Fatal(err)
	}
	if a := short("W1"); a != 1 {
		t.Fatalf("short W1 after 1 arrived: %d, want 1", a)
	}
	if _, err := Complete(ctx, d, "W1", true); err != nil {
		t.Fatalf("complete W1 with negative stock allowed: %v", err)
	}
	if oh, r := stockOf(t, d); oh != -1 || r != 0 {
		t.Fatalf("after complete: on hand %d reserved %d, want -1 0", oh, r)
	}
}

// TestReserveRange: a reservation that would take reserved beyond its
// range rejects the order, naming the line; nothing is reserved.
func TestReserveRange(t *testing.T) {
	ctx := context.Background()
	d := seed(t)
	if _, err := d.ExecContext(ctx, `UPDATE inventory SET reserved = 999999999`); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "o.json")
	os.WriteFile(path, []byte(`{"onlineReferenceNo": "W1", "createdAt": "2026-03-01 10:00:00", "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": 2}]}`), 0o644)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	res, _, err := Import(ctx, d, p, path, imports.Options{})
	if err != nil || res.Rejected != 1 {
		t.Fatalf("import: %+v %v, want 1 rejected", res, err)
	}
	if _, r := stockOf(t, d); r != 999999999 {
		t.Fatalf("reserved %d, want 999999999", r)
	}
}

// TestShortPerLine: the short of each line as Get reads one order (from
// its lines and the newer ones only) is the same as List reads for all
// orders: per SKU and warehouse, the stock of all its locations, the
// newest lines short first, two lines of one SKU in an order apart.
func TestShortPerLine(t *testing.T) {
	ctx := context.Background()
	d := seed(t)
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S02', 'Outlet', '` + now + `', '` + now + `')`,
		`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'BLK L', '222', '` + now + `', '` + now + `')`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'BLK L', 'S01', 'A1', 2, 0, '` + now + `')`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'BLK L', 'S01', 'B2', 1, 0, '` + now + `')`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'S02', 'A1', 1, 0, '` + now + `')`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	imp := func(warehouse, key string, lines ...string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "o.json")
		os.WriteFile(path, []byte(`{"onlineReferenceNo": "`+key+`", "createdAt": "2026-03-01 10:00:00", "orderItems": [`+strings.Join(lines, ",")+`]}`), 0o644)
		p := partner.Profile{Name: "shop" + warehouse, Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: warehouse}
		if res, _, err := Import(ctx, d, p, path, imports.Options{}); err != nil || res.Applied != 1 {
			t.Fatalf("import %s: %+v %v", key, res, err)
		}
	}
	line := func(no int, upc string, qty int) string {
		return fmt.Sprintf(`{"rowNo": %d, "itemReferenceCode": %q, "quantity": %d}`, no, upc, qty)
	}
	// S01: RED S 5 on hand, 7 reserved; BLK L 3 on hand (two locations),
	// 4 reserved. S02: RED S 1 on hand, 2 reserved.
	imp("S01", "W1", line(1, "111", 3), line(2, "222", 1))
	imp("S01", "W2", line(1, "111", 2), line(2, "111", 2), line(3, "222", 2))
	imp("S01", "W3", line(1, "222", 1))
	imp("S02", "V1", line(1, "111", 2))
	check := func(step string, want map[string][]int64) {
		t.Helper()
		listed := map[string]int64{}
		if err := List(ctx, d, Filter{}, func(o Order) error { listed[o.ExternalKey] = o.Short; return nil }); err != nil {
			t.Fatal(err)
		}
		for key, lines := range want {
			o, err := Get(ctx, d, key)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			var sum int64
			for _, l := range o.Lines {
				got = append(got, l.Short)
				sum += l.Short
			}
			if fmt.Sprint(got) != fmt.Sprint(lines) || o.Short != sum || listed[key] != sum {
				t.Errorf("%s: %s lines short %v (order %d, listed %d), want %v", step, key, got, o.Short, listed[key], lines)
			}
		}
	}
	check("imported", map[string][]int64{"W1": {0, 0}, "W2": {0, 2, 0}, "W3": {1}, "V1": {1}})
	if _, err := Cancel(ctx, d, "W3", 1, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := Cancel(ctx, d, "W2", 2, 1); err != nil {
		t.Fatal(err)
	}
	// RED S in S01: 6 reserved, 1 beyond the stock; BLK L covered.
	check("cancelled", map[string][]int64{"W1": {0, 0}, "W2": {0, 1, 0}, "W3": {0}, "V1": {1}})

	// Reading W2 sums its own open lines and the newer ones of its SKUs
	// (V1's), not W1's: a new order is read without the older ones.
	w2, err := Get(ctx, d, "W2")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := d.QueryRowContext(ctx, lineShort(orderShort)+`SELECT count(*) FROM open_lines`, w2.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("reading W2 looks at %d open lines, want 4 (its 3 and V1's)", n)
	}
}
