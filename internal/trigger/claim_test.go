package trigger_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// openPostgres opens a new database on PostgreSQL whatever the suite's
// backend: what it tests exists there only. A lock wait fails only after
// a minute, so that a claim that waits shows as slow, not as an error.
func openPostgres(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), pgtest.Start(t), db.Options{Create: true, BusyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// begin opens a write transaction on a connection of its own, rolled back
// at the test's end unless committed.
func begin(t *testing.T, d *db.DB) *sql.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, db.BeginStatement(conn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
	})
	return conn
}

func commit(t *testing.T, conn *sql.Conn) {
	t.Helper()
	if _, err := conn.ExecContext(context.Background(), "COMMIT"); err != nil {
		t.Fatal(err)
	}
}

// seedItems makes items ready SKU triggers, two SKUs each, and returns
// their number.
func seedItems(t *testing.T, d *db.DB, items int) int64 {
	t.Helper()
	for i := range items {
		for _, sku := range []string{"S1", "S2"} {
			seed(t, d, trigger.CodeItem, fmt.Sprintf("IT%03d", i), sku, trigger.Added, trigger.StatusReady, "", "")
		}
	}
	return int64(2 * items)
}

// On PostgreSQL a claim passes over the triggers another transaction has
// claimed and not yet committed (FOR UPDATE SKIP LOCKED) instead of
// waiting for it: an export never waits on another's rows.
func TestClaimSkipsLockedTriggers(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	seedItems(t, d, 3)
	seed(t, d, trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady, "", "")

	first := begin(t, d)
	records, triggers, err := trigger.Claim(ctx, first, trigger.CodeItem, 1, 0, 2)
	if err != nil || records != 2 || triggers != 4 {
		t.Fatalf("first claim = %d records, %d triggers, %v; want 2, 4", records, triggers, err)
	}

	second := begin(t, d)
	for _, limit := range []int{0, 2} {
		wait, cancel := context.WithTimeout(ctx, 20*time.Second)
		start := time.Now()
		records, triggers, err := trigger.Claim(wait, second, trigger.CodeItem, 2, 0, limit)
		cancel()
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("second claim (limit %d) waited %v for the first's rows", limit, took)
		}
		if err != nil {
			t.Fatalf("second claim (limit %d): %v", limit, err)
		}
		// Without a limit it takes the item the first left; with one it
		// may find the first items taken and claim nothing this time.
		if limit == 0 && (records != 1 || triggers != 2) {
			t.Errorf("second claim (no limit) = %d records, %d triggers; want 1, 2", records, triggers)
		}
	}
	// Another kind is not held up either.
	if _, n, err := trigger.Claim(ctx, second, trigger.CodeVendor, 2, 0, 0); err != nil || n != 1 {
		t.Fatalf("vendor claim = %d, %v; want 1", n, err)
	}
	commit(t, first)
	commit(t, second)

	var files []string
	rows, err := d.QueryContext(ctx, `SELECT file_code || ' ' || record_key || '/' || sub_key || ' ' || file_id || ' ' || attempts
FROM triggers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		files = append(files, s)
	}
	want := []string{"SKU IT000/S1 1 1", "SKU IT000/S2 1 1", "SKU IT001/S1 1 1", "SKU IT001/S2 1 1",
		"SKU IT002/S1 2 1", "SKU IT002/S2 2 1", "VND V1/ 2 1"}
	equalRows(t, files, want)
}

// Exports claiming the same kind at once, each in its own transaction,
// claim every trigger exactly once between them.
func TestClaimConcurrentlyOnce(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	total := seedItems(t, d, 40)

	const workers = 6
	var wg sync.WaitGroup
	var mu sync.Mutex
	var claimed int64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 10 {
				fileID := int64(100*(w+1) + round)
				err := d.Tx(ctx, true, func(conn *sql.Conn) error {
					_, n, err := trigger.Claim(ctx, conn, trigger.CodeItem, fileID, 0, 3)
					mu.Lock()
					claimed += n
					mu.Unlock()
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// What the others passed over while it was held is still there.
	rest := begin(t, d)
	_, n, err := trigger.Claim(ctx, rest, trigger.CodeItem, 1, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, rest)
	if claimed+n != total {
		t.Errorf("claimed %d concurrently and %d after, want %d in all", claimed, n, total)
	}
	var twice, unclaimed int64
	if err := d.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE attempts <> 1), count(*) FILTER (WHERE status <> 'processed')
FROM triggers`).Scan(&twice, &unclaimed); err != nil {
		t.Fatal(err)
	}
	if twice != 0 || unclaimed != 0 {
		t.Errorf("%d triggers claimed more than once, %d not claimed", twice, unclaimed)
	}
}

func equalRows(t *testing.T, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got\n  %q\nwant\n  %q", got, want)
	}
}

// A trigger an export claims while trigger delete or retry looks at it
// is the export's: they see it being processed, and leave it. The file
// that makes it processing is recorded in the claim's transaction, which
// the delete waits for.
func TestDeleteWhileClaimed(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	id := seed(t, d, trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusReady, "", "")
	claim := begin(t, d)
	if _, n, err := trigger.Claim(ctx, claim, trigger.CodeVendor, newFile(t, claim, "writing"), 0, 0); err != nil || n != 1 {
		t.Fatalf("claim = %d, %v; want 1", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := trigger.Delete(ctx, d, []int64{id})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("delete did not wait for the claim: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	commit(t, claim)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "being processed") {
		t.Fatalf("delete of a claimed trigger: %v, want it refused as being processed", err)
	}
	wantTriggers(t, d, row{trigger.CodeVendor, "V1", "", trigger.Added, trigger.StatusProcessing})
}

// A claim with a limit on a table PostgreSQL has no statistics of (right
// after a load, before autovacuum analyzed it) takes the first records in
// key order quickly: the form of the claim does not depend on the planner
// knowing how many triggers there are. (Said as "key IN (the first keys)"
// it was planned as a nested loop reading the keys again for every
// trigger: half a minute for the items here.)
func TestClaimWithoutStatistics(t *testing.T) {
	ctx := context.Background()
	d := openPostgres(t)
	for i, c := range []struct {
		code, key, sub    string
		records, triggers int64
		last              string
	}{
		// 30,000 items of two SKUs each.
		{trigger.CodeItem, `'IT' || lpad(CAST(n / 2 AS TEXT), 6, '0')`, `'S' || CAST(n % 2 AS TEXT)`, 1000, 2000, "IT000999"},
		// 30,000 vendors, a record per key and sub key.
		{trigger.CodeVendor, `'V' || lpad(CAST(n / 2 AS TEXT), 6, '0')`, `CAST(n % 2 AS TEXT)`, 1000, 1000, "V000499"},
	} {
		exec(t, d, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)
SELECT ?1, `+c.key+`, `+c.sub+`, 'A', 'ready', ?2, ?2 FROM generate_series(0, 59999) AS n`, c.code, db.Now())
		conn := begin(t, d)
		start := time.Now()
		records, triggers, err := trigger.Claim(ctx, conn, c.code, int64(i+1), 0, 1000)
		took := time.Since(start)
		if err != nil || records != c.records || triggers != c.triggers {
			t.Fatalf("%s claim = %d records, %d triggers, %v; want %d, %d", c.code, records, triggers, err, c.records, c.triggers)
		}
		var first, last string
		if err := conn.QueryRowContext(ctx, `SELECT min(record_key), max(record_key) FROM triggers WHERE file_id = ?`, i+1).Scan(&first, &last); err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(first, "000000") || last != c.last {
			t.Errorf("%s claim took records %s to %s, want the first 1000, to %s", c.code, first, last, c.last)
		}
		if took > 5*time.Second {
			t.Errorf("%s claim of 1000 records took %v without statistics", c.code, took)
		}
		commit(t, conn)
		t.Logf("%s: claimed 1000 records in %v", c.code, took.Round(time.Millisecond))
	}
}
