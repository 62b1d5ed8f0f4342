package export

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// addCustomer is the first half of a writer's transaction on conn, as a
// load runs it: it begins, takes a number of the change sequence and
// stamps the customer it adds with it. The caller commits.
func addCustomer(ctx context.Context, conn *sql.Conn, customer string) (int64, error) {
	if _, err := conn.ExecContext(ctx, db.BeginStatement(conn)); err != nil {
		return 0, err
	}
	seq, err := catalog.NextChangeSeq(ctx, conn)
	if err != nil {
		return 0, err
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO customers(customer, change_seq, added_seq, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		customer, seq, seq, db.Now(), db.Now())
	return seq, err
}

// snapshotSees is what a feed's snapshot sees: the change counter, and
// the customers stamped after mark, and above the counter.
func snapshotSees(t *testing.T, s *snapshot, mark int64) (high, after, above int64) {
	t.Helper()
	ctx := context.Background()
	err := s.conn.QueryRowContext(ctx, `SELECT (SELECT last FROM sequences WHERE kind = ?),
  (SELECT count(*) FROM customers WHERE change_seq > ?), (SELECT count(*) FROM customers WHERE change_seq > (SELECT last FROM sequences WHERE kind = ?))`,
		catalog.ChangeCounter, mark, catalog.ChangeCounter).Scan(&high, &after, &above)
	if err != nil {
		t.Fatal(err)
	}
	return high, after, above
}

// Two writers and a feed's reader at once: the writer that takes the
// larger change number commits after the one that took the smaller, and
// the reader's snapshot sees the rows up to its counter and none above,
// however the writers commit while it reads. So moving the watermark to
// the counter never skips a row committed later with a lower number, nor
// sends one twice.
func TestChangeSequenceWritersAndReader(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := f.d
	// A first change, so that the counter's row exists.
	f.load("customers", catalog.ModeDelta, "customer,last_name\nC0,Zero\n")
	s0, err := openSnapshot(ctx, d, "engagement_customers")
	if err != nil {
		t.Fatal(err)
	}
	start := s0.high
	s0.close()

	w1, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	seq1, err := addCustomer(ctx, w1, "C1")
	if err != nil {
		t.Fatal(err)
	}

	// The second writer starts while the first is uncommitted.
	type result struct {
		seq int64
		err error
	}
	second := make(chan result, 1)
	go func() {
		w2, err := d.Conn(ctx)
		if err != nil {
			second <- result{err: err}
			return
		}
		defer w2.Close()
		seq, err := addCustomer(ctx, w2, "C2")
		if err == nil {
			_, err = w2.ExecContext(ctx, "COMMIT")
		} else {
			w2.ExecContext(ctx, "ROLLBACK")
		}
		second <- result{seq, err}
	}()

	// The reader begins while both are under way.
	s, err := openSnapshot(ctx, d, "engagement_customers")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if high, after, _ := snapshotSees(t, s, start); high != start || after != 0 {
		t.Errorf("snapshot before the commits: counter %d, %d customers after %d; want %d and none", high, after, start, start)
	}
	select {
	case r := <-second:
		t.Fatalf("the second writer committed (number %d, %v) before the first, which holds number %d", r.seq, r.err, seq1)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := w1.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.seq <= seq1 {
		t.Errorf("the writer that committed second has number %d, the first %d", r.seq, seq1)
	}

	// Both committed while the reader's snapshot is open: it still sees
	// neither, so the counter it read covers what it sends.
	if high, after, above := snapshotSees(t, s, start); high != start || after != 0 || above != 0 {
		t.Errorf("snapshot after the commits: counter %d, %d customers after %d, %d above the counter; want %d, 0, 0",
			high, after, start, above, start)
	}
	s.close()

	// A new snapshot sees both, none above its counter.
	s2, err := openSnapshot(ctx, d, "engagement_customers")
	if err != nil {
		t.Fatal(err)
	}
	defer s2.close()
	if high, after, above := snapshotSees(t, s2, start); high != r.seq || after != 2 || above != 0 {
		t.Errorf("next snapshot: counter %d, %d customers after %d, %d above the counter; want %d, 2, 0", high, after, start, above, r.seq)
	}
}

// Two hosts sharing a PostgreSQL database, each with its own lock files:
// an export of a kind on one keeps out the export of that kind on the
// other (exit 75 after the wait), not the other kinds, and its end lets
// the next one in.
func TestKindLockAcrossHosts(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	host := func(name string) Options {
		return Options{LockDir: filepath.Join(t.TempDir(), name, "locks"), LockWait: 200 * time.Millisecond}
	}
	one, two := host("one"), host("two")
	_, _, end, err := begin(ctx, d, kinds["items"], &one)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := begin(ctx, d, kinds["items"], &two); !errors.Is(err, ErrBusy) {
		t.Errorf("items on the second host while the first exports them: %v, want ErrBusy", err)
	}
	_, _, endVendors, err := begin(ctx, d, kinds["vendors"], &two)
	if err != nil {
		t.Errorf("vendors on the second host while the first exports items: %v", err)
	} else {
		endVendors()
	}
	end()
	_, _, end, err = begin(ctx, d, kinds["items"], &two)
	if err != nil {
		t.Fatalf("items on the second host once the first is done: %v", err)
	}
	end()
}

// A large claim brings PostgreSQL's statistics of triggers up to date
// before the file's records are read, once per run; a small one does not.
func TestLargeClaimAnalyzes(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO vendors(vendor, name, created_at, updated_at) VALUES ('V1', 'Vendor', '` + now + `', '` + now + `')`,
		`INSERT INTO items(item, description, vendor, status, created_at, updated_at)
SELECT 'I' || lpad(n::text, 5, '0'), 'Item', 'V1', 'A', '` + now + `', '` + now + `' FROM generate_series(1, 1500) AS n`,
		`INSERT INTO skus(item, sku, created_at, updated_at) SELECT item, '', created_at, updated_at FROM items`,
	} {
		if _, err := d.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	analyses := func() int64 {
		var n int64
		if err := d.QueryRowContext(ctx, `SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'triggers'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct {
		triggers, perFile int
		analyzed          int64
	}{
		{10, 0, 0},      // small: statistics are close enough
		{1500, 500, 0},  // files of 500: not one claim is large
		{1500, 0, 1},    // one file of 1,500: analyzed once
		{1500, 1000, 1}, // files of 1,000 and 500: once, at the first
	} {
		if _, err := d.ExecContext(ctx, `DELETE FROM triggers`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at)
SELECT 'SKU', item, '', 'A', 'ready', created_at, updated_at FROM items ORDER BY item LIMIT ?`, c.triggers); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond) // a backend reports its statistics at most once a second
		before := analyses()
		if _, err := Run(ctx, d, "items", Options{Format: "csv", Dir: t.TempDir(), LockDir: t.TempDir(), MaxRecords: c.perFile}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond)
		if got := analyses() - before; got != c.analyzed {
			t.Errorf("%d triggers in files of %d: analyzed %d times, want %d", c.triggers, c.perFile, got, c.analyzed)
		}
	}
}
