package orders

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
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
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
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
	return d
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
	p := config.Partner{Profile: config.ProfileStorePOS, SKUCode: config.SKUCodeUPC, Warehouse: "S01"}
	res, st, err := Import(ctx, d, "shop", p, path, imports.Options{})
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
	if ch, err := Complete(ctx, d, "SO0000001"); err != nil || ch.Quantity != 4 || ch.Order.Status != StatusCompleted {
		t.Fatalf("complete: %+v %v", ch, err)
	}
	if oh, r := stockOf(t, d); oh != 1 || r != 0 {
		t.Fatalf("after complete: on hand %d reserved %d, want 1 0", oh, r)
	}
	var events string
	d.QueryRowContext(ctx, `SELECT group_concat(event_type, ' ') FROM (SELECT event_type FROM order_messages WHERE stream = 'events' ORDER BY id)`).Scan(&events)
	if events != "SUBORDER_CREATE SUBORDER_PARTIAL_CANCEL SUBORDER_COMPLETE" {
		t.Errorf("events: %s", events)
	}
	if _, err := Cancel(ctx, d, "SO0000001", 0, 0); !errors.Is(err, ErrRefused) {
		t.Errorf("cancel of a completed order: %v, want refused", err)
	}
	if _, err := Get(ctx, d, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(NOPE): %v", err)
	}
}
