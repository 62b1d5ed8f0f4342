package orders

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestInventoryLoadBesideOrder: an inventory load on PostgreSQL takes
// the change number and then locks the stock rows it changes, in key
// order (catalog lockStock); an order ships from a row the load has not
// reached yet. Both end, one after the other. When the order locked its
// stock row first and took the change number after, the two closed a
// cycle the deadlock detector broke: one of them failed with 40P01 (exit
// 75). Here the load is held on the first row (A0) by the test, as a big
// load is held by its own scan, while the order ships from A1.
func TestInventoryLoadBesideOrder(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seed(t)
	if _, err := d.ExecContext(ctx, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at)
VALUES ('IT1', 'RED S', 'S01', 'A0', 1, 0, ?)`, db.Now()); err != nil {
		t.Fatal(err)
	}
	importOrder(t, d, "W1", 2)
	path := filepath.Join(t.TempDir(), "inv.csv")
	if err := os.WriteFile(path, []byte("item,sku,warehouse,location,on_hand\nIT1,RED S,S01,A0,9\nIT1,RED S,S01,A1,20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, release := dbtest.Hold(t, d, `SELECT 1 FROM inventory WHERE location = 'A0' FOR UPDATE`)
	loadErr, orderErr := make(chan error, 1), make(chan error, 1)
	loadHost, orderHost := dbtest.OpenAgain(t, d), dbtest.OpenAgain(t, d)
	go func() {
		_, err := catalog.Load(ctx, loadHost, "inventory", path, catalog.Options{Mode: catalog.ModeDelta})
		loadErr <- err
	}()
	if n := dbtest.LockWaiters(t, d, 1); n != 1 {
		t.Fatalf("%d waiters, want the load waiting on A0", n)
	}
	go func() {
		_, err := Complete(ctx, orderHost, "W1", false)
		orderErr <- err
	}()
	if n := dbtest.LockWaiters(t, d, 2); n != 2 {
		t.Fatalf("%d waiters, want the order waiting too", n)
	}
	release()
	if err := <-loadErr; err != nil {
		t.Errorf("inventory load: %v", err)
	}
	if err := <-orderErr; err != nil {
		t.Errorf("complete W1: %v", err)
	}
}
