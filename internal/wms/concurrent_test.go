package wms

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// TestPOLineAtOnce: the inbound webhook of an article item and the
// purchase order GET that counts it, for one new line, imported on two
// hosts at once on PostgreSQL, in either order. The webhook names no
// warehouse (its units go to the goods owner's S01), the GET names
// store-02 (S02): they change different stock rows. The second finds the
// line written since it read it and fails busy (exit 75) with nothing
// kept; run again, it applies on what the first left, as on SQLite: the
// 2 units end in S02, once. Written unchecked, both found the line new
// and both received the 2 units, 4 in all, and the line kept whichever
// wrote last.
func TestPOLineAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	webhook := inbound(100, 1001, "2.0")
	get := poGet("2.0", "store-02", 1001)
	for _, c := range []struct {
		name          string
		first, second string
		hold          string // the first's stock row, held so that it waits there
	}{
		{"webhook first", webhook, get, "S01' AND location = 'A1"},
		{"GET first", get, webhook, "S02' AND location = 'X"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			if _, err := d.ExecContext(ctx, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at)
VALUES ('IT1', 'RED S', 'S02', 'X', 1, 0, ?)`, db.Now()); err != nil {
				t.Fatal(err)
			}
			again := fileImport(t, ImportReceipts, c.second)
			first, second := dbtest.InTurn(t, d, holdStock(c.hold), fileImport(t, ImportReceipts, c.first), again)
			if first != nil || !errors.Is(second, db.ErrBusy) {
				t.Fatalf("errors %v, %v; want the second busy", first, second)
			}
			if err := again(d); err != nil {
				t.Fatalf("the second again: %v", err)
			}
			if got, want := stock(t, d), "RED S|S01|A1|5;RED S|S01|B1|2;RED S|S02|X|3;"; got != want {
				t.Errorf("stock %s, want %s (the 2 received once, in S02)", got, want)
			}
			var received int64
			var warehouse string
			if err := d.QueryRowContext(ctx, `SELECT received, warehouse FROM wms_po_lines WHERE line_id = 1`).Scan(&received, &warehouse); err != nil ||
				received != 2 || warehouse != "S02" {
				t.Errorf("line 1: received %d in %s (%v), want 2 in S02", received, warehouse, err)
			}
		})
	}
}

// TestCountMeetsStockChange: a stock adjustment of S01 A1 imported while
// a receipt, an inventory transaction import or an order's shipment
// changes the same row on another host, on PostgreSQL. The adjustment
// read the row before the other committed: it fails busy (exit 75) with
// nothing kept, and applies on the stock as it is when run again, its
// history's before and after the row's: no lost update.
func TestCountMeetsStockChange(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	const hold = "S01' AND location = 'A1"
	for _, c := range []struct {
		name  string
		first func(t *testing.T) func(*db.DB) error
		delta int64
	}{
		{"receipt", func(t *testing.T) func(*db.DB) error {
			// A reception without a purchase order.
			return fileImport(t, ImportReceipts, `{"webhookEventId":90,"goodsOwnerId":159,"isReceive":true,"article":{"articleNumber":"111"},
"articleItem":{"articleItemId":9,"numberOfItems":3.0}}`)
		}, 3},
		{"inventory transaction import", func(t *testing.T) func(*db.DB) error {
			path := write(t, "t.csv", "transaction_code,item,sku,warehouse,location,quantity\nA,IT1,RED S,S01,A1,+3\n")
			return func(d *db.DB) error {
				_, err := imports.ImportTransactions(ctx, d, path, imports.Options{})
				return err
			}
		}, 3},
		{"order shipment", func(t *testing.T) func(*db.DB) error {
			// As orders ship: lock the stock row, then take from it.
			return func(d *db.DB) error {
				return d.Tx(ctx, true, func(conn *sql.Conn) error {
					if _, err := conn.ExecContext(ctx, holdStock(hold)); err != nil {
						return err
					}
					_, err := conn.ExecContext(ctx, `UPDATE inventory SET on_hand = on_hand - 3 WHERE item = 'IT1' AND sku = 'RED S' AND warehouse = 'S01' AND location = 'A1'`)
					return err
				})
			}
		}, -3},
		{"another adjustment", func(t *testing.T) func(*db.DB) error {
			return fileImport(t, ImportCounts, invWebhook(91, 9, "3.0", "A-12", ""))
		}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			count := fileImport(t, ImportCounts, invWebhook(92, 7, "-1.0", "A-12", ""))
			first, second := dbtest.InTurn(t, d, holdStock(hold), c.first(t), count)
			if first != nil || !errors.Is(second, db.ErrBusy) {
				t.Fatalf("first: %v; adjustment: %v; want the adjustment busy", first, second)
			}
			if err := count(d); err != nil {
				t.Fatalf("the adjustment again: %v", err)
			}
			after := 5 + c.delta - 1
			if got, want := stock(t, d), fmt.Sprintf("RED S|S01|A1|%d;RED S|S01|B1|2;", after); got != want {
				t.Errorf("stock %s, want %s", got, want)
			}
			var n, before, onHand int64
			if err := d.QueryRowContext(ctx, `SELECT count(*), min(before_on_hand), min(after_on_hand) FROM inventory_txns
WHERE reference = 'inventory 7'`).Scan(&n, &before, &onHand); err != nil || n != 1 || before != after+1 || onHand != after {
				t.Errorf("history of the adjustment: %d rows, %d -> %d (%v); want 1, %d -> %d", n, before, onHand, err, after+1, after)
			}
		})
	}
}

// TestSameAdjustmentAtOnce: the inventory webhook of an adjustment and
// the inventoryAdjustments GET of the same adjustment imported on two
// hosts at once on PostgreSQL. The second finds the adjustment taken
// when the first commits (the key of wms_adjustments): it fails busy
// (exit 75), not with the constraint error, and is "applied before" when
// run again. The stock changes once.
func TestSameAdjustmentAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	d := seed(t)
	get := fileImport(t, ImportCounts, adjGet(adj(7, "-1.0", "A-12")))
	first, second := dbtest.InTurn(t, d, holdStock("S01' AND location = 'A1"), fileImport(t, ImportCounts, invWebhook(92, 7, "-1.0", "A-12", "")), get)
	if first != nil || !errors.Is(second, db.ErrBusy) {
		t.Fatalf("webhook: %v; GET: %v; want the GET busy", first, second)
	}
	var st Stats
	get = func(d *db.DB) error {
		var err error
		_, st, err = ImportCounts(context.Background(), d, wmsPartner, write(t, "again.json", adjGet(adj(7, "-1.0", "A-12"))), imports.Options{})
		return err
	}
	if err := get(d); err != nil || len(st.Notes) != 1 {
		t.Fatalf("the GET again: %v %+v, want a note that it was applied before", err, st)
	}
	if got, want := stock(t, d), "RED S|S01|A1|4;RED S|S01|B1|2;"; got != want {
		t.Errorf("stock %s, want %s (-1 once)", got, want)
	}
}

// holdStock is the locking read of RED S's stock row in where, which
// closes the quotes of the warehouse and opens those of the location.
func holdStock(where string) string {
	return `SELECT on_hand FROM inventory WHERE item = 'IT1' AND sku = 'RED S' AND warehouse = '` + where + `' FOR UPDATE`
}

// fileImport imports a file of content with imp into a host's database.
func fileImport(t *testing.T, imp func(context.Context, *db.DB, partner.Profile, string, imports.Options) (*imports.Result, Stats, error),
	content string) func(*db.DB) error {
	path := write(t, "f.json", content)
	return func(d *db.DB) error {
		_, _, err := imp(context.Background(), d, wmsPartner, path, imports.Options{})
		return err
	}
}
