package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// backends are where the upgrade tests run, each database new.
var backends = []struct {
	name   string
	target func(t *testing.T) string
}{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "posbridge.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
}

// listed lists the triggers as trigger list shows them: key, status,
// file, processed_at.
func listed(t *testing.T, d *db.DB) []string {
	t.Helper()
	var got []string
	err := trigger.List(context.Background(), d, trigger.Filter{}, func(tr trigger.Trigger) error {
		got = append(got, tr.Key+"|"+tr.Status+"|"+tr.File+"|"+tr.ProcessedAt)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// openBefore22 is a fixture on the database target with the schema
// before migration 0022, as an older version left it, and a function that
// runs a statement on it.
func openBefore22(t *testing.T, target string) (*fixture, func(q string, args ...any)) {
	d := dbtest.OpenBefore(t, target, 22)
	return &fixture{t: t, d: d, dir: t.TempDir()}, func(q string, args ...any) {
		t.Helper()
		if _, err := d.ExecContext(context.Background(), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A file that a version before migration 0022 claimed, whose run died,
// is recovered after the upgrade as before it: its triggers, stored
// processing then, show as processing until the next run, which gives
// them back and sends them again when the file was still being written,
// and finishes the file when it was written (sending nothing twice).
func TestUpgradeWithUnfinishedFile(t *testing.T) {
	for _, backend := range backends {
		for _, stop := range []string{fileWriting, fileWritten} {
			t.Run(backend.name+" "+stop, func(t *testing.T) {
				testUpgradeWithUnfinishedFile(t, backend.target(t), stop)
			})
		}
	}
}

func testUpgradeWithUnfinishedFile(t *testing.T, target string, stop string) {
	ctx := context.Background()
	f, exec := openBefore22(t, target)
	d := f.d

	// What the older version's run left: vendors V1 and V2 claimed into
	// file 1 (processing), V3 sent long ago in file 0, V4 ready.
	const at, claimedAt, sentAt = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:05Z"
	for _, v := range []string{"V1", "V2", "V3", "V4"} {
		exec(`INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES (?, ?, ?, ?)`, v, "Vendor "+v, at, at)
	}
	dir := filepath.Join(f.outbox(), "vendors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vendors_20260102T000000Z_000001.xml")
	file := `INSERT INTO files(direction, kind, name, path, sha256, size, records, status, sequence, created_at) VALUES ('out', 'vendors', ?, ?, ?, ?, ?, ?, ?, ?)`
	exec(file, "vendors_20260101T000000Z_000000.xml", filepath.Join(dir, "gone.xml"), "", 0, 1, fileComplete, 0, at)
	var sum string
	var size, records int64
	content := []byte("<Vendors/>\n")
	if stop == fileWritten {
		// Recorded written and renamed into place: delivered.
		if err := os.WriteFile(path, content, 0o640); err != nil {
			t.Fatal(err)
		}
		sum, size, records = "abc", int64(len(content)), 2
	} else if err := os.WriteFile(tmpPath(path), content[:4], 0o640); err != nil {
		t.Fatal(err)
	}
	exec(file, filepath.Base(path), path, sum, size, records, stop, 1, claimedAt)
	exec(`INSERT INTO sequences(kind, last) VALUES ('vendors', 1)`)
	trig := `INSERT INTO triggers(file_code, record_key, capture, status, attempts, file_id, created_at, updated_at, processed_at) VALUES ('VND', ?, 'C', ?, ?, ?, ?, ?, ?)`
	exec(trig, "V1", "processing", 1, 2, at, claimedAt, nil)
	exec(trig, "V2", "processing", 1, 2, at, claimedAt, nil)
	exec(trig, "V3", "processed", 1, 1, at, at, sentAt)
	exec(trig, "V4", "ready", 0, nil, at, at, nil)

	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f.want("the triggers after the upgrade", listed(t, d),
		"V1|processing|"+filepath.Base(path)+"|", "V2|processing|"+filepath.Base(path)+"|",
		"V3|processed|vendors_20260101T000000Z_000000.xml|"+sentAt, "V4|ready||")

	res, err := Run(ctx, d, "vendors", f.opts())
	if err != nil {
		t.Fatal(err)
	}
	f.want("the unfinished file afterwards", f.rows(`SELECT status FROM files WHERE sequence = 1`),
		map[string]string{fileWriting: fileAbandoned, fileWritten: fileComplete}[stop])
	if stop == fileWritten {
		// Finished where it was; only V4 goes out, in file 2.
		if res.Completed != 1 || res.Abandoned != 0 || len(res.Files) != 1 || res.Files[0].Records != 1 {
			t.Fatalf("the run after the upgrade: %+v", res)
		}
		f.want("the triggers", f.rows(`SELECT t.record_key, t.shown, t.attempts, f.sequence, t.processed_at FROM `+shownTriggers+` JOIN files f ON f.id = t.file_id ORDER BY t.record_key`),
			"V1|processed|1|1|"+claimedAt, "V2|processed|1|1|"+claimedAt, "V3|processed|1|0|"+sentAt,
			"V4|processed|1|2|"+f.one(`SELECT updated_at FROM triggers WHERE record_key = 'V4'`))
		return
	}
	// Undone; V1, V2 and V4 go out once, in file 2.
	if res.Completed != 0 || res.Abandoned != 1 || len(res.Files) != 1 || res.Files[0].Records != 3 {
		t.Fatalf("the run after the upgrade: %+v", res)
	}
	if _, err := os.Stat(tmpPath(path)); !os.IsNotExist(err) {
		t.Errorf("the temporary file of the undone file: %v", err)
	}
	f.want("the triggers", f.rows(`SELECT t.record_key, t.shown, t.attempts, f.sequence FROM `+shownTriggers+` JOIN files f ON f.id = t.file_id ORDER BY t.record_key`),
		"V1|processed|2|2", "V2|processed|2|2", "V3|processed|1|0", "V4|processed|1|2")
}

// An export of the version before migration 0022 may still be running
// when a command of this version migrates the database, and may claim
// after it: its SQL (oldClaim, oldUnclaim) knows triggers claimed only as
// processing. Whichever way its file ends, each of its triggers is sent
// once:
//   - claimed before the migration, given back by the old run after it
//     (A): the next run sends them;
//   - claimed after the migration by the old run, which dies while
//     writing (B writing): the next run gives them back and sends them;
//     or once its file is written and in place (B written): the next run
//     finishes the file, and they are processed, not processing forever.
func TestUpgradeUnderOldRun(t *testing.T) {
	for _, backend := range backends {
		for _, c := range []string{"A", "B writing", "B written"} {
			t.Run(backend.name+" "+c, func(t *testing.T) {
				testUpgradeUnderOldRun(t, backend.target(t), c)
			})
		}
	}
}

func testUpgradeUnderOldRun(t *testing.T, target, scenario string) {
	ctx := context.Background()
	f, exec := openBefore22(t, target)
	d := f.d
	const at, claimedAt = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"
	for _, v := range []string{"V1", "V2", "V3"} {
		exec(`INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES (?, ?, ?, ?)`, v, "Vendor "+v, at, at)
		exec(`INSERT INTO triggers(file_code, record_key, capture, status, attempts, created_at, updated_at) VALUES ('VND', ?, 'C', 'ready', 0, ?, ?)`, v, at, at)
	}
	dir := filepath.Join(f.outbox(), "vendors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vendors_20260102T000000Z_000001.xml")
	// The old run records its file, then claims V1 and V2 into it.
	oldClaim := func() {
		exec(`INSERT INTO files(direction, kind, name, path, sha256, size, status, sequence, created_at) VALUES ('out', 'vendors', ?, ?, '', 0, 'writing', 1, ?)`,
			filepath.Base(path), path, claimedAt)
		exec(`INSERT INTO sequences(kind, last) VALUES ('vendors', 1)`)
		exec(`UPDATE triggers SET status = 'processing', file_id = (SELECT id FROM files WHERE sequence = 1), run_id = NULL,
  attempts = attempts + 1, updated_at = ? WHERE file_code = 'VND' AND status = 'ready' AND record_key IN ('V1', 'V2')`, claimedAt)
	}
	if scenario == "A" {
		oldClaim()
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	content := []byte("<Vendors/>\n")
	switch scenario {
	case "A":
		// The old run fails: its abandon gives back its triggers.
		exec(`UPDATE triggers SET status = 'ready', file_id = NULL, run_id = NULL, updated_at = ?
WHERE file_id = (SELECT id FROM files WHERE sequence = 1) AND status = 'processing'`, db.Now())
		exec(`UPDATE files SET status = 'abandoned', error = 'stopped' WHERE sequence = 1`)
	case "B writing":
		oldClaim()
		if err := os.WriteFile(tmpPath(path), content[:4], 0o640); err != nil {
			t.Fatal(err)
		}
	case "B written":
		oldClaim()
		if err := os.WriteFile(path, content, 0o640); err != nil {
			t.Fatal(err)
		}
		exec(`UPDATE files SET status = 'written', sha256 = 'abc', size = ?, records = 2 WHERE sequence = 1`, len(content))
	}

	res, err := Run(ctx, d, "vendors", f.opts())
	if err != nil {
		t.Fatal(err)
	}
	if scenario == "B written" {
		// Finished where it was, V1 and V2 processed at their claim; V3
		// goes out in file 2.
		if res.Completed != 1 || len(res.Files) != 1 || res.Files[0].Records != 1 {
			t.Fatalf("the run after the old one: %+v", res)
		}
		second := filepath.Base(res.Files[0].Path)
		f.want("the triggers", listed(t, d), "V1|processed|"+filepath.Base(path)+"|"+claimedAt, "V2|processed|"+filepath.Base(path)+"|"+claimedAt,
			"V3|processed|"+second+"|"+f.one(`SELECT processed_at FROM triggers WHERE record_key = 'V3'`))
	} else if len(res.Files) != 1 || res.Files[0].Records != 3 {
		// Given back, by the old run (A) or by this one: all three go out
		// in file 2.
		t.Fatalf("the run after the old one: %+v", res)
	}
	f.want("files", f.rows(`SELECT sequence, status FROM files WHERE direction = 'out' ORDER BY sequence`),
		"1|"+map[string]string{"A": fileAbandoned, "B writing": fileAbandoned, "B written": fileComplete}[scenario], "2|"+fileComplete)
	f.want("triggers not processed in a complete file", f.rows(`SELECT t.record_key, t.status, coalesce(f.status, '') FROM triggers t
LEFT JOIN files f ON f.id = t.file_id WHERE t.status <> 'processed' OR f.status IS NULL OR f.status <> 'complete'`))
}
