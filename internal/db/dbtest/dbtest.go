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
	"path/filepath"
	"testing"

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

// Open creates and opens a new database for t, with the current schema,
// closed at the test's end.
func Open(t testing.TB) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), Target(t), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// Postgres reports whether the suite runs against PostgreSQL.
func Postgres() bool { return pgtest.Wanted() }
