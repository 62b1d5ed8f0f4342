package trigger_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// loadBack begins, on a connection of its own, what a load on another
// host does to a vendor removed without a tombstone: it adds the vendor
// again and folds its add. The load is left open, for the test to commit.
func loadBack(t *testing.T, d *db.DB, vendor string) *sql.Conn {
	t.Helper()
	load := begin(t, d)
	ctx := context.Background()
	if _, err := load.ExecContext(ctx, `INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES (?1, 'Back', ?2, ?2)`, vendor, db.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := trigger.Fold(ctx, load, trigger.CodeVendor, oneChange, vendor, "", trigger.Added); err != nil || n != 1 {
		t.Fatalf("fold %s = %d, %v; want 1", vendor, n, err)
	}
	return load
}

// markWhileLoaded runs mark in a write transaction while load, which
// holds what mark needs, is open; mark must wait for it, and ends once
// load commits. It returns mark's count and error.
func markWhileLoaded(t *testing.T, d *db.DB, load *sql.Conn, mark func(*sql.Conn) (int64, error)) (int64, error) {
	t.Helper()
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.err = d.Tx(context.Background(), true, func(conn *sql.Conn) error {
			var err error
			r.n, err = mark(conn)
			return err
		})
		done <- r
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		select {
		case r := <-done:
			t.Fatalf("the check did not wait for the load: it ended with %d, %v", r.n, r.err)
		default:
			t.Fatalf("%d sessions wait on a lock, want the check to wait for the load", waiting)
		}
	}
	commit(t, load)
	r := <-done
	return r.n, r.err
}

// TestMarkMissingClaimedWhileLoaded: an export on PostgreSQL checks the
// triggers of its file whose record is gone (the record of V1 was removed
// without a tombstone) while a load on another host adds V1 again, with a
// new pending add. The check waits for the load, and then sees V1: its
// claimed trigger stays in the file, as on SQLite when the load comes
// first. Put in error, the claimed trigger met the load's on
// triggers_pending: a raw unique violation (exit 1).
func TestMarkMissingClaimedWhileLoaded(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	file := newFile(t, d, trigger.FileWriting)
	exec(t, d, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, attempts, file_id, created_at, updated_at, processed_at)
VALUES ('VND', 'V1', '', 'A', 'processed', 1, ?1, ?2, ?2, ?2)`, file, db.Now())
	load := loadBack(t, d, "V1")
	n, err := markWhileLoaded(t, d, load, func(conn *sql.Conn) (int64, error) {
		return trigger.MarkMissingClaimed(ctx, conn, trigger.CodeVendor, file)
	})
	if err != nil || n != 0 {
		t.Fatalf("MarkMissingClaimed = %d, %v; want 0 (V1 is back)", n, err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusProcessing},
		row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady})
}

// TestMarkMissingWhileLoaded: an export on PostgreSQL checks the ready
// triggers whose record is gone (V1, removed without a tombstone) while a
// load on another host adds V1 again and folds into V1's trigger. The
// check waits for the load, and then sees V1: its trigger stays ready, as
// on SQLite in either order. The check read V1 missing in the snapshot
// of its start, and put the load's add in error, "record not found", for
// a record that is there: a change never sent.
func TestMarkMissingWhileLoaded(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	seed(t, d, trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady, "", "")
	load := loadBack(t, d, "V1")
	n, err := markWhileLoaded(t, d, load, func(conn *sql.Conn) (int64, error) {
		return trigger.MarkMissing(ctx, conn, trigger.CodeVendor)
	})
	if err != nil || n != 0 {
		t.Fatalf("MarkMissing = %d, %v; want 0 (V1 is back)", n, err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady})
}

// TestGenerateWhileCreated: trigger generate on PostgreSQL while a load
// on another host adds vendors (V4, V5) whose adds an export has sent
// since: the counts are those of one state, the records selected being
// those the triggers were created for. Counted in a statement before the
// insert, the selected records were those before the load, and the
// skipped ones, the difference, -2. The load commits while Generate
// waits on the lock the test holds on the triggers table, as it would
// between two statements.
func TestGenerateWhileCreated(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	seedRecords(t, d)
	load := begin(t, d)
	if _, err := load.ExecContext(ctx, `LOCK TABLE triggers IN SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	var got trigger.GenerateResult
	go func() {
		var err error
		got, err = trigger.Generate(ctx, d, trigger.GenerateOptions{Kind: "vendor"})
		done <- err
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		t.Fatalf("%d sessions wait on a lock, want Generate to wait for the load", waiting)
	}
	for _, q := range []string{
		`INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V4','Four',?1,?1), ('V5','Five',?1,?1)`,
		`INSERT INTO triggers(file_code, record_key, sub_key, capture, status, attempts, created_at, updated_at, processed_at)
VALUES ('VND', 'V4', '', 'A', 'processed', 1, ?1, ?1, ?1), ('VND', 'V5', '', 'A', 'processed', 1, ?1, ?1, ?1)`,
	} {
		if _, err := load.ExecContext(ctx, q, db.Now()); err != nil {
			t.Fatal(err)
		}
	}
	commit(t, load)
	if err := <-done; err != nil {
		t.Fatalf("Generate: %v", err)
	}
	if want := (trigger.GenerateResult{FileCode: "VND", Selected: 4, Created: 4}); got != want {
		t.Errorf("Generate = %+v, want %+v", got, want)
	}
}
