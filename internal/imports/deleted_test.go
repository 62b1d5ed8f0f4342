package imports

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestDeletedWhileImported: on PostgreSQL the applier reads the SKUs and
// warehouses a file names on a connection of its own, outside the
// import's transaction; a catalog load that removes one of them (a SKU
// added and deleted before it was ever sent is deleted outright, a
// warehouse without stock too) may commit before the import writes its
// new stock row there. The import then fails busy (exit 75) with nothing
// applied, and run again rejects the record, as on SQLite when the load
// comes first. The stock row failed on its foreign key with the
// database's error (exit 1). SQLite's import reads in its write
// transaction: nothing is deleted meanwhile.
func TestDeletedWhileImported(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SQLite's import reads what it names in its write transaction")
	}
	for _, c := range []struct {
		name, record, delete, reject string
	}{
		{"SKU", "A,IT0000001,BLK-8,DC1,NEW,+4", `DELETE FROM skus WHERE item = 'IT0000001' AND sku = 'BLK-8'`,
			"unknown item/SKU IT0000001/BLK-8"},
		// Its stock rows go with it: the file's row is not there to
		// update.
		{"SKU with stock", "A,IT0000001,BLK-8,DC1,A01-01,+4", `DELETE FROM skus WHERE item = 'IT0000001' AND sku = 'BLK-8'`,
			"unknown item/SKU IT0000001/BLK-8"},
		{"warehouse", "A,IT0000001,BLK-8,W9,A1,+4", `DELETE FROM warehouses WHERE warehouse = 'W9'`,
			"unknown warehouse W9"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newTxnFixture(t)
			ctx := context.Background()
			if _, err := f.d.Exec(`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('W9', 'Nine', '', '')`); err != nil {
				t.Fatal(err)
			}
			path := f.write("a.csv", txnHead+c.record+"\n")
			// The test's "catalog load" deletes the row and holds it: the
			// import reads it as it was, and its stock row waits on it.
			conn, release := dbtest.Hold(t, f.d, c.delete)
			host := dbtest.OpenAgain(t, f.d)
			errc := make(chan error, 1)
			go func() {
				_, err := ImportTransactions(ctx, host, path, Options{})
				errc <- err
			}()
			if waiting := dbtest.LockWaiters(t, f.d, 1); waiting != 1 {
				release()
				t.Fatalf("%d sessions wait on a lock, want the import's stock row (import: %v)", waiting, <-errc)
			}
			if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
				t.Fatal(err)
			}
			release()
			if err := <-errc; !errors.Is(err, db.ErrBusy) {
				t.Fatalf("import while the %s was deleted: %v, want busy", c.name, err)
			}
			if n := f.count(`SELECT count(*) FROM files WHERE kind = 'inventory-transactions'`); n != 0 {
				t.Errorf("%d files in the ledger after the import failed, want 0", n)
			}
			res, err := ImportTransactions(ctx, f.d, path, Options{})
			if err != nil || res.Applied != 0 || res.Rejected != 1 {
				t.Fatalf("the import again: %+v %v, want its record rejected", res, err)
			}
			if rej := f.rejectsOf(path); !strings.Contains(rej, c.reject) {
				t.Errorf("rejects:\n%s\nwant %q", rej, c.reject)
			}
			if n := f.count(`SELECT count(*) FROM inventory WHERE item = 'IT0000001' AND sku = 'BLK-8' AND location IN ('NEW', 'A1')`); n != 0 {
				t.Errorf("%d stock rows the file added, want 0", n)
			}
		})
	}
}
