package orders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// FuzzOrders feeds GoFrugal order files to import orders, each on a fresh
// copy of a small state (one SKU, 5 on hand). Whatever the input: no
// panic, and a failure is a failed file (imports.ErrFile,
// or fsx.ErrEncoding for a file in another encoding than UTF-8); a file with no
// order applied leaves the state as it was; every order kept holds text
// that passes format.CheckText, customers the order made fit the
// customer export's schema, stock and totals are in their ranges; and the
// same file imported again finds every order it applied unchanged (what
// is kept is what was read), unless the file gives an order twice.
//
//	go test ./internal/orders -run '^$' -fuzz '^FuzzOrders$' -fuzztime 30s
func FuzzOrders(f *testing.F) {
	addBad(f, "orders-*")
	for _, s := range []string{
		`{"onlineReferenceNo": "W1", "createdAt": "2026-03-01 10:00:00", "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": 2}]}`,
		`{"salesOrder": {"onlineReferenceNo": 5, "createdAt": "2026-03-01 10:00:00", "status": "delivered", "customerName": "Ana Lima", "customerMobile": "555", "customerCountry": "US", "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": "2.0", "salePrice": "9.99", "discountPercentage": 10}]}}`,
		`{"salesOrders": [{"onlineReferenceNo": "A", "createdAt": "2026-03-01", "orderItems": [{"itemReferenceCode": "111", "quantity": 9}]}, {"onlineReferenceNo": "A", "createdAt": "2026-03-01", "status": "cancelled", "orderItems": [{"itemReferenceCode": "111", "quantity": 1}]}]}`,
		"{\"onlineReferenceNo\": \"W\xff\", \"createdAt\": \"2026-03-01 10:00:00\", \"orderItems\": [{\"itemReferenceCode\": \"111\", \"quantity\": 1, \"QUANTITY\": 2}]}",
		`[{"onlineReferenceNo": "N", "createdAt": "2026-03-01 10:00:00", "customerName": "a\u0000", "orderItems": [{"itemReferenceCode": "111", "quantity": 999999999}]}]`,
	} {
		f.Add([]byte(s))
	}
	fresh := template(f)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		d := fresh(t)
		path := filepath.Join(t.TempDir(), "o.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := dump(t, d)
		res, first, err := Import(ctx, d, p, path, imports.Options{MaxFieldLength: 1000})
		if err != nil {
			if !errors.Is(err, imports.ErrFile) && !errors.Is(err, fsx.ErrEncoding) {
				t.Fatalf("import failed, not as a file: %v", err)
			}
			if got := dump(t, d); got != before {
				t.Fatalf("a failed file changed the state:\n%s\nwas\n%s", got, before)
			}
			return
		}
		if res.Applied == 0 {
			if got := dump(t, d); got != before {
				t.Fatalf("no order applied, yet the state changed:\n%s\nwas\n%s", got, before)
			}
			return
		}
		checkKept(t, d)
		if first.Updated > 0 {
			return // a key given twice: the later one wins, again on every import
		}
		after := dump(t, d)
		_, st, err := Import(ctx, d, p, path, imports.Options{MaxFieldLength: 1000, Force: true})
		if err != nil {
			t.Fatalf("the same file again: %v", err)
		}
		if st.Added != 0 || st.Updated != 0 {
			t.Fatalf("the same file again added %d and updated %d orders: what was kept is not what was read", st.Added, st.Updated)
		}
		if got := dump(t, d); got != after {
			t.Fatalf("the same file again changed the state:\n%s\nwas\n%s", got, after)
		}
	})
}

// checkKept checks what the orders left in the state.
func checkKept(t *testing.T, d *db.DB) {
	t.Helper()
	texts := map[string]string{
		"orders": `SELECT external_key, channel, customer, payment_method, customer_name, customer_mobile, customer_email, ship_name,
  ship_address1, ship_address2, ship_city, ship_state, ship_country, ship_zip, ship_phone, ship_email, source FROM orders`,
		"order_lines": `SELECT item, sku, ref_code, location FROM order_lines`,
	}
	for table, q := range texts {
		eachRow(t, d, q, func(vals []string) {
			for _, v := range vals {
				if err := format.CheckText(v, 0); err != nil {
					t.Fatalf("%s keeps %q, which %v", table, v, err)
				}
			}
		})
	}
	eachRow(t, d, `SELECT customer, first_name, last_name, address1, address2, city, state, postal_code, country, email, phone
FROM customers WHERE customer LIKE 'W%'`, func(vals []string) {
		for i, col := range []string{"first_name", "last_name", "address1", "address2", "city", "state", "postal_code", "country", "email", "phone"} {
			if err := format.CheckText(vals[i+1], customerMax[col]); err != nil {
				t.Fatalf("customer %s: %s %q %v (docs/schemas/customers.xsd)", vals[0], col, vals[i+1], err)
			}
		}
	})
	var bad int
	err := d.QueryRowContext(context.Background(), `SELECT
  (SELECT count(*) FROM inventory WHERE abs(on_hand) > ?1 OR abs(reserved) > ?1) +
  (SELECT count(*) FROM orders WHERE abs(total_quantity) > ?1 OR abs(total_amount) > ?2 OR abs(total_tax) > ?2
     OR abs(total_discount) > ?2 OR abs(shipping_charge) > ?2) +
  (SELECT count(*) FROM order_lines WHERE ordered <= 0 OR ordered > ?1 OR abs(sale_price) > ?2 OR abs(item_amount) > ?2
     OR tax_percent NOT BETWEEN 0 AND 1000000 OR discount_percent NOT BETWEEN 0 AND 1000000)`,
		format.MaxQuantity, format.MaxAmount).Scan(&bad)
	if err != nil || bad != 0 {
		t.Fatalf("%d numbers out of their ranges (%v)", bad, err)
	}
}

// fuzzTables are the tables an order import may change.
var fuzzTables = []string{"orders", "order_lines", "inventory", "customers", "order_messages", "triggers", "sequences"}

// dump is the content of fuzzTables, to compare states.
func dump(t *testing.T, d *db.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range fuzzTables {
		var rows []string
		eachRow(t, d, `SELECT * FROM `+table, func(vals []string) { rows = append(rows, strings.Join(vals, "|")) })
		sort.Strings(rows)
		fmt.Fprintf(&b, "%s:\n%s\n", table, strings.Join(rows, "\n"))
	}
	return b.String()
}

// eachRow calls fn with the columns of each row of q as text.
func eachRow(t *testing.T, d *db.DB, q string, fn func([]string)) {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		s := make([]string, len(cols))
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			if v != nil {
				s[i] = fmt.Sprint(v)
			}
		}
		fn(s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// template makes the state of seed once and returns a function that gives
// each fuzz input a fresh copy of it.
func template(f *testing.F) func(t *testing.T) *db.DB {
	dir := f.TempDir()
	path := filepath.Join(dir, "template.db")
	d, err := db.Open(context.Background(), path, db.Options{Create: true})
	if err != nil {
		f.Fatal(err)
	}
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Store', '` + now + `', '` + now + `')`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Jacket', '` + now + `', '` + now + `')`,
		`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'RED S', '111', '` + now + `', '` + now + `')`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'S01', 'A1', 5, 0, '` + now + `')`,
	} {
		if _, err := d.ExecContext(context.Background(), q); err != nil {
			f.Fatalf("%s: %v", q, err)
		}
	}
	if err := d.Close(); err != nil {
		f.Fatal(err)
	}
	image, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return func(t *testing.T) *db.DB {
		p := filepath.Join(t.TempDir(), "posbridge.db")
		if err := os.WriteFile(p, image, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := db.Open(context.Background(), p, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
}

// addBad adds the files of testdata/bad that match pattern as seeds.
func addBad(f *testing.F, pattern string) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", pattern))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}
