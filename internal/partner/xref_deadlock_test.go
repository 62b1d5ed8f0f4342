package partner

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestXrefLoadMeetsCatalogDelete: on PostgreSQL a catalog load under
// way has taken its change number (deleteGone takes it before its
// DELETE, and every load holds the counter's row to its commit) when an
// xref load of a SKU that load is about to delete outright starts. The
// xref load waits for the catalog load, and then rejects the SKU as
// unknown, as when the two run one after the other. When the xref load
// locked the SKU (checkSKUs, FOR KEY SHARE) before it took the counter's
// row, the catalog load's DELETE waited for it and it for the counter: a
// deadlock, one of the two ended by PostgreSQL (40P01, exit 75), often
// the catalog load, whatever it had done.
func TestXrefLoadMeetsCatalogDelete(t *testing.T) {
	dbtest.WritersAtOnce(t)
	for _, c := range []struct {
		name  string
		delay time.Duration // before the catalog load's DELETE
	}{{"delete at once", 0}, {"delete after deadlock_timeout", 1500 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			d, dir := fixture(t)
			path := filepath.Join(dir, "x.csv")
			os.WriteFile(path, []byte("item,sku,external_code\nIT1,A,X1\nIT1,B,X2\n"), 0o600)
			// The catalog load, under way: its change number taken.
			load, release := dbtest.Hold(t, d, `SELECT 1`)
			if _, err := catalog.NextChangeSeq(ctx, load); err != nil {
				t.Fatal(err)
			}
			host := dbtest.OpenAgain(t, d)
			done := make(chan error, 1)
			go func() {
				_, err := Load(ctx, host, "p", path, LoadOptions{})
				done <- err
			}()
			if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
				release()
				t.Fatalf("%d sessions wait, want the xref load waiting for the change counter (%v)", waiting, <-done)
			}
			time.Sleep(c.delay)
			// The catalog load comes to delete IT1/A outright.
			dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, delErr := load.ExecContext(dctx, `DELETE FROM skus WHERE item = 'IT1' AND sku = 'A'`)
			if delErr == nil {
				_, delErr = load.ExecContext(ctx, "COMMIT")
			}
			release()
			loadErr := <-done
			if delErr != nil || loadErr != nil {
				t.Errorf("catalog load's delete: %v; xref load: %v; want both done, one after the other", delErr, loadErr)
			}
		})
	}
}
