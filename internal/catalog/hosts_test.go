package catalog_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// loaded is what a load ended with.
type loaded struct {
	res *catalog.Result
	err error
}

// loadElsewhere starts a load of content as kind on a handle of its own,
// as another host's, and returns what it ends with.
func (f *fixture) loadElsewhere(kind, content string, opts catalog.Options) <-chan loaded {
	f.t.Helper()
	path := filepath.Join(f.dir, kind+"-elsewhere.csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	host := dbtest.OpenAgain(f.t, f.d)
	done := make(chan loaded, 1)
	go func() {
		res, err := catalog.Load(context.Background(), host, kind, path, opts)
		done <- loaded{res, err}
	}()
	return done
}

// waitBlocked waits for the load started by loadElsewhere to wait on a
// lock of another session; it fails the test if the load ended instead.
func (f *fixture) waitBlocked(done <-chan loaded) {
	f.t.Helper()
	if waiting := dbtest.LockWaiters(f.t, f.d, 1); waiting != 1 {
		select {
		case r := <-done:
			f.t.Fatalf("the load did not wait for the other session: it ended with %v", r.err)
		default:
			f.t.Fatalf("%d sessions wait on a lock, want 1", waiting)
		}
	}
}

// finish commits the other session's transaction, which release then
// ends, and returns what the load waiting for it did.
func (f *fixture) finish(other *sql.Conn, release func(), done <-chan loaded) *catalog.Result {
	f.t.Helper()
	if _, err := other.ExecContext(context.Background(), `COMMIT`); err != nil {
		f.t.Fatal(err)
	}
	release()
	r := <-done
	if r.err != nil {
		f.t.Fatal(r.err)
	}
	return r.res
}

// TestInventoryLoadWhileStockChanges: an inventory load on PostgreSQL
// that meets a stock row another host (an import, an order) is changing
// works out the row's ITW trigger from the stock it overwrites, as on
// SQLite when the other change comes first. Read before the load waited
// for the other, the load compared the file with the stock before the
// other change and sent nothing, and the partner kept the other's level.
func TestInventoryLoadWhileStockChanges(t *testing.T) {
	dbtest.WritersAtOnce(t)
	for _, tt := range []struct {
		name, before, change, load string
		mode                       string
	}{
		// Available 20 over a threshold of 10 goes down to 5 on the
		// other host (whose own trigger went out at 5); the load sets
		// 25, back above the threshold.
		{"a row of the file", stock(20, 0, "10"), `UPDATE inventory SET on_hand = 5 WHERE item = 'IT1'`,
			stock(25, 0, ""), catalog.ModeDelta},
		// Available 0 (3 on hand, 3 reserved) goes up to 3 on the other
		// host; the full load, without the row, sets it to 0.
		{"a row a full load zeroes", stock(3, 3, "") + "IT2,,WH1,,5,0,\n", `UPDATE inventory SET reserved = 0 WHERE item = 'IT1'`,
			inventoryHead + "IT2,,WH1,,5,0,\n", catalog.ModeFull},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.delta("warehouses", warehousesFile)
			f.delta("items", "item,sku,description\nIT1,,Shirt\nIT2,,Skirt\n")
			f.delta("inventory", tt.before)
			f.markSent()

			other, release := dbtest.Hold(t, f.d, `SELECT on_hand FROM inventory WHERE item = 'IT1' FOR UPDATE`)
			// As every writer of stock rows, the other takes the change
			// number first (TestInventoryLoadAfterStockWriter).
			if _, err := catalog.NextChangeSeq(context.Background(), other); err != nil {
				t.Fatal(err)
			}
			if _, err := other.ExecContext(context.Background(), tt.change); err != nil {
				t.Fatal(err)
			}
			done := f.loadElsewhere("inventory", tt.load, catalog.Options{Mode: tt.mode})
			f.waitBlocked(done)
			f.finish(other, release, done)
			equal(t, "pending ITW triggers", f.pending("ITW"), []string{"IT1/ C"})
		})
	}
}

// TestFullLoadWhileExportClaims: a full load on PostgreSQL deleting a
// record whose add an export is claiming at that moment (never sent
// before) waits for the claim, and then finds the add on its way: the
// record becomes a tombstone with a D trigger, as on SQLite when the
// export claims first. Read unlocked, the load took the add for one
// still pending and removed the record outright, with no delete to send
// after the add the export was sending.
func TestFullLoadWhileExportClaims(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	f := newFixture(t)
	f.delta("vendors", "vendor,name\nV1,First\n")

	claim, release := dbtest.Hold(t, f.d, `SELECT 1`)
	var fileID int64
	if err := claim.QueryRowContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, status, created_at)
VALUES ('out', 'vendors', 'v.xml', 'v.xml', '', 0, ?, ?) RETURNING id`, trigger.FileWriting, db.Now()).Scan(&fileID); err != nil {
		t.Fatal(err)
	}
	if _, n, err := trigger.Claim(ctx, claim, trigger.CodeVendor, fileID, 0, 0); err != nil || n != 1 {
		t.Fatalf("claim = %d, %v; want 1", n, err)
	}
	done := f.loadElsewhere("vendors", "vendor,name\nV2,Second\n", catalog.Options{Mode: catalog.ModeFull})
	f.waitBlocked(done)
	f.finish(claim, release, done)
	if got := f.state("vendors", "vendor = ?", "V1"); got != "tombstone" {
		t.Errorf("V1 is %s, want a tombstone", got)
	}
	equal(t, "pending VND triggers", f.pending("VND"), []string{"V1/ D", "V2/ A"})
}

// TestInventoryLoadWhileReferencesGo: an inventory load on PostgreSQL
// while a load of items or warehouses on another host removes the SKU or
// the warehouse of one of its rows (a SKU whose add was never sent goes
// outright; a warehouse without stock goes in a full load) waits for that
// load, and then rejects the row as unknown, as on SQLite when the other
// load comes first. Checked before the other committed, the row was
// taken and its insert failed on the foreign key: a database error
// (exit 1), nothing loaded.
func TestInventoryLoadWhileReferencesGo(t *testing.T) {
	dbtest.WritersAtOnce(t)
	for _, tt := range []struct {
		kind, remove, row, reject string
	}{
		{"items", `DELETE FROM skus WHERE item = 'IT1' AND sku = 'RED'`, "IT1,RED,WH1,,5,0,\n", "unknown item/SKU IT1/RED"},
		{"warehouses", `DELETE FROM warehouses WHERE warehouse = 'WH2'`, "IT1,BLUE,WH2,,5,0,\n", "unknown warehouse WH2"},
	} {
		t.Run(tt.kind, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			f.delta("warehouses", warehousesFile)
			f.delta("items", "item,sku,description\nIT1,RED,Shirt\nIT1,BLUE,Shirt\n")

			// The other load, as far as its removal: it holds the lock of
			// its kind from its start.
			other, release := dbtest.Hold(t, f.d, `SELECT 1`)
			if err := db.LockForTx(ctx, other, "load "+tt.kind); err != nil {
				t.Fatal(err)
			}
			if _, err := other.ExecContext(ctx, tt.remove); err != nil {
				t.Fatal(err)
			}
			done := f.loadElsewhere("inventory", inventoryHead+"IT1,BLUE,WH1,,3,0,\n"+tt.row, catalog.Options{})
			f.waitBlocked(done)
			res := f.finish(other, release, done)
			if res.Added != 1 || res.Rejected != 1 {
				t.Errorf("added %d, rejected %d; want 1 and 1", res.Added, res.Rejected)
			}
			rejects, _ := os.ReadFile(res.RejectsFile)
			if !strings.Contains(string(rejects), tt.reject) {
				t.Errorf("rejects:\n%s\nwant %q", rejects, tt.reject)
			}
		})
	}
}

// TestFullWarehousesLoadWhileStockArrives: a full load of warehouses on
// PostgreSQL that would delete a warehouse without stock while an import
// or an order on another host adds the first stock row there waits for
// it, and then keeps the warehouse with its warning, as on SQLite when
// the stock comes first. Checked before the stock was committed, the
// warehouse was deleted and the delete failed on the stock's foreign
// key: a database error (exit 1), nothing loaded.
func TestFullWarehousesLoadWhileStockArrives(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	f := newFixture(t)
	f.delta("warehouses", warehousesFile)
	f.delta("items", oneItemFile)

	other, release := dbtest.Hold(t, f.d, `SELECT 1`)
	if _, err := other.ExecContext(ctx, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at)
VALUES ('IT1', '', 'WH2', '', 5, 0, ?)`, db.Now()); err != nil {
		t.Fatal(err)
	}
	done := f.loadElsewhere("warehouses", "warehouse,name\nWH1,Main\n", catalog.Options{Mode: catalog.ModeFull})
	f.waitBlocked(done)
	f.finish(other, release, done)
	equal(t, "warehouses", f.strings(`SELECT warehouse FROM warehouses ORDER BY 1`), []string{"WH1", "WH2"})
}
