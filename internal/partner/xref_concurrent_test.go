package partner

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestXrefLoadsAtOnce: two hosts (or processes) load the same cross
// reference file of a partner at once. The second waits for the first and
// then finds its mappings: 2 unchanged. Both read the stored mappings
// before their write transaction, on either engine; both found none and
// added them, and the second failed on the primary key with the
// database's error (exit 1).
func TestXrefLoadsAtOnce(t *testing.T) {
	ctx := context.Background()
	d, dir := fixture(t)
	paths := make([]string, 2)
	for i := range paths {
		paths[i] = filepath.Join(dir, []string{"a.csv", "b.csv"}[i])
		os.WriteFile(paths[i], []byte("item,sku,external_code\nIT1,A,X1\nIT1,B,X2\n"), 0o600)
	}
	// A transaction of the test adds IT1/A's mapping and holds it: a load
	// waits there, or, having read the stored mappings, to add its own.
	_, release := dbtest.Hold(t, d, `INSERT INTO sku_xref(partner, item, sku, external_code, created_at, updated_at)
VALUES ('p', 'IT1', 'A', 'X1', '', '')`)
	results := make([]*LoadResult, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, p := range paths {
		host := dbtest.OpenAgain(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = Load(ctx, host, "p", p, LoadOptions{})
		}()
		if !dbtest.Postgres() {
			// SQLite shows no waits: each load is given the time to
			// reach its write transaction, which the test's holds.
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if waiting := dbtest.LockWaiters(t, d, i+1); waiting != i+1 {
			release()
			wg.Wait()
			t.Fatalf("%d loads wait, want %d (errors: %v)", waiting, i+1, errs)
		}
	}
	release()
	wg.Wait()
	var added, unchanged int
	for i, res := range results {
		switch {
		case errs[i] != nil:
			t.Errorf("load %d: %v", i+1, errs[i])
		case res.Added == 2 && res.Unchanged == 0:
			added++
		case res.Added == 0 && res.Unchanged == 2:
			unchanged++
		default:
			t.Errorf("load %d: %+v", i+1, res)
		}
	}
	if added != 1 || unchanged != 1 {
		t.Errorf("%d loads added the mappings and %d found them unchanged, want 1 and 1", added, unchanged)
	}
	if got := mappings(t, d); got != "IT1/A=X1 IT1/B=X2 " {
		t.Errorf("mappings %q", got)
	}
}

// TestXrefSKUDeletedWhileLoaded: on PostgreSQL a catalog load that
// deletes a SKU outright (one added and deleted before it was ever sent)
// while a cross reference load maps it: the cross reference load waits
// for it and then rejects the row, as on SQLite when the catalog load
// comes first. The mapping failed on its foreign key with the database's
// error (exit 1).
func TestXrefSKUDeletedWhileLoaded(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d, dir := fixture(t)
	path := filepath.Join(dir, "x.csv")
	os.WriteFile(path, []byte("item,sku,external_code\nIT1,A,X1\nIT1,B,X2\n"), 0o600)
	conn, release := dbtest.Hold(t, d, `DELETE FROM skus WHERE item = 'IT1' AND sku = 'A'`)
	host := dbtest.OpenAgain(t, d)
	type outcome struct {
		res *LoadResult
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Load(ctx, host, "p", path, LoadOptions{})
		done <- outcome{res, err}
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		release()
		t.Fatalf("%d sessions wait on a lock, want the xref load (%+v)", waiting, <-done)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	release()
	o := <-done
	if o.err != nil || o.res.Added != 1 || o.res.Rejected != 1 {
		t.Fatalf("load: %+v %v, want IT1/B added and IT1/A rejected", o.res, o.err)
	}
	if got := mappings(t, d); got != "IT1/B=X2 " {
		t.Errorf("mappings %q", got)
	}
}

// TestXrefDeleteWhileLoaded: on PostgreSQL an `xref delete` of a SKU's
// mapping while an `xref load` gives the SKU another code waits for the
// load and deletes the new mapping, as one after the other. It had gone
// for the row the load replaced and, finding it gone, said there was no
// mapping (exit 1), leaving the new one.
func TestXrefDeleteWhileLoaded(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	d, dir := fixture(t)
	load(t, d, dir, ModeDelta, "item,sku,external_code\nIT1,A,X1\n")
	path := filepath.Join(dir, "new.csv")
	os.WriteFile(path, []byte("item,sku,external_code\nIT1,A,X9\n"), 0o600)
	var deleted Mapping
	loaded, deleteErr := dbtest.InTurn(t, d, `SELECT 1 FROM sku_xref WHERE partner = 'p' AND item = 'IT1' AND sku = 'A' FOR UPDATE`,
		func(host *db.DB) error { _, err := Load(ctx, host, "p", path, LoadOptions{}); return err },
		func(host *db.DB) error {
			var err error
			deleted, err = Delete(ctx, host, "p", "IT1", "A", "")
			return err
		})
	if loaded != nil || deleteErr != nil || deleted.ExternalCode != "X9" {
		t.Fatalf("load: %v; delete: %+v %v; want the load's X9 deleted", loaded, deleted, deleteErr)
	}
	if got := mappings(t, d); got != "" {
		t.Errorf("mappings %q, want none", got)
	}
}
