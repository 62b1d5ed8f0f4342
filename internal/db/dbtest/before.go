package dbtest

import (
	"context"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// OpenBefore opens the database target (a SQLite path or a PostgreSQL URL)
// with the schema of the migrations before version, as a posbridge of that
// time left it, for a test of the migrations from version on (d.Migrate).
// It is closed at the test's end.
func OpenBefore(t testing.TB, target string, version int) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, target, db.Options{Create: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	migrations := db.Migrations()
	if d.Dialect == db.Postgres {
		migrations = db.PGMigrations()
	}
	for _, m := range migrations {
		if m.Version >= version {
			break
		}
		if _, err := d.ExecContext(ctx, m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?,?,?)`, m.Version, m.Name, db.Now()); err != nil {
			t.Fatal(err)
		}
	}
	return d
}
