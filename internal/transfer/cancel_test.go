package transfer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// TestCancelMidStatement: a run cancelled while one of its ledger writes
// runs (SIGINT, a job's timeout) keeps its write connection: the other
// workers' held done rows and the run's later writes are committed. On
// PostgreSQL pgx closed the connection on the cancel, and every later
// write of the run failed with "connection is already closed" (found in
// review), reporting delivered files failed.
func TestCancelMidStatement(t *testing.T) {
	ctx := context.Background()
	d, s := openStmts(t)
	slow := `SELECT pg_sleep(0.3)`
	if d.Dialect != db.Postgres {
		slow = `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 3000000) SELECT count(*) FROM c`
	}
	ids := make([]int64, 8)
	for i := range ids {
		id, err := ledger.StartTransfer(ctx, s, ledger.Transfer{Site: "s", Direction: "pull", RemotePath: fmt.Sprint("f", i), Stage: ledger.StageRename})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	thenErr := make([]error, 8)
	groupRun(s, 8, func(w *worker, i int) {
		if i == 0 {
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			w.ExecContext(cctx, slow)
			return
		}
		w.hold(ctx, func(ctx context.Context, lw ledger.Writer) error {
			return ledger.EndTransfer(ctx, lw, ids[i], ledger.TransferDone, 1, "x", nil)
		}, func(err error) { thenErr[i] = err })
	})
	for i := 1; i < 8; i++ {
		if st := column(t, d, "status", ids[i]); thenErr[i] != nil || st != ledger.TransferDone {
			t.Errorf("file %d: %v, row %s; want done", i, thenErr[i], st)
		}
	}
	if _, err := ledger.StartTransfer(ctx, s, ledger.Transfer{Site: "s", Direction: "pull", RemotePath: "after"}); err != nil {
		t.Errorf("the run's next write after the cancel: %v", err)
	}
	// A write asked for once the run is cancelled is not made.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := ledger.StartTransfer(cctx, s, ledger.Transfer{Site: "s", Direction: "pull", RemotePath: "late"}); err == nil {
		t.Errorf("a write after the cancel was made")
	}
}
