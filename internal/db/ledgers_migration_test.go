package db_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// Migration 0020 makes the file ledger and the pull ledger unique by
// index, on both engines: a database at version 19 with the duplicates
// forced re-imports and a mended kill left behind migrates (the later
// duplicates become what they were: 'force' imports, skipped pulls), and
// afterwards a second applied row of one content, or a second done pull
// of one remote file, is refused by the database itself.
func TestLedgersUniqueMigration(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testLedgersUniqueMigration(t, filepath.Join(t.TempDir(), "posbridge.db"), db.Migrations())
	})
	t.Run("postgres", func(t *testing.T) {
		testLedgersUniqueMigration(t, pgtest.Start(t), db.PGMigrations())
	})
}

func testLedgersUniqueMigration(t *testing.T, target string, migrations []db.Migration) {
	ctx := context.Background()
	d, err := db.Open(ctx, target, db.Options{Create: true, NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	exec := func(q string, args ...any) error {
		_, err := d.ExecContext(ctx, q, args...)
		return err
	}
	for _, m := range migrations {
		if m.Version >= 20 {
			break
		}
		if err := exec(m.SQL); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		if err := exec(`INSERT INTO schema_migrations(version, name, applied_at) VALUES (?,?,?)`, m.Version, m.Name, db.Now()); err != nil {
			t.Fatal(err)
		}
	}
	file := `INSERT INTO files(direction, kind, partner, name, path, sha256, size, status, mode, created_at) VALUES ('in', ?, '', 'f', 'f', ?, 1, ?, ?, '')`
	for _, f := range [][]any{
		{"transactions", "aaa", "applied", ""},  // 1: the first
		{"transactions", "aaa", "applied", ""},  // 2: a forced re-import before 0020
		{"transactions", "aaa", "rejected", ""}, // 3: not applied: not a duplicate
		{"transactions", "bbb", "partial", ""},  // 4
		{"stores", "aaa", "applied", ""},        // 5: another kind
		{"load-items", "ccc", "applied", "delta"},
		{"load-items", "ccc", "applied", "delta"}, // loads record their mode and repeat
	} {
		if err := exec(file, f...); err != nil {
			t.Fatal(err)
		}
	}
	pull := `INSERT INTO transfers(site, direction, local_path, remote_path, size, mtime, sha256, status, created_at, updated_at) VALUES ('s', 'pull', 'l', ?, 1, 'm', ?, ?, '', '')`
	for _, p := range [][]any{{"in/a", "x", "done"}, {"in/a", "x", "done"}, {"in/a", "y", "done"}, {"in/b", "x", "failed"}, {"in/b", "x", "failed"}} {
		if err := exec(pull, p...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	got := queryAll(t, d, `SELECT id || ' ' || status || ' ' || mode FROM files ORDER BY id`)
	want := []string{"1 applied ", "2 applied force", "3 rejected ", "4 partial ", "5 applied ", "6 applied delta", "7 applied delta"}
	if !slices.Equal(got, want) {
		t.Errorf("files after 0020:\n%q\nwant\n%q", got, want)
	}
	got = queryAll(t, d, `SELECT id || ' ' || status || ' ' || error FROM transfers ORDER BY id`)
	want = []string{"1 done ", "2 skipped recorded twice; the first is transfer 1", "3 done ", "4 failed ", "5 failed "}
	if !slices.Equal(got, want) {
		t.Errorf("transfers after 0020:\n%q\nwant\n%q", got, want)
	}
	if err := exec(file, "transactions", "aaa", "applied", ""); !db.IsUniqueViolation(err) {
		t.Errorf("a second applied row of one content: %v, want a unique violation", err)
	}
	if err := exec(file, "transactions", "aaa", "importing", ""); err != nil {
		t.Errorf("an import in progress of applied content (it finds the first and stops): %v", err)
	}
	if err := exec(`UPDATE files SET status = 'applied' WHERE id = (SELECT max(id) FROM files)`); !db.IsUniqueViolation(err) {
		t.Errorf("marking it applied: %v, want a unique violation", err)
	}
	if err := exec(file, "transactions", "aaa", "applied", "force"); err != nil {
		t.Errorf("import --force of applied content: %v", err)
	}
	if err := exec(pull, "in/a", "x", "done"); !db.IsUniqueViolation(err) {
		t.Errorf("a second done pull of one remote file: %v, want a unique violation", err)
	}
	if err := exec(pull, "in/a", "z", "done"); err != nil {
		t.Errorf("a pull of new content at the same path: %v", err)
	}
}

func queryAll(t *testing.T, d *db.DB, query string) []string {
	t.Helper()
	out, err := db.QueryAll(context.Background(), d, func(sc db.Scanner) (string, error) {
		var s string
		return s, sc.Scan(&s)
	}, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
