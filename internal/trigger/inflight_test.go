package trigger_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

// TestDeleteAgainWhileDeleteInFlight: V2 and IT1/RED, sent, are deleted
// by full loads; an export file claims their deletes and is not finished;
// delta loads add them again (new captured adds) and full loads delete
// them once more. The new adds cancel with the new deletes, but the
// records stay tombstones while the file holds their deletes. Given back,
// the deletes are sent with their records; finished, the tombstones go.
// The records were removed outright before, as never sent: given back,
// the deletes went into error, "record not found", and the partner, who
// had the records, never heard they were deleted.
func TestDeleteAgainWhileDeleteInFlight(t *testing.T) {
	for _, finished := range []bool{false, true} {
		name := map[bool]string{false: "given back", true: "finished"}[finished]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			d := openDB(t)
			const vendors, vendorsLess = "vendor,name\nV1,One\nV2,Two\n", "vendor,name\nV1,One\n"
			const items, itemsLess = "item,sku,description\nIT1,RED,Shirt\nIT1,BLUE,Shirt\n", "item,sku,description\nIT1,BLUE,Shirt\n"
			loadFile(t, d, "vendors", catalog.ModeDelta, vendors)
			loadFile(t, d, "items", catalog.ModeDelta, items)
			sent(t, d)
			loadFile(t, d, "vendors", catalog.ModeFull, vendorsLess)
			loadFile(t, d, "items", catalog.ModeFull, itemsLess)
			var file int64
			err := d.Tx(ctx, true, func(conn *sql.Conn) error {
				file = newFile(t, conn, trigger.FileWriting)
				for _, code := range []string{trigger.CodeVendor, trigger.CodeItem} {
					if _, _, err := trigger.Claim(ctx, conn, code, file, 0, 0); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			loadFile(t, d, "vendors", catalog.ModeDelta, vendors)
			loadFile(t, d, "items", catalog.ModeDelta, items)
			wantNotProcessed(t, d, row{"VND", "V2", "", "D", "processing"}, row{"SKU", "IT1", "RED", "D", "processing"},
				row{"VND", "V2", "", "A", "ready"}, row{"SKU", "IT1", "RED", "A", "ready"})
			loadFile(t, d, "vendors", catalog.ModeFull, vendorsLess)
			loadFile(t, d, "items", catalog.ModeFull, itemsLess)
			wantNotProcessed(t, d, row{"VND", "V2", "", "D", "processing"}, row{"SKU", "IT1", "RED", "D", "processing"})
			if finished {
				wantKeys(t, d, `SELECT vendor FROM vendors WHERE deleted_at IS NOT NULL`, "V2")
				wantKeys(t, d, `SELECT item || '/' || sku FROM skus WHERE deleted_at IS NOT NULL`, "IT1/RED")
				exec(t, d, `UPDATE files SET status = 'complete' WHERE id = ?`, file)
				if err := trigger.PurgeTombstones(ctx, d, file); err != nil {
					t.Fatal(err)
				}
				wantKeys(t, d, `SELECT vendor FROM vendors ORDER BY 1`, "V1")
				wantKeys(t, d, `SELECT item || '/' || sku FROM skus ORDER BY 1`, "IT1/BLUE")
				wantNotProcessed(t, d)
				return
			}
			unclaim(t, d, file)
			for _, code := range []string{trigger.CodeVendor, trigger.CodeItem} {
				if n, err := trigger.MarkMissing(ctx, d, code); err != nil || n != 0 {
					t.Errorf("MarkMissing %s = %d, %v; want 0: the records of the deletes given back are there", code, n, err)
				}
			}
			wantNotProcessed(t, d, row{"VND", "V2", "", "D", "ready"}, row{"SKU", "IT1", "RED", "D", "ready"})
			wantKeys(t, d, `SELECT vendor || ' ' || name FROM vendors WHERE deleted_at IS NOT NULL`, "V2 Two")
			wantKeys(t, d, `SELECT item || '/' || sku FROM skus WHERE deleted_at IS NOT NULL`, "IT1/RED")
		})
	}
}

// wantNotProcessed checks the triggers that are not processed, as
// trigger list shows them, in id order.
func wantNotProcessed(t *testing.T, d *db.DB, want ...row) {
	t.Helper()
	var got []row
	for _, r := range all(t, d) {
		if r.Status != trigger.StatusProcessed {
			got = append(got, r)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("triggers not processed:\n  got  %v\n  want %v", got, want)
	}
}
