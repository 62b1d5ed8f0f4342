package catalog_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// writeStockAsWriter does on conn, in its open transaction, what every
// writer of stock rows (an import, an order) does: it takes the change
// number, then writes the rows, stamped with it. Its own triggers are
// left out: the tests look at the load's.
func writeStockAsWriter(ctx context.Context, conn *sql.Conn, writes ...string) error {
	seq, err := catalog.NextChangeSeq(ctx, conn)
	if err != nil {
		return err
	}
	for _, w := range writes {
		if _, err := conn.ExecContext(ctx, w, seq, db.Now()); err != nil {
			return err
		}
	}
	return nil
}

// The other host's writes: IT1's available 20 over a threshold of 10
// goes down to 5, IT2's 5 up to 6, IT4's 2 up to 3, and IT3 gets its
// first stock row, in a warehouse of its own.
var (
	stockChanges = `UPDATE inventory SET on_hand = CASE item WHEN 'IT1' THEN 5 WHEN 'IT2' THEN 6 ELSE 3 END, change_seq = ?1, updated_at = ?2
WHERE item IN ('IT1', 'IT2', 'IT4')`
	stockArrives = `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, change_seq, updated_at)
VALUES ('IT3', '', 'WH2', '', 4, 0, ?1, ?2)`
)

// stockFixture has IT1 at 20 over a threshold of 10, IT2 at 5 and IT4 at
// 2 in WH1, their triggers sent.
func stockFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.delta("warehouses", warehousesFile)
	f.delta("items", "item,sku,description\nIT1,,Shirt\nIT2,,Skirt\nIT3,,Scarf\nIT4,,Socks\n")
	f.delta("inventory", inventoryHead+"IT1,,WH1,,20,0,10\nIT2,,WH1,,5,0,\nIT4,,WH1,,2,0,\n")
	f.markSent()
	return f
}

func (f *fixture) stockRows() []string {
	return f.strings(`SELECT item || '/' || warehouse || ' ' || on_hand FROM inventory ORDER BY item, warehouse`)
}

// TestInventoryLoadAfterStockWriter: an inventory load on PostgreSQL
// that starts while an import or an order on another host writes stock
// waits for it, and then loads the whole file onto the stock that writer
// left, as on SQLite when the writer comes first: IT1, which the file
// gives as the load found it (20), goes back to 20 from the writer's 5,
// with its ITW trigger (back over the threshold); IT2 gets the file's 7
// over the writer's 6; IT4 is unchanged, the writer having set the file's
// 3; a full load zeroes the row the writer added.
// Compared with the stock before it waited for the writer's change
// number, the load took IT1 for unchanged and left it at the writer's 5
// (as if the load came first), with no trigger, but wrote IT2 and zeroed
// IT3 over the writer's (as if the writer came first): neither order.
func TestInventoryLoadAfterStockWriter(t *testing.T) {
	dbtest.WritersAtOnce(t)
	for _, tt := range []struct {
		mode    string
		counts  counts
		stock   []string
		pending []string
	}{
		{catalog.ModeDelta, counts{Changed: 2, Unchanged: 1, Triggers: 2},
			[]string{"IT1/WH1 20", "IT2/WH1 7", "IT3/WH2 4", "IT4/WH1 3"}, []string{"IT1/ C", "IT2/ C"}},
		{catalog.ModeFull, counts{Changed: 2, Deleted: 1, Unchanged: 1, Triggers: 3},
			[]string{"IT1/WH1 20", "IT2/WH1 7", "IT3/WH2 0", "IT4/WH1 3"}, []string{"IT1/ C", "IT2/ C", "IT3/ C"}},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			f := stockFixture(t)
			other, release := dbtest.Hold(t, f.d, `SELECT 1`)
			if err := writeStockAsWriter(context.Background(), other, stockChanges, stockArrives); err != nil {
				t.Fatal(err)
			}
			done := f.loadElsewhere("inventory", inventoryHead+"IT1,,WH1,,20,0,\nIT2,,WH1,,7,0,\nIT4,,WH1,,3,0,\n", catalog.Options{Mode: tt.mode})
			f.waitBlocked(done)
			if got := countsOf(f.finish(other, release, done)); got != tt.counts {
				t.Errorf("counts = %+v, want %+v", got, tt.counts)
			}
			equal(t, "stock", f.stockRows(), tt.stock)
			equal(t, "pending ITW triggers", f.pending("ITW"), tt.pending)
		})
	}
}

// TestStockArrivesDuringFullLoad: a stock row an import or an order on
// another host adds while a full inventory load runs waits for the load
// and stays as the writer wrote it, as on SQLite when the load comes
// first: the load neither zeroes it nor meets it on its insert. The
// writer waits for the load's change number, which the load holds from
// before its first read of the stock until it commits.
func TestStockArrivesDuringFullLoad(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	f := stockFixture(t)
	path := filepath.Join(f.dir, "full.csv")
	if err := os.WriteFile(path, []byte(inventoryHead+"IT1,,WH1,,20,0,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var res *catalog.Result
	// The load waits on IT2, a row it zeroes, which the test holds.
	loadErr, writeErr := dbtest.InTurn(t, f.d, `SELECT 1 FROM inventory WHERE item = 'IT2' FOR UPDATE`,
		func(host *db.DB) (err error) {
			res, err = catalog.Load(ctx, host, "inventory", path, catalog.Options{Mode: catalog.ModeFull})
			return err
		},
		func(host *db.DB) error {
			conn, err := host.Conn(ctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			return db.WithTx(ctx, conn, true, func() error { return writeStockAsWriter(ctx, conn, stockArrives) })
		})
	if loadErr != nil || writeErr != nil {
		t.Fatalf("load: %v; writer: %v", loadErr, writeErr)
	}
	if res.Deleted != 2 {
		t.Errorf("deleted %d, want 2 (IT2, IT4)", res.Deleted)
	}
	equal(t, "stock", f.stockRows(), []string{"IT1/WH1 20", "IT2/WH1 0", "IT3/WH2 4", "IT4/WH1 0"})
	equal(t, "pending ITW triggers", f.pending("ITW"), []string{"IT2/ C", "IT4/ C"})
}
