package trigger_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

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

	_, release := dbtest.Hold(t, d, `SELECT 1 FROM triggers WHERE record_key = 'V2' AND status = 'ready' FOR UPDATE`)
	done := make(chan error, 1)
	go func() {
		done <- d.Tx(ctx, true, func(conn *sql.Conn) error { return trigger.Unclaim(ctx, conn, file) })
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		t.Fatalf("%d sessions wait on a lock, want Unclaim's combining step to wait for V2", waiting)
	}
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
