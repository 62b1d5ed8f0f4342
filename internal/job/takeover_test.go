package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	dbtest.WritersAtOnce(t)
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

// TestRunStopsWhenItsLockIsTakenOver: a run whose locks another run took
// over (its renewals did not reach the database for locks.ttl: a host
// paused, cut off from the database, or too slow, judged dead) stops
// at its next renewal instead of running on beside the run that now
// holds them: its step is stopped, the later steps do not start, and it
// exits 75, saying which locks it lost and to whom. Renewing them
// silently, it ran on, a job twice at once.
func TestRunStopsWhenItsLockIsTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := openDB(t)
	taken := make(chan struct{})
	f := &fakeExec{during: func(ctx context.Context, s Step, run int64) (bool, int, error) {
		if s.Index != 1 {
			return false, 0, nil
		}
		// Another host took the job's locks over from this run.
		other, err := ledger.InsertRun(ctx, d, ledger.Run{Command: "run j", Job: "j"})
		if err != nil {
			t.Error(err)
		}
		sqlExec(t, d, `UPDATE locks SET run_id = ?, host = 'int2', pid = 4242 WHERE run_id = (SELECT parent_id FROM runs WHERE id = ?)`, other, run)
		close(taken)
		select {
		case <-ctx.Done():
			return true, 1, fmt.Errorf("export step1: %w", context.Cause(ctx))
		case <-time.After(10 * time.Second):
			return true, 0, nil
		}
	}}
	o := opts()
	o.TTL = time.Second // a renewal every 250 ms
	t0 := time.Now()
	res, err := Run(ctx, d, testPlan("j", 2), o, f.exec)
	<-taken
	if el := time.Since(t0); el > 5*time.Second {
		t.Errorf("the run went on for %s after its locks were taken over", el)
	}
	if !errors.Is(err, ErrLockLost) || !errors.Is(err, ErrBusy) ||
		!strings.Contains(err.Error(), "job:j") || !strings.Contains(err.Error(), "int2") {
		t.Fatalf("Run error %v, want ErrLockLost (busy) naming the lock and the host that took it", err)
	}
	if res.ExitCode != 75 || res.Status != ledger.RunFailed || len(res.Steps) != 1 || res.Skipped != 1 {
		t.Errorf("result = exit %d status %s steps %d skipped %d; want exit 75, failed, step 1 stopped, step 2 skipped",
			res.ExitCode, res.Status, len(res.Steps), res.Skipped)
	}
	if got := lockNames(t, d); len(got) != 2 || got["job:j"] == res.RunID {
		t.Errorf("locks after the run: %v, want both still the other run's (the lost run released none of them)", got)
	}
}
