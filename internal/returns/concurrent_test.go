package returns

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
)

// TestReceivesAtOnce: two hosts record a QC result of one item at once
// on PostgreSQL. The second waits for the first and is refused, the item
// received once, as on SQLite. Read unlocked, both saw the item not
// received: a PASS and a FAIL both went through (stock raised, the item
// left FAIL), and two PASSes into two locations raised stock twice (two
// into one location met on its stock row: the second was busy, exit 75,
// and refused only when run again).
func TestReceivesAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	receive := func(qc, location string) func(d *db.DB) error {
		return func(d *db.DB) error {
			_, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: qc, Location: location})
			return err
		}
	}
	for name, second := range map[string]func(d *db.DB) error{
		"PASS and FAIL":            receive(QCFail, ""),
		"PASS into two locations":  receive(QCPass, "B1"),
		"PASS and PASS, same spot": receive(QCPass, "A1"),
	} {
		t.Run(name, func(t *testing.T) {
			d := seedReturns(t)
			first, second := dbtest.InTurn(t, d, holdRET1, receive(QCPass, "A1"), second)
			if first != nil || !errors.Is(second, ErrRefused) {
				t.Fatalf("errors %v, %v; want the first received and the second refused", first, second)
			}
			if got, want := stock(t, d), "RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
				t.Errorf("stock %s, want %s (RI-1's 2 into A1 once)", got, want)
			}
			if got, want := items(t, d, "RET-1"), "RI-1|RED S|2|too small|1|PASS;RI-2|RED M|1||0|;"; got != want {
				t.Errorf("items %s, want %s", got, want)
			}
		})
	}
}

// TestReceiveAndCancelAtOnce: a QC result and the partner's cancel of the
// return at once on PostgreSQL come one after the other, whichever
// starts first: a cancel after the receipt is rejected (a received item
// cannot be cancelled), a receipt after the cancel is refused as
// cancelled, with no stock raised. Read unlocked, the second wrote an
// item both received and cancelled and failed on the table's check, a
// database error (exit 1).
func TestReceiveAndCancelAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	cancelFile := `{"returnOrderCode":"RET-1","eventType":"RETURN_ORDER_CANCEL","status":"CANCELLED"}`
	receive := func(d *db.DB) error {
		_, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass})
		return err
	}
	var res *imports.Result
	cancel := func(path string) func(d *db.DB) error {
		return func(d *db.DB) error {
			var err error
			res, _, err = Import(ctx, d, oms, path, imports.Options{})
			return err
		}
	}
	t.Run("receive first", func(t *testing.T) {
		d := seedReturns(t)
		first, second := dbtest.InTurn(t, d, holdRET1, receive, cancel(write(t, "cancel.json", cancelFile)))
		if first != nil || second != nil || res.Rejected != 1 {
			t.Fatalf("receive: %v; cancel: %v %+v; want the cancel rejected", first, second, res)
		}
		if got, want := stock(t, d), "RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
			t.Errorf("stock %s, want %s", got, want)
		}
		if got, want := items(t, d, "RET-1"), "RI-1|RED S|2|too small|1|PASS;RI-2|RED M|1||0|;"; got != want {
			t.Errorf("items %s, want %s (nothing cancelled)", got, want)
		}
	})
	t.Run("cancel first", func(t *testing.T) {
		d := seedReturns(t)
		first, second := dbtest.InTurn(t, d, holdRET1, cancel(write(t, "cancel.json", cancelFile)), receive)
		if first != nil || res.Rejected != 0 || !errors.Is(second, ErrCancelled) {
			t.Fatalf("cancel: %v %+v; receive: %v; want the receipt refused as cancelled", first, res, second)
		}
		if got := stock(t, d); got != seeded {
			t.Errorf("stock %s, want %s (nothing raised)", got, seeded)
		}
		if r, err := Get(ctx, d, "oms", "RET-1"); err != nil || r.Status != StatusCancelled || r.Received != 0 {
			t.Errorf("RET-1: %+v %v, want cancelled with nothing received", r, err)
		}
	})
}

// TestReceiveWhileResent: a QC result recorded while a changed re-send of
// the return is imported on PostgreSQL waits for the import, and then
// receives the item as the re-send left it, once. Read unlocked, the
// receipt raised stock and then updated nothing, the item being one the
// import had deleted and inserted again: it stayed expected, and a second
// receipt raised stock again.
func TestReceiveWhileResent(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seedReturns(t)
	// RET-2 after RET-1: the test holds RET-2, so that the import waits
	// there with RET-1 done and not yet committed.
	resent := strings.Replace(ret1, "AWB1", "AWB9", 1) + "\n" + ret2Changed
	path := write(t, "resent.json", resent)
	var st Stats
	first, second := dbtest.InTurn(t, d, holdRET2,
		func(d *db.DB) error {
			var err error
			_, st, err = Import(ctx, d, oms, path, imports.Options{})
			return err
		},
		func(d *db.DB) error {
			_, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass, Location: "A1"})
			return err
		})
	if first != nil || second != nil || st != (Stats{Updated: 2}) {
		t.Fatalf("import: %v %+v; receive: %v", first, st, second)
	}
	if got, want := items(t, d, "RET-1"), "RI-1|RED S|2|too small|1|PASS;RI-2|RED M|1||0|;"; got != want {
		t.Errorf("items %s, want %s", got, want)
	}
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass, Location: "A1"}); !errors.Is(err, ErrRefused) {
		t.Errorf("RI-1 again: %v, want refused as received", err)
	}
	if got, want := stock(t, d), "RED S|RET|A1|7;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock %s, want %s (RI-1's 2 once)", got, want)
	}
	if r, err := Get(ctx, d, "oms", "RET-1"); err != nil || r.AwbNumber != "AWB9" || r.Revision != 2 {
		t.Errorf("RET-1: %+v %v, want the re-send's AWB9, revision 2", r, err)
	}
}

// TestSameReturnAddedAtOnce: two hosts import the same new return in two
// files at once on PostgreSQL. The second finds the code taken when the
// first commits (a unique violation, undone by its savepoint) and reads
// the first's return: unchanged, added once, no error.
func TestSameReturnAddedAtOnce(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seedReturns(t)
	ret3 := `{"returnOrderCode":"RET-3","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"222"}]}`
	// The first file waits on RET-2's items, held, after adding RET-3
	// (it locked RET-2 itself before: lockReturns).
	paths := []string{write(t, "a.json", ret3+"\n"+ret2Changed), write(t, "b.json", "["+ret3+"]")}
	stats := make([]Stats, 2)
	imp := func(i int) func(d *db.DB) error {
		return func(d *db.DB) error {
			var err error
			_, stats[i], err = Import(ctx, d, oms, paths[i], imports.Options{})
			return err
		}
	}
	first, second := dbtest.InTurn(t, d, holdRET2Items, imp(0), imp(1))
	if first != nil || second != nil || stats[0] != (Stats{Added: 1, Updated: 1}) || stats[1] != (Stats{Unchanged: 1}) {
		t.Fatalf("imports: %v %+v, %v %+v; want RET-3 added by the first, unchanged for the second", first, stats[0], second, stats[1])
	}
	if got := query(t, d, `SELECT count(*) FROM returns WHERE return_code = 'RET-3'`); got != "1;" {
		t.Errorf("RET-3 rows: %s, want 1", got)
	}
}

// TestReceiveWhileShipped: a PASS into a stock row that an order's
// shipment changes meanwhile on PostgreSQL (it read the row before the
// shipment committed) fails busy (exit 75) with nothing of it kept, and
// applies on the stock as it is when run again: no lost update.
func TestReceiveWhileShipped(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seedReturns(t)
	hold := `SELECT 1 FROM inventory WHERE item = 'IT1' AND sku = 'RED S' AND warehouse = 'RET' AND location = 'A1' FOR UPDATE`
	// A shipment of 3 from RET A1, as an order's takes it: it waits for
	// the held row, locks it and writes it when the test lets go.
	ship := func(d *db.DB) error {
		return d.Tx(ctx, true, func(conn *sql.Conn) error {
			if _, err := conn.ExecContext(ctx, hold); err != nil {
				return err
			}
			_, err := conn.ExecContext(ctx, `UPDATE inventory SET on_hand = on_hand - 3 WHERE item = 'IT1' AND sku = 'RED S' AND warehouse = 'RET' AND location = 'A1'`)
			return err
		})
	}
	receive := func(d *db.DB) error {
		_, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCPass, Location: "A1"})
		return err
	}
	first, second := dbtest.InTurn(t, d, hold, ship, receive)
	if first != nil || !errors.Is(second, db.ErrBusy) {
		t.Fatalf("shipment: %v; receive: %v; want the receipt busy", first, second)
	}
	if got, want := items(t, d, "RET-1"), "RI-1|RED S|2|too small|0|;RI-2|RED M|1||0|;"; got != want {
		t.Errorf("items after the busy receipt: %s, want %s", got, want)
	}
	if err := receive(d); err != nil {
		t.Fatalf("the receipt again: %v", err)
	}
	if got, want := stock(t, d), "RED S|RET|A1|4;RED S|RET|B1|2;RED S|S01|A1|9;"; got != want {
		t.Errorf("stock %s, want %s (5 -3 shipped +2 returned)", got, want)
	}
}

// TestReceiveWhileUpdateClaimed: a QC result recorded while an export on
// another host claims the return's ready update, on PostgreSQL, goes out
// in a new update. Read unlocked, the receipt found the update ready and
// wrote its result into it after the export had claimed it: the export
// sent what it had read, and the result was never sent.
func TestReceiveWhileUpdateClaimed(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d := seedReturns(t)
	if _, err := Receive(ctx, d, Receipt{Return: "RET-1", Item: "RI-1", QC: QCFail}); err != nil {
		t.Fatal(err)
	}
	// The export's claim (orders.Claim), not committed yet.
	claim, _ := dbtest.Hold(t, d, `UPDATE order_messages SET status = 'processing' WHERE stream = 'returns' AND status = 'ready'`)
	errc := make(chan error, 1)
	host := dbtest.OpenAgain(t, d)
	go func() {
		_, err := Receive(ctx, host, Receipt{Return: "RET-1", Item: "RI-2", QC: QCFail})
		errc <- err
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		t.Fatalf("%d sessions wait on a lock, want the receipt", waiting)
	}
	if _, err := claim.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("receive RI-2: %v", err)
	}
	if got, want := query(t, d, `SELECT i.item_code, m.status, m.payload LIKE '%"RI-2"%' FROM return_items i JOIN order_messages m ON m.id = i.message_id
ORDER BY i.item_code`), "RI-1|processing|0;RI-2|ready|1;"; got != want {
		t.Errorf("items and their updates: %s, want %s (RI-2 in a new ready update)", got, want)
	}
}

// TestFilesInOppositeOrders: two files that name the same returns in
// opposite orders, imported at once on PostgreSQL, apply one after the
// other, as on SQLite: the second waits for the first and then applies
// over what it left. Each locked the return it changed first and then
// waited for the other's: a deadlock, which the server broke by failing
// one of them (40P01, busy, exit 75). The test holds what the first
// file needs after it changed its first return, so that, without the
// locks in one order, the second starts while the first holds that one.
func TestFilesInOppositeOrders(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	ret4 := `{"returnOrderCode":"RET-4","orderType":"SELF_SHIP","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"222"}]}`
	for _, tc := range []struct {
		name string
		// hold stops the first file after it changed its first return.
		hold          string
		first, second string
		// stats of the first and second file; returns are code|awb|revision.
		want    [2]Stats
		returns string
	}{{
		name: "changed returns",
		// The first file's re-send of RET-2 waits to replace its items.
		hold:    holdRET2Items,
		first:   ret2Changed + "\n" + strings.Replace(ret1, "AWB1", "AWB8", 1),
		second:  strings.Replace(ret1, "AWB1", "AWB9", 1) + "\n" + strings.Replace(ret2Changed, "AWB2", "AWB3", 1),
		want:    [2]Stats{{Updated: 2}, {Updated: 2}},
		returns: "RET-1|AWB9|3;RET-2|AWB3|3;",
	}, {
		name: "a new return and a changed one",
		// The first file adds RET-4 and waits for RET-2 before RET-1,
		// which the second changed before it adds RET-4.
		hold:    holdRET2,
		first:   ret4 + "\n" + ret2Changed + "\n" + strings.Replace(ret1, "AWB1", "AWB8", 1),
		second:  strings.Replace(ret1, "AWB1", "AWB9", 1) + "\n" + ret4,
		want:    [2]Stats{{Added: 1, Updated: 2}, {Updated: 1, Unchanged: 1}},
		returns: "RET-1|AWB9|3;RET-2|AWB2|2;RET-4||1;",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := seedReturns(t)
			paths := []string{write(t, "first.json", tc.first), write(t, "second.json", tc.second)}
			var stats [2]Stats
			imp := func(i int) func(d *db.DB) error {
				return func(d *db.DB) error {
					var err error
					_, stats[i], err = Import(ctx, d, oms, paths[i], imports.Options{})
					return err
				}
			}
			first, second := dbtest.InTurn(t, d, tc.hold, imp(0), imp(1))
			if first != nil || second != nil || stats != tc.want {
				t.Fatalf("imports: %v %+v, %v %+v; want both applied, %+v", first, stats[0], second, stats[1], tc.want)
			}
			if got := query(t, d, `SELECT return_code, coalesce(awb_number, ''), revision FROM returns ORDER BY return_code`); got != tc.returns {
				t.Errorf("returns %s, want %s (the second file's)", got, tc.returns)
			}
		})
	}
}

// holdRET1 and holdRET2 lock the row of return RET-1 and RET-2,
// holdRET2Items the rows of RET-2's items.
const (
	holdRET1      = `SELECT 1 FROM returns WHERE return_code = 'RET-1' FOR UPDATE`
	holdRET2      = `SELECT 1 FROM returns WHERE return_code = 'RET-2' FOR UPDATE`
	holdRET2Items = `SELECT 1 FROM return_items WHERE return_id = (SELECT id FROM returns WHERE return_code = 'RET-2') FOR UPDATE`
)

// ret2Changed is RET-2 with an awbNumber: a changed re-send.
var ret2Changed = strings.Replace(ret2, `"SELF_SHIP"`, `"SELF_SHIP","awbNumber":"AWB2"`, 1)

// seedReturns is seed's state with RET-1 and RET-2 imported.
func seedReturns(t *testing.T) *db.DB {
	t.Helper()
	d := seed(t)
	if res, _, err := Import(context.Background(), d, oms, write(t, "r.json", ret1+"\n"+ret2), imports.Options{}); err != nil || res.Applied != 2 {
		t.Fatalf("import: %+v %v", res, err)
	}
	return d
}
