package imports

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestConcurrentImportsInTurn: on PostgreSQL two imports of different
// files run at once (two hosts, or two processes of one), and each reads
// the stock it changes before it writes it: DC1 A01-01 (62) +5 and +3,
// DC1 NEW (not there) +4 and +2. The first to write its rows commits;
// the other finds them changed since it read them and fails, busy, with
// nothing applied, and applies whole when run again: 70 and 6, as one
// after the other. Writing the balance each had worked out from what it
// read, the second wiped out the first's change (65 and 2); writing each
// file's change added to the row kept the stock right but worked the
// negative stock check, the history and the threshold rule of the
// inventory triggers out from a stock that was no longer there. SQLite
// applies one import at a time.
func TestConcurrentImportsInTurn(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SQLite applies one import at a time")
	}
	f := newTxnFixture(t)
	ctx := context.Background()
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 62 {
		t.Fatalf("on hand before: %d, want 62", got)
	}
	paths := []string{
		f.write("a.csv", txnHead+"A,IT0000001,BLK-8,DC1,A01-01,+5\nA,IT0000001,BLK-8,DC1,NEW,+4\n"),
		f.write("b.csv", txnHead+"A,IT0000001,BLK-8,DC1,A01-01,+3\nA,IT0000001,BLK-8,DC1,NEW,+2\n"),
	}
	// A transaction of the test holds the stock row: both imports read it
	// and wait to lock it, then go on once it lets go.
	_, release := dbtest.Hold(t, f.d, `SELECT on_hand FROM inventory WHERE item = 'IT0000001' AND sku = 'BLK-8' AND warehouse = 'DC1' AND location = 'A01-01' FOR UPDATE`)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range paths {
		// Each as a host of its own, which waits for a lock up to 10 s.
		d := dbtest.OpenAgain(t, f.d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ImportTransactions(ctx, d, p, Options{})
		}()
	}
	if waiting := dbtest.LockWaiters(t, f.d, 2); waiting != 2 {
		release()
		wg.Wait()
		t.Fatalf("%d imports wait for the stock row, want 2 (errors: %v)", waiting, errs)
	}
	release()
	wg.Wait()
	failed := -1
	for i, err := range errs {
		switch {
		case err == nil:
		case errors.Is(err, db.ErrBusy) && failed < 0:
			failed = i
		default:
			t.Fatalf("import %d: %v", i+1, err)
		}
	}
	if failed < 0 {
		t.Fatalf("both imports applied on the stock they read")
	}
	if n := f.count(`SELECT count(*) FROM files WHERE kind = 'inventory-transactions'`); n != 1 {
		t.Errorf("%d files in the ledger after one import failed, want 1", n)
	}
	if _, err := ImportTransactions(ctx, f.d, paths[failed], Options{}); err != nil {
		t.Fatalf("the failed import again: %v", err)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 70 {
		t.Errorf("on hand in DC1 A01-01: %d, want 70 (62 +5 +3)", got)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "NEW"); got != 6 {
		t.Errorf("on hand in DC1 NEW: %d, want 6 (+4 +2)", got)
	}
	if n := f.count(`SELECT count(*) FROM inventory_txns`); n != 4 {
		t.Errorf("%d history rows, want 4", n)
	}
}

// TestHistoryStreamCancelled: on PostgreSQL the history of a file
// streams into one COPY while the applier reads on a second connection;
// a cancel in the middle of the COPY keeps nothing of the file and gives
// both connections back.
func TestHistoryStreamCancelled(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("the history streams on PostgreSQL")
	}
	f := newTxnFixture(t)
	var b strings.Builder
	b.WriteString(txnHead)
	for range 40 * historyPerCopy {
		b.WriteString("R,IT0000001,BLK-8,DC1,A01-01,1\n")
	}
	p := f.write("many.csv", b.String())
	before := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01")
	goroutines := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := ImportTransactions(ctx, f.d, p, Options{})
		errc <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		var copying, reading int
		if err := f.d.QueryRow(`SELECT count(*) FILTER (WHERE query LIKE 'COPY inventory_txns%' AND state = 'active'),
  count(*) FILTER (WHERE state = 'idle' AND (query LIKE 'SELECT k.item, k.sku%' OR query LIKE 'SELECT 1 FROM warehouses%'))
FROM pg_stat_activity WHERE datname = current_database()`).Scan(&copying, &reading); err != nil {
			t.Fatal(err)
		}
		if copying == 1 && reading == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the import streamed no history beside its reads (%d COPY, %d reading)", copying, reading)
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled import: %v, want context.Canceled", err)
	}
	f.nothingKept("a cancelled file", "many.csv", before)
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("goroutines after the import: %d, before %d", n, goroutines)
	}
	if n := f.d.Stats().InUse; n != 0 {
		t.Errorf("connections in use after the import: %d", n)
	}
}
