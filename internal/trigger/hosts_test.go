package trigger_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// TestUnclaimWhileFolded: an export file given back on PostgreSQL (a
// write that failed, the recovery of a dead run's file) while loads on
// other hosts fold new changes of its records: the giving back waits for
// them, and then folds each claimed trigger into the new one as the
// earlier change, as on SQLite when the loads come first (an add not
// sent, then a change: an add; a delete, then an add: a change). Unseen
// when the steps read the pending triggers, a load's trigger failed the
// claimed one's return to ready on triggers_pending, a database error
// (exit 1) with the triggers left claimed.
func TestUnclaimWhileFolded(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	file := newFile(t, d, trigger.FileWriting)
	exec(t, d, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, attempts, file_id, created_at, updated_at, processed_at)
VALUES ('VND', 'V1', '', 'A', 'processed', 1, ?1, ?2, ?2, ?2), ('VND', 'V2', '', 'D', 'processed', 1, ?1, ?2, ?2, ?2)`, file, db.Now())

	var loads []*sql.Conn
	for _, change := range []struct{ key, capture string }{{"V1", trigger.Changed}, {"V2", trigger.Added}} {
		load := begin(t, d)
		if n, err := trigger.Fold(ctx, load, trigger.CodeVendor, oneChange, change.key, "", change.capture); err != nil || n != 1 {
			t.Fatalf("fold %s = %d, %v; want 1", change.key, n, err)
		}
		loads = append(loads, load)
	}
	done := make(chan error, 1)
	go func() {
		done <- d.Tx(ctx, true, func(conn *sql.Conn) error { return trigger.Unclaim(ctx, conn, file) })
	}()
	for _, load := range loads {
		if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
			select {
			case err := <-done:
				t.Fatalf("Unclaim did not wait for the load: it ended with %v", err)
			default:
				t.Fatalf("%d sessions wait on a lock, want the giving back to wait for the load", waiting)
			}
		}
		commit(t, load)
	}
	if err := <-done; err != nil {
		t.Fatalf("Unclaim: %v", err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady},
		row{trigger.CodeVendor, "V2", "", trigger.Changed, trigger.StatusReady})
}

// TestFoldWhileClaimed: a change folded on PostgreSQL into a record whose
// pending trigger an export on another host is claiming at that moment
// waits for the claim, and then makes a trigger of its own: the claimed
// one is processing, and takes no fold (it would not be sent again), so
// the change goes in the next file. A claim that meets a trigger a fold
// holds passes over it instead (TestClaimSkipsLockedTriggers).
func TestFoldWhileClaimed(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	seed(t, d, trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady, "", "")
	claim := begin(t, d)
	if _, n, err := trigger.Claim(ctx, claim, trigger.CodeVendor, newFile(t, claim, trigger.FileWriting), 0, 0); err != nil || n != 1 {
		t.Fatalf("claim = %d, %v; want 1", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := trigger.Fold(ctx, d, trigger.CodeVendor, oneChange, "V1", "", trigger.Changed)
		done <- err
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		t.Fatalf("%d sessions wait on a lock, want the fold to wait for the claim", waiting)
	}
	commit(t, claim)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusProcessing},
		row{trigger.CodeVendor, "V1", "", trigger.Changed, trigger.StatusReady})
}

// TestUnclaimFoldBetweenSteps: a fold that another host commits while
// Unclaim combines the file's claimed triggers into pending ones (one
// snapshot) is not lost: the claimed add of V1 and the new change of V1
// end as one add, as on SQLite in either order. When the combining UPDATE
// and the DELETE of the claimed triggers with a pending one were two
// statements, the DELETE saw the fold the UPDATE had not: the claimed add
// went without being combined, and V1's pending trigger stayed a C, for
// a record the partner never received. Here the combining step is held
// on V2's pending trigger, locked by the test, while the fold of V1
// commits.
func TestUnclaimFoldBetweenSteps(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	file := newFile(t, d, trigger.FileWriting)
	exec(t, d, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, attempts, file_id, created_at, updated_at, processed_at)
VALUES ('VND', 'V1', '', 'A', 'processed', 1, ?1, ?2, ?2, ?2), ('VND', 'V2', '', 'C', 'processed', 1, ?1, ?2, ?2, ?2)`, file, db.Now())
	seed(t, d, trigger.CodeVendor, "V2", "", trigger.Changed, trigger.StatusReady, "", "")

	done, release := unclaimHeldOnV2(t, d, file)
	load := begin(t, d)
	if n, err := trigger.Fold(ctx, load, trigger.CodeVendor, oneChange, "V1", "", trigger.Changed); err != nil || n != 1 {
		t.Fatalf("fold V1 = %d, %v; want 1", n, err)
	}
	commit(t, load)
	release()
	if err := <-done; err != nil {
		t.Fatalf("Unclaim: %v", err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V2", "", trigger.Changed, trigger.StatusReady},
		row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady})
}

// unclaimHeldOnV2 starts giving back export file file's triggers on d,
// in a transaction of their own, and returns once the combining step
// waits on V2's pending trigger, which it holds until release; done has
// Unclaim's error.
func unclaimHeldOnV2(t *testing.T, d *db.DB, file int64) (done chan error, release func()) {
	t.Helper()
	ctx := context.Background()
	_, release = dbtest.Hold(t, d, `SELECT 1 FROM triggers WHERE record_key = 'V2' AND status = 'ready' FOR UPDATE`)
	done = make(chan error, 1)
	go func() {
		done <- d.Tx(ctx, true, func(conn *sql.Conn) error { return trigger.Unclaim(ctx, conn, file) })
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		t.Fatalf("%d sessions wait on a lock, want Unclaim's combining step to wait for V2", waiting)
	}
	return done, release
}
