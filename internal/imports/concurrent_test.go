package imports

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestConcurrentImportsAddUp: on PostgreSQL two imports of different
// files run at once (two hosts, or two processes of one), and each reads
// the stock it changes before it writes it. What each writes is its
// change, added to the stock as it is when it writes, so that both
// files' changes are in the stock, as if one had been applied after the
// other: DC1 62 (+5, +3) -> 70, and DC1 location NEW, which neither file
// found, 0 (+4, +2) -> 6. Writing the balance each had computed from what
// it read, the second import to commit wiped out the first one's change
// (65 and 2). SQLite applies one at a time.
func TestConcurrentImportsAddUp(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SQLite applies one import at a time")
	}
	f := newTxnFixture(t)
	ctx := context.Background()
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 62 {
		t.Fatalf("on hand before: %d, want 62", got)
	}
	a := f.write("a.csv", txnHead+"A,IT0000001,BLK-8,DC1,A01-01,+5\nA,IT0000001,BLK-8,DC1,NEW,+4\n")
	b := f.write("b.csv", txnHead+"A,IT0000001,BLK-8,DC1,A01-01,+3\nA,IT0000001,BLK-8,DC1,NEW,+2\n")
	// A transaction of the test holds the stock row: both imports read it
	// and wait to write it, then go on once it lets go.
	_, release := dbtest.Hold(t, f.d, `SELECT on_hand FROM inventory WHERE item = 'IT0000001' AND sku = 'BLK-8' AND warehouse = 'DC1' AND location = 'A01-01' FOR UPDATE`)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, p := range []string{a, b} {
		// Each as a host of its own, which waits for a lock up to 10 s.
		d := dbtest.OpenAgain(t, f.d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = ImportTransactions(ctx, d, p, Options{})
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var waiting int
		if err := f.d.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == 2 {
			break
		}
		if time.Now().After(deadline) {
			release()
			wg.Wait()
			t.Fatalf("%d imports wait for the stock row, want 2 (errors: %v)", waiting, errs)
		}
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("import %d: %v", i+1, err)
		}
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "A01-01"); got != 70 {
		t.Errorf("on hand in DC1 A01-01: %d, want 70 (62 +5 +3)", got)
	}
	if got := f.onHand("IT0000001", "BLK-8", "DC1", "NEW"); got != 6 {
		t.Errorf("on hand in DC1 NEW: %d, want 6 (+4 +2)", got)
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
