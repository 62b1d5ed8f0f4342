package orders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// TestShipmentsAtOnce: two orders completed at once on PostgreSQL, 4 and
// 3 from 5 on hand, with negative stock not allowed. Each checks the stock
// its shipment leaves; read unlocked, both saw 5 and the stock went to -2.
// The first ships, and the second is refused against what is left.
func TestShipmentsAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seed(t)
	importOrder(t, d, "W1", 4)
	importOrder(t, d, "W2", 3)
	if oh, r := stockOf(t, d); oh != 5 || r != 7 {
		t.Fatalf("before: on hand %d reserved %d, want 5 7", oh, r)
	}
	first, second := inTurn(t, d,
		func(d *db.DB) error { _, err := Complete(ctx, d, "W1", false); return err },
		func(d *db.DB) error { _, err := Complete(ctx, d, "W2", false); return err })
	if first != nil || !errors.Is(second, ErrRefused) {
		t.Fatalf("complete W1: %v; complete W2: %v; want W1 shipped and W2 refused", first, second)
	}
	if oh, r := stockOf(t, d); oh != 1 || r != 3 {
		t.Errorf("on hand %d reserved %d, want 1 3 (W1's 4 shipped)", oh, r)
	}
}

// TestOrderChangesAtOnce: two changes of one order at once on
// PostgreSQL (two completes, a complete and a cancel) come one after the
// other: the second finds the order no longer open and is refused, as on
// SQLite. Read unlocked, the second complete shipped the order again and
// failed on the check of its lines with a database error (exit 1).
func TestOrderChangesAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	for name, second := range map[string]func(d *db.DB) error{
		"complete twice":      func(d *db.DB) error { _, err := Complete(ctx, d, "W1", false); return err },
		"complete and cancel": func(d *db.DB) error { _, err := Cancel(ctx, d, "W1", 0, 0); return err },
	} {
		t.Run(name, func(t *testing.T) {
			d := seed(t)
			importOrder(t, d, "W1", 2)
			first, second := inTurn(t, d, func(d *db.DB) error { _, err := Complete(ctx, d, "W1", false); return err }, second)
			if first != nil || !errors.Is(second, ErrRefused) {
				t.Fatalf("errors %v, %v; want the first to ship and the second refused", first, second)
			}
			if oh, r := stockOf(t, d); oh != 3 || r != 0 {
				t.Errorf("on hand %d reserved %d, want 3 0 (2 shipped once)", oh, r)
			}
		})
	}
}

// TestResentOrderWhileCompleted: a changed re-send of an order imported
// while the order is being completed on PostgreSQL waits for it, and then
// finds the order completed: only its header is updated, and the stock
// is that of the shipment alone. Read unlocked, the import saw the order
// open and released its reservation again after the shipment had
// (reserved -1, the completed order's line rewritten).
func TestResentOrderWhileCompleted(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seed(t)
	importOrder(t, d, "W1", 2)
	path := orderFile(t, "W1", 1)
	first, second := inTurn(t, d,
		func(d *db.DB) error { _, err := Complete(ctx, d, "W1", false); return err },
		func(d *db.DB) error { _, _, err := Import(ctx, d, shop, path, imports.Options{}); return err })
	if first != nil || second != nil {
		t.Fatalf("complete: %v; import of the re-send: %v", first, second)
	}
	if oh, r := stockOf(t, d); oh != 3 || r != 0 {
		t.Errorf("on hand %d reserved %d, want 3 0 (2 shipped, nothing reserved)", oh, r)
	}
	o, err := Get(ctx, d, "W1")
	if err != nil || o.Status != StatusCompleted || o.Lines[0].Ordered != 2 {
		t.Errorf("order after both: %+v %v, want completed with its 2 shipped", o, err)
	}
}

// inTurn runs first and then second as two hosts (dbtest.InTurn) while
// the test holds seed's stock row.
func inTurn(t *testing.T, d *db.DB, first, second func(*db.DB) error) (error, error) {
	t.Helper()
	return dbtest.InTurn(t, d, `SELECT on_hand FROM inventory WHERE item = 'IT1' AND location = 'A1' FOR UPDATE`, first, second)
}

// shop is the store POS partner of the orders of these tests.
var shop = partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}

// orderFile writes a pending order of qty of seed's SKU.
func orderFile(t *testing.T, code string, qty int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), code+".json")
	body := fmt.Sprintf(`{"onlineReferenceNo": "%s", "createdAt": "2026-03-01 10:00:00", "status": "pending", `+
		`"orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": %d}]}`, code, qty)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// importOrder imports a pending order of qty of seed's SKU.
func importOrder(t *testing.T, d *db.DB, code string, qty int) {
	t.Helper()
	if res, _, err := Import(context.Background(), d, shop, orderFile(t, code, qty), imports.Options{}); err != nil || res.Applied != 1 {
		t.Fatalf("import %s: %+v %v", code, res, err)
	}
}

// TestOrderIntoWarehouseDeletedMeanwhile: an order imported on
// PostgreSQL into a warehouse that a full warehouses load on another host
// is deleting (no stock, no order there yet) waits for the load, and then
// fails busy (exit 75) with nothing applied; the next run finds the
// warehouse gone and says so. Unclassified, the order's foreign key
// failed the file with a database error (exit 1).
func TestOrderIntoWarehouseDeletedMeanwhile(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seed(t)
	if _, err := d.ExecContext(ctx, `INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S09', 'Closed', ?1, ?1)`, db.Now()); err != nil {
		t.Fatal(err)
	}
	closed := shop
	closed.Warehouse = "S09"
	load, release := dbtest.Hold(t, d, `DELETE FROM warehouses WHERE warehouse = 'S09'`)
	done := make(chan error, 1)
	host := dbtest.OpenAgain(t, d)
	go func() {
		_, _, err := Import(ctx, host, closed, orderFile(t, "W9", 1), imports.Options{})
		done <- err
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		release()
		t.Fatalf("%d sessions wait on a lock, want the import waiting for the load (%v)", waiting, <-done)
	}
	if _, err := load.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, db.ErrBusy) {
		t.Fatalf("import into a warehouse deleted meanwhile: %v, want busy (exit 75)", err)
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d orders after the busy import (%v), want none", n, err)
	}
	if _, _, err := Import(ctx, d, closed, orderFile(t, "W9", 1), imports.Options{}); err == nil || errors.Is(err, db.ErrBusy) ||
		!strings.Contains(err.Error(), "warehouse S09 of partners.shop is not loaded") {
		t.Errorf("the next run: %v, want the file refused for its warehouse", err)
	}
}
