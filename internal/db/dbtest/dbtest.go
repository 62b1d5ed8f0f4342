// Package dbtest gives a test a new posbridge database on the backend the
// suite runs against: a SQLite file in the test's temporary folder, or,
// under make test-postgres (POSBRIDGE_TEST_BACKEND=postgres), a new
// database on the throwaway PostgreSQL server of package pgtest. A package
// whose tests use it runs them through pgtest.Main, so that the server
// stops when they end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package dbtest

import (
	"context"
	"database/sql"
	neturl "net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// Target is where a new empty database for t is: the path of a SQLite file
// that does not exist yet, or the URL of a new PostgreSQL database. It is
// what a test hands to a posbridge process (POSBRIDGE_DATABASE).
func Target(t testing.TB) string {
	t.Helper()
	if pgtest.Wanted() {
		return pgtest.Start(t)
	}
	return filepath.Join(t.TempDir(), "posbridge.db")
}

// template is the migrated PostgreSQL database Open copies, made by the
// first Open of the test binary.
var template struct {
	sync.Once
	name string
	err  error
}

// migratedTemplate makes the template database once: migrating takes a
// second, copying it a tenth of that.
func migratedTemplate() (string, error) {
	template.Do(func() {
		url, _, err := pgtest.NewDatabase("posbridge_template")
		if err != nil {
			template.err = err
			return
		}
		d, err := db.Open(context.Background(), url, db.Options{Create: true})
		if err != nil {
			template.err = err
			return
		}
		// A template must have no session when it is copied.
		d.Close()
		u, err := neturl.Parse(url)
		if err != nil {
			template.err = err
			return
		}
		template.name = strings.TrimPrefix(u.Path, "/")
	})
	return template.name, template.err
}

// Open creates and opens a new database for t, with the current schema,
// closed at the test's end.
func Open(t testing.TB) *db.DB {
	t.Helper()
	target := Target
	if pgtest.Wanted() {
		name, err := migratedTemplate()
		if err != nil {
			if skip, msg := pgtest.Unavailable(err); skip {
				t.Skip(msg)
			} else {
				t.Fatal(msg)
			}
		}
		target = func(t testing.TB) string { return pgtest.StartFrom(t, name) }
	}
	d, err := db.Open(context.Background(), target(t), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Postgres reports whether the suite runs against PostgreSQL.
func Postgres() bool { return pgtest.Wanted() }

// WritersAtOnce skips t on SQLite, which runs one write transaction at
// a time: t is of writers on several hosts meeting, which only
// PostgreSQL lets run at once.
func WritersAtOnce(t testing.TB) {
	t.Helper()
	if !Postgres() {
		t.Skip("SQLite runs one write transaction at a time")
	}
}

// OpenAgain opens another handle on the database of d, with a connection
// pool of its own, as a second host or process sharing it has; it is
// closed at the test's end. It opens d.Path, which for PostgreSQL is the
// URL without its password: the test databases have none.
func OpenAgain(t testing.TB, d *db.DB) *db.DB {
	t.Helper()
	other, err := db.Open(context.Background(), d.Path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	return other
}

// OpenPostgres opens a new PostgreSQL database with the schema, whatever
// backend the suite runs on (tests of what only PostgreSQL does: several
// hosts, planner statistics); it is closed at the test's end. It skips or
// fails as pgtest.Start does when PostgreSQL is missing.
func OpenPostgres(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), pgtest.Start(t), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Hold runs query, a locking read (SELECT ... FOR UPDATE), in a
// transaction of a connection of d of its own, which holds the rows it
// locked until release rolls it back (or the test ends). conn is the
// holder's connection, for the test's own queries meanwhile.
func Hold(t testing.TB, d *db.DB, query string) (conn *sql.Conn, release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
		})
	}
	t.Cleanup(release)
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, query); err != nil {
		t.Fatal(err)
	}
	return conn, release
}

// LockWaiters waits, up to 10 s, until n sessions of d's PostgreSQL
// database wait on a lock, and returns how many did when it stopped.
func LockWaiters(t testing.TB, d *db.DB, n int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var waiting int
		if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= n || time.Now().After(deadline) {
			return waiting
		}
	}
}
