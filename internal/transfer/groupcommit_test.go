package transfer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// openStmts opens a test database and a run's statements on it.
func openStmts(t *testing.T) (*db.DB, *stmts) {
	d := dbtest.Open(t)
	s := newStmts(d)
	t.Cleanup(s.Close)
	return d, s
}

// column reads one column of the ledger row id.
func column(t *testing.T, d *db.DB, col string, id int64) string {
	t.Helper()
	var v string
	if err := d.QueryRowContext(context.Background(), `SELECT `+col+` FROM transfers WHERE id = ?`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// groupRun starts n workers of a run on s, as inParallel does, whose
// writes wait for each other without a time limit; each runs do, then
// ends.
func groupRun(s *stmts, n int, do func(w *worker, i int)) {
	s.group.wait = time.Hour
	s.group.join(n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.group.leave()
			w := &worker{stmts: s}
			do(w, i)
			w.finish()
		}()
	}
	wg.Wait()
}

// The workers' held rows are committed together, after one sync of the
// folder they need synced, and each then runs once its row is committed.
func TestWorkersCommitHeldRowsTogether(t *testing.T) {
	ctx := context.Background()
	d, s := openStmts(t)
	var syncs atomic.Int32
	dir := &groupSync{sync: func() error { syncs.Add(1); return nil }}
	ids := make([]int64, groupSize)
	for i := range ids {
		id, err := ledger.StartTransfer(ctx, s, ledger.Transfer{Site: "s", Direction: "pull", RemotePath: fmt.Sprint("f", i), Stage: ledger.StageRename})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	seen := make([]string, groupSize)
	groupRun(s, groupSize, func(w *worker, i int) {
		w.holdSynced(ctx, dir, func(ctx context.Context, lw ledger.Writer) error {
			return ledger.EndTransfer(ctx, lw, ids[i], ledger.TransferDone, 1, "x", nil)
		}, func(err error) { seen[i] = fmt.Sprint(column(t, d, "status", ids[i]), " ", err) })
	})
	for i, got := range seen {
		if got != "done <nil>" {
			t.Errorf("file %d: then saw %q, want its row done", i, got)
		}
	}
	if n := syncs.Load(); n != 1 {
		t.Errorf("%d folder syncs for %d files committed together, want 1", n, groupSize)
	}

	// A sync that fails keeps the rows from being done.
	syncErr := errors.New("no sync")
	bad := &groupSync{sync: func() error { return syncErr }}
	var got error
	groupRun(s, 1, func(w *worker, i int) {
		w.holdSynced(ctx, bad, func(ctx context.Context, lw ledger.Writer) error {
			return ledger.StageTransfer(ctx, lw, ids[0], "temp", "", "")
		}, func(err error) { got = err })
	})
	if stage := column(t, d, "stage", ids[0]); !errors.Is(got, syncErr) || stage != ledger.StageRename {
		t.Errorf("failed sync: then got %v, stage %s, want the sync's error and the row unchanged", got, stage)
	}
}

// Writes committed together fail each on its own: one worker's failing
// write is its error only, and the others' rows stand.
func TestGroupedWriteFailsAlone(t *testing.T) {
	ctx := context.Background()
	d, s := openStmts(t)
	ids := make([]int64, groupSize)
	errs := make([]error, groupSize)
	groupRun(s, groupSize, func(w *worker, i int) {
		if i == 1 {
			_, errs[i] = w.ExecContext(ctx, `UPDATE no_such_table SET x = 1`)
			return
		}
		ids[i], errs[i] = ledger.StartTransfer(ctx, w, ledger.Transfer{Site: "s", Direction: "push", RemotePath: fmt.Sprint("f", i)})
	})
	for i, err := range errs {
		if (err != nil) != (i == 1) {
			t.Errorf("write %d: error %v", i, err)
		}
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM transfers`).Scan(&n); err != nil || n != groupSize-1 {
		t.Errorf("%d rows (%v), want %d", n, err, groupSize-1)
	}
}

// A write does not wait for a worker that has ended.
func TestGroupedWriteDoesNotWaitForEndedWorkers(t *testing.T) {
	ctx := context.Background()
	_, s := openStmts(t)
	done := make(chan error, 1)
	go groupRun(s, 3, func(w *worker, i int) {
		if i == 0 {
			_, err := ledger.StartTransfer(ctx, w, ledger.Transfer{Site: "s", Direction: "push", RemotePath: "a"})
			done <- err
		}
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the write waited for workers that had ended")
	}
}
