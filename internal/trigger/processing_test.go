package trigger_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/trigger"
)

// A claim stores its triggers processed; what they are follows their
// file: processing while it is being written or written, processed once
// it is complete. List, its filters and Get say so; Unclaim gives back the
// triggers of an unfinished file only; the tombstone of a delete being
// sent stays until its file is complete; Purge keeps them meanwhile,
// however old their claim.
func TestProcessingFollowsFile(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	now := db.Now()
	exec(t, d, `INSERT INTO vendors(vendor, name, deleted_at, created_at, updated_at) VALUES ('V1', 'a', ?1, ?1, ?1), ('V2', 'b', ?1, ?1, ?1), ('V3', 'c', ?1, ?1, ?1)`, now)
	claimed := ago(30 * 24 * time.Hour)
	writing, done := newFile(t, d, "writing"), newFile(t, d, "complete")
	exec(t, d, `UPDATE files SET name = 'w.xml' WHERE id = ?`, writing)
	exec(t, d, `UPDATE files SET name = 'c.xml' WHERE id = ?`, done)
	ins := `INSERT INTO triggers(file_code, record_key, capture, status, attempts, file_id, created_at, updated_at, processed_at) VALUES ('VND', ?, 'D', 'processed', 1, ?, ?, ?, ?)`
	exec(t, d, ins, "V1", writing, claimed, claimed, claimed)
	exec(t, d, ins, "V2", done, claimed, claimed, claimed)
	exec(t, d, ins, "V3", nil, claimed, claimed, claimed) // its file purged long ago

	checkRows(t, "all", listed(t, d, ""), []string{"V1|processing|w.xml|", "V2|processed|c.xml|" + claimed, "V3|processed||" + claimed})
	checkRows(t, "processing", listed(t, d, trigger.StatusProcessing), []string{"V1|processing|w.xml|"})
	checkRows(t, "processed", listed(t, d, trigger.StatusProcessed), []string{"V2|processed|c.xml|" + claimed, "V3|processed||" + claimed})
	if tr, err := trigger.Get(ctx, d, 1); err != nil || tr.Status != trigger.StatusProcessing || tr.ProcessedAt != "" {
		t.Errorf("Get = %+v, %v; want processing, without processed_at", tr, err)
	}

	// Purge keeps V1, whose file is not finished; V2 and V3 go, and the
	// tombstones of their deletes, not V1's.
	if n, err := trigger.Purge(ctx, d, 7*24*time.Hour, false); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	checkRows(t, "after the purge", listed(t, d, ""), []string{"V1|processing|w.xml|"})
	wantKeys(t, d, `SELECT vendor FROM vendors ORDER BY 1`, "V1")

	// Written: still processing. Unclaim of a complete file changes
	// nothing; of the written one, gives its trigger back.
	exec(t, d, `UPDATE files SET status = 'written' WHERE id = ?`, writing)
	checkRows(t, "written", listed(t, d, ""), []string{"V1|processing|w.xml|"})
	exec(t, d, `UPDATE triggers SET file_id = ?`, done)
	if err := trigger.Unclaim(ctx, d, done); err != nil {
		t.Fatal(err)
	}
	checkRows(t, "Unclaim of a complete file", listed(t, d, ""), []string{"V1|processed|c.xml|" + claimed})
	exec(t, d, `UPDATE triggers SET file_id = ?`, writing)
	if err := trigger.Unclaim(ctx, d, writing); err != nil {
		t.Fatal(err)
	}
	checkRows(t, "Unclaim of a written file", listed(t, d, ""), []string{"V1|ready||"})

	// Complete: processed, and the tombstone no longer needed.
	exec(t, d, `UPDATE triggers SET status = 'processed', file_id = ?, processed_at = ?`, writing, claimed)
	exec(t, d, `UPDATE files SET status = 'complete' WHERE id = ?`, writing)
	checkRows(t, "complete", listed(t, d, ""), []string{"V1|processed|w.xml|" + claimed})
	if err := trigger.PurgeTombstones(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, d, `SELECT vendor FROM vendors ORDER BY 1`)
}

// A trigger claimed the way versions before migration 0022 claim, stored
// processing (their processes may outlive the upgrade), is a claim here
// too: shown and listed processing, refused by Delete, kept by Purge
// however old, its delete's tombstone kept, and given back by Unclaim;
// CompleteLegacy makes it processed, at its claim's time, when its file
// is complete. A claim of this version in the same file is not touched by
// CompleteLegacy.
func TestLegacyProcessing(t *testing.T) {
	ctx := context.Background()
	d := openDB(t)
	now := db.Now()
	exec(t, d, `INSERT INTO vendors(vendor, name, deleted_at, created_at, updated_at) VALUES ('V1', 'a', ?1, ?1, ?1), ('V2', 'b', ?1, ?1, ?1)`, now)
	claimed := ago(30 * 24 * time.Hour)
	file := newFile(t, d, "writing")
	exec(t, d, `UPDATE files SET name = 'w.xml' WHERE id = ?`, file)
	var id int64
	if err := d.QueryRowContext(ctx, `INSERT INTO triggers(file_code, record_key, capture, status, attempts, file_id, created_at, updated_at)
VALUES ('VND', 'V1', 'D', 'processing', 1, ?1, ?2, ?2) RETURNING id`, file, claimed).Scan(&id); err != nil {
		t.Fatal(err)
	}
	checkRows(t, "all", listed(t, d, ""), []string{"V1|processing|w.xml|"})
	checkRows(t, "processing", listed(t, d, trigger.StatusProcessing), []string{"V1|processing|w.xml|"})
	checkRows(t, "processed", listed(t, d, trigger.StatusProcessed), nil)
	if _, err := trigger.Delete(ctx, d, []int64{id}); err == nil || !strings.Contains(err.Error(), "being processed") {
		t.Errorf("Delete of a trigger claimed the older way: %v, want it refused", err)
	}
	if n, err := trigger.Purge(ctx, d, 7*24*time.Hour, false); err != nil || n != 0 {
		t.Errorf("Purge = %d, %v; want 0", n, err)
	}
	if err := trigger.PurgeTombstones(ctx, d, 0); err != nil {
		t.Fatal(err)
	}
	wantKeys(t, d, `SELECT vendor FROM vendors ORDER BY 1`, "V1")

	if err := trigger.Unclaim(ctx, d, file); err != nil {
		t.Fatal(err)
	}
	checkRows(t, "after Unclaim", listed(t, d, ""), []string{"V1|ready||"})

	// Claimed again the older way, with V2 claimed this version's way.
	exec(t, d, `UPDATE triggers SET status = 'processing', file_id = ?1, updated_at = ?2`, file, claimed)
	exec(t, d, `INSERT INTO triggers(file_code, record_key, capture, status, attempts, file_id, created_at, updated_at, processed_at)
VALUES ('VND', 'V2', 'D', 'processed', 1, ?1, ?2, ?2, ?2)`, file, now)
	if err := trigger.CompleteLegacy(ctx, d, file); err != nil {
		t.Fatal(err)
	}
	exec(t, d, `UPDATE files SET status = 'complete' WHERE id = ?`, file)
	checkRows(t, "complete", listed(t, d, ""), []string{"V1|processed|w.xml|" + claimed, "V2|processed|w.xml|" + now})
}

// listed lists the triggers in status ("" for all) as trigger list shows
// them: key, status, file, processed_at.
func listed(t *testing.T, d *db.DB, status string) []string {
	t.Helper()
	var got []string
	err := trigger.List(context.Background(), d, trigger.Filter{Status: status}, func(tr trigger.Trigger) error {
		got = append(got, tr.Key+"|"+tr.Status+"|"+tr.File+"|"+tr.ProcessedAt)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}
