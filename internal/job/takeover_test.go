package job

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// TestRenewedWhileTakenOver: on PostgreSQL a host takes over a lock
// whose lease has expired while its holder, on another host, renews it
// at that moment. The takeover waits for the renewal, finds the lease
// valid and is busy; the holder keeps its lock and its run. Read
// unlocked, the takeover judged the expired lease it had read and then
// deleted the lock by its name, renewed as it was: two runs held the
// job's lock, and the renewing one was marked failed while it ran on.
func TestRenewedWhileTakenOver(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SQLite runs one write transaction at a time")
	}
	ctx := context.Background()
	d := openDB(t)
	run, _, _ := hold(t, d, holder{job: "j1", host: "elsewhere.invalid", pid: 4242, expires: time.Now().Add(-10 * time.Minute),
		locks: []string{"job:j1"}})
	// The holder's renewal, under way: the lease moved, not committed yet.
	renewal, release := dbtest.Hold(t, d, fmt.Sprintf(`UPDATE locks SET expires_at = '%s' WHERE run_id = %d`,
		time.Now().UTC().Add(time.Hour).Format(db.TimeLayout), run))
	done := make(chan error, 1)
	other := dbtest.OpenAgain(t, d)
	go func() {
		_, _, err := acquire(ctx, other, "j1", []string{"job:j1"}, time.Minute)
		done <- err
	}()
	if waiting := dbtest.LockWaiters(t, d, 1); waiting != 1 {
		release()
		t.Fatalf("%d sessions wait on a lock, want the takeover waiting on the renewal (acquire: %v)", waiting, <-done)
	}
	if _, err := renewal.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; !errors.Is(err, ErrBusy) {
		t.Errorf("takeover of a lock renewed meanwhile: %v, want ErrBusy", err)
	}
	if got := lockNames(t, d); len(got) != 1 || got["job:j1"] != run {
		t.Errorf("locks after the takeover: %v, want job:j1 still held by run %d", got, run)
	}
	if n := count(t, d, `SELECT count(*) FROM runs WHERE id = ? AND status = ?`, run, ledger.RunRunning); n != 1 {
		t.Errorf("the renewing run is no longer running")
	}
}
