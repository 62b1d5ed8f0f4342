package transfer

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Parallel files write their ledger rows without opening connections:
// through the pool, each write beyond its two idle connections opened one
// (reading the schema, preparing the statement again) and closed it after.
func TestStmtsWritesKeepOneConnection(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	s := newStmts(d)
	before := d.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tr := ledger.Transfer{Site: "s", Direction: "push", RemotePath: filepath.Join("d", string(rune('a'+g)), string(rune('a'+i)))}
				id, err := ledger.StartTransfer(ctx, s, tr)
				if err == nil {
					err = ledger.EndTransfer(ctx, s, id, ledger.TransferDone, 1, "x", nil)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if closed := d.Stats().MaxIdleClosed - before.MaxIdleClosed; closed != 0 {
		t.Errorf("%d connections opened and closed again for 800 writes", closed)
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM transfers WHERE status = 'done'`).Scan(&n); err != nil || n != 400 {
		t.Errorf("%d done transfers (%v), want 400", n, err)
	}
}
