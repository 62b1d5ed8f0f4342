package imports

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
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

// stockUpload is an upload whose apply runs the transactions of steps
// through the adapters' Applier, and between two steps what between
// says (another host's work, committed while this import reads): the
// moments of a file's reads that a CSV file's batches leave to chance.
func stockUpload(steps [][]Transaction, between func() error) Upload {
	return Upload{Kind: "test-stock", What: "transactions", Open: func(*os.File, string, *Options) ([]string, func(*Session) error, error) {
		return []string{"item"}, func(s *Session) error {
			p, err := NewApplier(s)
			if err != nil {
				return err
			}
			defer p.Close()
			for i, step := range steps {
				if i > 0 {
					if err := between(); err != nil {
						return err
					}
				}
				for _, t := range step {
					s.Result.Read++
					reason, err := p.Apply(t)
					if err != nil {
						return err
					}
					if reason != nil {
						if err := s.Reject(t.Line, reason.Error(), []string{t.Item}); err != nil {
							return err
						}
						continue
					}
					s.Result.Applied++
				}
			}
			if s.Result.Applied == 0 {
				return nil
			}
			s.Result.Triggers, err = p.Finish()
			return err
		}, nil
	}}
}

// TestRefusalOnStockChangedMeanwhile: on PostgreSQL an import reads a
// SKU's stock when it first meets the SKU, and another host's import may
// commit between two such reads. Here BLK-9 in DC1 B01-02 (112) is read
// and 120 off it refused as negative; then another import commits +10 on
// it (122) and a change of BLU-9 in DC1 F01-02 (48); then BLU-9 is read.
//
// With +5 (53), 10 off BLU-9 applied (53 -> 43): against the stock before
// the other import it would go from 48; against the stock after it, 120
// off BLK-9 applies (122 -> 2). No order of the two gives "BLK-9 refused,
// BLU-9 from 53", which the file ended in, with a bad record (exit 2)
// that a run after the other's would have applied. With -10 (38) and 45
// off BLU-9 refused too, the file applied nothing, recorded as rejected,
// though either order applies one of its records.
//
// The refusals are checked against the stock when the file is done, as
// the rows it changes are: changed since read, the file is busy (exit 75,
// nothing applied), and the next run applies it to the stock as it is
// then. SQLite applies one import at a time.
func TestRefusalOnStockChangedMeanwhile(t *testing.T) {
	dbtest.WritersAtOnce(t)
	for _, c := range []struct {
		name           string
		other          string // the other import's change of BLU-9
		off            int64  // the file's sale of BLU-9
		rejected, left int64  // the file's rejects when run again, and BLU-9 then
	}{
		{"some applied", "R,IT0000001,BLU-9,DC1,F01-02,5", 10, 0, 43},
		{"all refused", "S,IT0000001,BLU-9,DC1,F01-02,10", 45, 1, 38},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newTxnFixture(t)
			ctx := context.Background()
			other := f.write("other.csv", txnHead+"R,IT0000001,BLK-9,DC1,B01-02,10\n"+c.other+"\n")
			host := dbtest.OpenAgain(t, f.d)
			u := stockUpload([][]Transaction{
				{{Line: 2, Code: "S", Item: "IT0000001", SKU: "BLK-9", Warehouse: "DC1", Location: "B01-02", Quantity: 120}},
				{{Line: 3, Code: "S", Item: "IT0000001", SKU: "BLU-9", Warehouse: "DC1", Location: "F01-02", Quantity: c.off}},
			}, func() error {
				_, err := ImportTransactions(ctx, host, other, Options{})
				return err
			})
			p := f.write("stock.txt", "two transactions\n")
			res, err := Run(ctx, f.d, u, p, Options{})
			if !errors.Is(err, db.ErrBusy) {
				t.Fatalf("import: %+v, %v; want busy: a record refused on stock that changed before the file was done", res, err)
			}
			if n := f.count(`SELECT count(*) FROM files WHERE kind = 'test-stock'`); n != 0 {
				t.Errorf("%d ledger rows of the busy file, want none", n)
			}
			if res, err = Run(ctx, f.d, u, p, Options{}); err != nil || res.Rejected != c.rejected || res.Applied != 2-c.rejected {
				t.Fatalf("the file again: %+v, %v; want %d rejected", res, err, c.rejected)
			}
			if got := f.onHand("IT0000001", "BLK-9", "DC1", "B01-02"); got != 2 {
				t.Errorf("BLK-9 in DC1 B01-02: %d, want 2 (112 +10 -120)", got)
			}
			if got := f.onHand("IT0000001", "BLU-9", "DC1", "F01-02"); got != c.left {
				t.Errorf("BLU-9 in DC1 F01-02: %d, want %d", got, c.left)
			}
		})
	}
}

// TestFirstStockOfSKUAtOnce: two imports add the first stock rows of
// IT0000001/ORG-11, which has none, in DC1 and in DC2, and an export sends
// the inventory trigger of the first (A, the SKU added) before the second
// writes its own. One after the other, the second finds the first's row
// and captures C. On PostgreSQL both read the stock before either
// commits: the second took the SKU for unstocked and captured A again,
// sent to the partner as a second add. The capture is settled once the
// import holds the change counter, which every writer of stock takes
// before it writes: every writer before it has committed by then.
func TestFirstStockOfSKUAtOnce(t *testing.T) {
	f := newTxnFixture(t)
	ctx := context.Background()
	first := f.write("dc1.csv", txnHead+"R,IT0000001,ORG-11,DC1,,5\n")
	second := f.write("dc2.csv", txnHead+"R,IT0000001,ORG-11,DC2,,3\n")
	sent := func() {
		t.Helper()
		if n, err := f.d.Exec(`UPDATE triggers SET status = 'processed' WHERE file_code = 'ITW' AND record_key = 'IT0000001' AND sub_key = 'ORG-11' AND status = 'ready'`); err != nil {
			t.Fatal(err)
		} else if k, _ := n.RowsAffected(); k != 1 {
			t.Fatalf("%d pending triggers of ORG-11 after the first import, want 1", k)
		}
	}
	if !dbtest.Postgres() {
		for i, p := range []string{first, second} {
			if _, err := ImportTransactions(ctx, f.d, p, Options{}); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				sent()
			}
		}
	} else {
		// The test holds the second's stock row: it waits there, after it
		// settled its capture, while the first's trigger is sent.
		_, letRow := dbtest.Hold(t, f.d, `INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at, change_seq)
VALUES ('IT0000001', 'ORG-11', 'DC2', '', 0, 0, '2026-01-01T00:00:00Z', 0)`)
		// And the change counter: both read the stock, then wait for it,
		// the first in line.
		_, letCounter := dbtest.Hold(t, f.d, `SELECT last FROM sequences WHERE kind = '`+catalog.ChangeCounter+`' FOR UPDATE`)
		errs := make([]chan error, 2)
		for i, p := range []string{first, second} {
			errs[i] = make(chan error, 1)
			host := dbtest.OpenAgain(t, f.d)
			go func() {
				_, err := ImportTransactions(ctx, host, p, Options{})
				errs[i] <- err
			}()
			if waiting := dbtest.LockWaiters(t, f.d, i+1); waiting != i+1 {
				t.Fatalf("%d imports wait on a lock, want %d", waiting, i+1)
			}
		}
		letCounter()
		if err := <-errs[0]; err != nil {
			t.Fatalf("first import: %v", err)
		}
		sent()
		letRow()
		if err := <-errs[1]; err != nil {
			t.Fatalf("second import: %v", err)
		}
	}
	var capture string
	if err := f.d.QueryRow(`SELECT capture FROM triggers WHERE file_code = 'ITW' AND record_key = 'IT0000001' AND sub_key = 'ORG-11' AND status = 'ready'`).Scan(&capture); err != nil {
		t.Fatal(err)
	}
	if capture != "C" {
		t.Errorf("the second import's trigger of ORG-11: %s, want C: the first added its stock", capture)
	}
	if got := f.onHand("IT0000001", "ORG-11", "DC2", ""); got != 3 {
		t.Errorf("ORG-11 in DC2: %d, want 3", got)
	}
}
