package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
)

// openNew creates a fresh database in a temporary folder.
func openNew(t *testing.T) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatalf("open new database: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func count(t *testing.T, q db.Querier, query string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func addWarehouse(ctx context.Context, q db.Execer, code string) error {
	_, err := q.ExecContext(ctx, `INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES (?,?,?,?)`,
		code, "Warehouse "+code, db.Now(), db.Now())
	return err
}

func TestOpenCreatesOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "folder", "posbridge.db")

	_, err := db.Open(ctx, path, db.Options{})
	if !errors.Is(err, db.ErrMissing) {
		t.Fatalf("Open of a missing file without Create: error %v, want ErrMissing", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "posbridge init") {
		t.Errorf("error %q should name the file and tell the operator to run 'posbridge init'", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open without Create left something behind: %v", err)
	}

	d, err := db.Open(ctx, path, db.Options{Create: true})
	if err != nil {
		t.Fatalf("Open with Create: %v", err)
	}
	v, err := d.Version(ctx)
	if err != nil || v != db.LatestVersion() {
		t.Fatalf("new database at version %d (%v), want %d", v, err, db.LatestVersion())
	}
	d.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not created: %v", err)
	}

	// Once it exists, Create is not needed.
	d, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatalf("reopen without Create: %v", err)
	}
	d.Close()
}

func TestOpenRefusesWhatIsNotADatabase(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
	}{
		{"text file", []byte(strings.Repeat("item,description\nIT1,Shirt\n", 200))},
		{"short text file", []byte("hello, world\n")},
		{"binary noise", func() []byte {
			b := make([]byte, 8192)
			for i := range b {
				b[i] = byte(i*7 + 3)
			}
			return b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "posbridge.db")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := db.Open(context.Background(), path, db.Options{})
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded on a file that is not a database")
			}
			if !errors.Is(err, db.ErrNotDatabase) {
				t.Fatalf("error %v, want ErrNotDatabase", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q should name the file", err)
			}
			got, _ := os.ReadFile(path)
			if !reflect.DeepEqual(got, tt.content) {
				t.Error("Open changed a file that is not a database")
			}
		})
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	d := openNew(t)
	path := d.Path
	if _, err := d.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, '0999_future', ?)`, db.Now()); err != nil {
		t.Fatal(err)
	}
	d.Close()

	_, err := db.Open(ctx, path, db.Options{})
	if !errors.Is(err, db.ErrTooNew) {
		t.Fatalf("Open of a version 999 database: error %v, want ErrTooNew", err)
	}
	for _, want := range []string{"999", fmt.Sprint(db.LatestVersion()), path} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}

	// NoMigrate does not skip the check either.
	if _, err := db.Open(ctx, path, db.Options{NoMigrate: true}); !errors.Is(err, db.ErrTooNew) {
		t.Fatalf("Open with NoMigrate of a version 999 database: error %v, want ErrTooNew", err)
	}
}

func TestMigrationsAppliedOnceAndRecorded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posbridge.db")
	all := db.Migrations()
	if len(all) == 0 {
		t.Fatal("no embedded migrations")
	}
	var names []string
	for i, m := range all {
		names = append(names, m.Name)
		if i > 0 && m.Version <= all[i-1].Version {
			t.Fatalf("migrations out of order: %s after %s", m.Name, all[i-1].Name)
		}
	}

	d, err := db.Open(ctx, path, db.Options{Create: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := d.Version(ctx); v != 0 {
		t.Fatalf("new database with NoMigrate at version %d, want 0", v)
	}
	applied, err := d.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if !reflect.DeepEqual(applied, names) {
		t.Fatalf("Migrate applied %q, want %q", applied, names)
	}
	applied, err = d.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second Migrate applied %q (%v), want nothing", applied, err)
	}
	d.Close()

	d, err = db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rows, err := d.QueryContext(ctx, `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var recorded []string
	for rows.Next() {
		var v int
		var name, at string
		if err := rows.Scan(&v, &name, &at); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(db.TimeLayout, at); err != nil {
			t.Errorf("migration %s applied_at %q is not a %s timestamp", name, at, db.TimeLayout)
		}
		if !strings.HasPrefix(name, fmt.Sprintf("%04d_", v)) {
			t.Errorf("migration version %d recorded with name %q", v, name)
		}
		recorded = append(recorded, name)
	}
	if !reflect.DeepEqual(recorded, names) {
		t.Fatalf("schema_migrations holds %q, want each migration once: %q", recorded, names)
	}
}

// The pragmas are per connection, so every connection of the pool must
// have them, not only the first.
func TestEveryConnectionHasThePragmas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "posbridge.db")
	d, err := db.Open(ctx, path, db.Options{Create: true, BusyTimeout: 3 * time.Second, CacheMiB: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var conns []*sql.Conn
	for range 3 {
		c, err := d.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	want := []struct {
		pragma string
		value  string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"synchronous", "1"}, // NORMAL
		{"busy_timeout", "3000"},
		{"cache_size", "-8192"},
	}
	for i, c := range conns {
		for _, w := range want {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+w.pragma).Scan(&got); err != nil {
				t.Fatalf("connection %d: PRAGMA %s: %v", i, w.pragma, err)
			}
			if got != w.value {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, w.pragma, got, w.value)
			}
		}
	}
	// foreign_keys is really enforced.
	_, err = d.ExecContext(ctx, `INSERT INTO inventory(item, sku, warehouse, updated_at) VALUES ('NOPE', '', 'NOPE', ?)`, db.Now())
	if err == nil || !strings.Contains(strings.ToLower(err.Error()), "foreign key") {
		t.Fatalf("insert of inventory for an unknown item: %v, want a foreign key error", err)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	d := openNew(t)
	for _, w := range []string{"WH1", "WH2", "WH3"} {
		if err := addWarehouse(ctx, d, w); err != nil {
			t.Fatal(err)
		}
	}
	want, err := d.TableCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}

	dest := filepath.Join(t.TempDir(), "backup.db")
	if err := d.Backup(ctx, dest, false); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if _, err := os.Stat(dest + ".tmp-backup"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary backup file left behind: %v", err)
	}
	b, err := db.Open(ctx, dest, db.Options{})
	if err != nil {
		t.Fatalf("open the backup: %v", err)
	}
	got, err := b.TableCounts(ctx)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("backup row counts %v, want %v", got, want)
	}

	// A missing folder is named, with the fix.
	err = d.Backup(ctx, filepath.Join(t.TempDir(), "nowhere", "b.db"), false)
	if err == nil || !strings.Contains(err.Error(), "nowhere does not exist: create it (mkdir -p ") {
		t.Errorf("Backup into a missing folder: %v", err)
	}

	// A later backup does not replace the file unless told to.
	if err := addWarehouse(ctx, d, "WH4"); err != nil {
		t.Fatal(err)
	}
	err = d.Backup(ctx, dest, false)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Backup over an existing file without overwrite: %v, want a 'file exists' error", err)
	}
	b, _ = db.Open(ctx, dest, db.Options{})
	if n := count(t, b, `SELECT count(*) FROM warehouses`); n != 3 {
		t.Errorf("refused backup changed the old backup: %d warehouses, want 3", n)
	}
	b.Close()

	if err := d.Backup(ctx, dest, true); err != nil {
		t.Fatalf("Backup with overwrite: %v", err)
	}
	b, _ = db.Open(ctx, dest, db.Options{})
	defer b.Close()
	if n := count(t, b, `SELECT count(*) FROM warehouses`); n != 4 {
		t.Errorf("overwritten backup has %d warehouses, want 4", n)
	}
}

func TestWithTx(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name     string
		commit   bool
		fnErr    error
		wantRows int64
		wantErr  error
	}{
		{name: "commits when fn succeeds", commit: true, wantRows: 1},
		{name: "rolls back when fn fails", commit: true, fnErr: errBoom, wantRows: 0, wantErr: errBoom},
		{name: "rolls back when commit is false (dry run)", commit: false, wantRows: 0},
		{name: "rolls back a failing dry run", commit: false, fnErr: errBoom, wantRows: 0, wantErr: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			d := openNew(t)
			conn, err := d.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			err = db.WithTx(ctx, conn, tt.commit, func() error {
				if err := addWarehouse(ctx, conn, "WH1"); err != nil {
					return err
				}
				return tt.fnErr
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("WithTx error %v, want %v", err, tt.wantErr)
			}
			if n := count(t, d, `SELECT count(*) FROM warehouses`); n != tt.wantRows {
				t.Fatalf("%d warehouses after WithTx, want %d", n, tt.wantRows)
			}
			// The connection is usable again: no transaction left open.
			if err := db.WithTx(ctx, conn, true, func() error { return addWarehouse(ctx, conn, "WH2") }); err != nil {
				t.Fatalf("second WithTx on the same connection: %v", err)
			}
		})
	}
}

// WithTx takes the write lock at BEGIN, so a second writer waits for it
// (and gives up with ErrBusy after its busy timeout) instead of failing
// later in a deadlock.
func TestWithTxTakesTheWriteLockAtBegin(t *testing.T) {
	ctx := context.Background()
	a := openNew(t)
	b, err := db.Open(ctx, a.Path, db.Options{BusyTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ca, _ := a.Conn(ctx)
	defer ca.Close()
	cb, _ := b.Conn(ctx)
	defer cb.Close()

	err = db.WithTx(ctx, ca, true, func() error {
		// a has written nothing yet, but holds the lock.
		return db.WithTx(ctx, cb, true, func() error { return nil })
	})
	if !errors.Is(err, db.ErrBusy) {
		t.Fatalf("second writer while the first holds BEGIN IMMEDIATE: %v, want ErrBusy", err)
	}
}

// Two processes (two *DB handles on one file) writing at once both succeed:
// transactions that read before they write would deadlock under deferred
// BEGIN; BEGIN IMMEDIATE plus the busy timeout serialises them.
func TestConcurrentWritersOnTwoHandles(t *testing.T) {
	ctx := context.Background()
	first := openNew(t)
	second, err := db.Open(ctx, first.Path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	const perWriter = 25
	var wg sync.WaitGroup
	errs := make(chan error, 4*perWriter)
	// Read-then-write transactions, the pattern that deadlocks without
	// BEGIN IMMEDIATE.
	viaWithTx := func(d *db.DB, prefix string) {
		defer wg.Done()
		for i := range perWriter {
			conn, err := d.Conn(ctx)
			if err != nil {
				errs <- err
				return
			}
			err = db.WithTx(ctx, conn, true, func() error {
				var n int
				if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM warehouses`).Scan(&n); err != nil {
					return err
				}
				return addWarehouse(ctx, conn, fmt.Sprintf("%s%d", prefix, i))
			})
			conn.Close()
			if err != nil {
				errs <- fmt.Errorf("%s%d: %w", prefix, i, err)
			}
		}
	}
	viaBeginTx := func(d *db.DB, prefix string) {
		defer wg.Done()
		for i := range perWriter {
			err := func() error {
				tx, err := d.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer tx.Rollback()
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM warehouses`).Scan(&n); err != nil {
					return err
				}
				if err := addWarehouse(ctx, tx, fmt.Sprintf("%s%d", prefix, i)); err != nil {
					return err
				}
				return tx.Commit()
			}()
			if err != nil {
				errs <- fmt.Errorf("%s%d: %w", prefix, i, err)
			}
		}
	}
	wg.Add(4)
	go viaWithTx(first, "A")
	go viaWithTx(second, "B")
	go viaBeginTx(first, "C")
	go viaBeginTx(second, "D")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write failed: %v", err)
	}
	if n := count(t, first, `SELECT count(*) FROM warehouses`); n != 4*perWriter {
		t.Fatalf("%d warehouses written, want %d", n, 4*perWriter)
	}
}

func TestClassify(t *testing.T) {
	plain := errors.New("something else")
	if got := db.Classify(plain); got != plain {
		t.Errorf("Classify changed an unrelated error: %v", got)
	}
	if db.Classify(nil) != nil {
		t.Error("Classify(nil) is not nil")
	}
}

// ReadVersion reports a database's schema version without changing
// anything: no file is created, no migration applied, a newer schema is
// a version like another, and a file left by a closed WAL database reads.
func TestReadVersion(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	missing := filepath.Join(dir, "none", "posbridge.db")
	if _, err := db.ReadVersion(ctx, missing); !errors.Is(err, db.ErrMissing) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want ErrMissing naming the file", err)
	}
	if _, err := os.Stat(filepath.Dir(missing)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadVersion created %s", filepath.Dir(missing))
	}

	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := db.ReadVersion(ctx, empty); err != nil || v != 0 {
		t.Errorf("empty file: %d, %v; want version 0", v, err)
	}
	if b, _ := os.ReadFile(empty); len(b) != 0 {
		t.Error("ReadVersion wrote into an empty file")
	}

	notDB := filepath.Join(dir, "notes.db")
	if err := os.WriteFile(notDB, []byte("hello, world\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ReadVersion(ctx, notDB); !errors.Is(err, db.ErrNotDatabase) {
		t.Errorf("text file: error %v, want ErrNotDatabase", err)
	}

	d := openNew(t)
	path := d.Path
	d.Close()
	if v, err := db.ReadVersion(ctx, path); err != nil || v != db.LatestVersion() {
		t.Errorf("current database: %d, %v; want %d", v, err, db.LatestVersion())
	}
	d, err := db.Open(ctx, path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (999, '0999_future', ?)`, db.Now()); err != nil {
		t.Fatal(err)
	}
	// Open while another handle has it open, as a running job would.
	if v, err := db.ReadVersion(ctx, path); err != nil || v != 999 {
		t.Errorf("newer database: %d, %v; want 999", v, err)
	}
	d.Close()
}

func TestSchemaStatus(t *testing.T) {
	latest := db.LatestVersion()
	for _, tt := range []struct {
		v    int
		want string
	}{{latest, db.SchemaCurrent}, {latest - 1, db.SchemaPending}, {0, db.SchemaPending}, {latest + 1, db.SchemaNewer}, {999, db.SchemaNewer}} {
		if got := db.SchemaStatus(tt.v); got != tt.want {
			t.Errorf("SchemaStatus(%d) = %q, want %q (latest %d)", tt.v, got, tt.want, latest)
		}
	}
}
