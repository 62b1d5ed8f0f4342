package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// Migration 0023 makes triggers_file an index of file_id alone, and
// keeps every trigger as it was.
func TestTriggersFileIndexMigration(t *testing.T) {
	onEngines(t, testTriggersFileIndexMigration)
}

func testTriggersFileIndexMigration(t *testing.T, target string) {
	ctx := context.Background()
	d := dbtest.OpenBefore(t, target, 23)
	ins := `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, file_id, created_at, updated_at) VALUES ('SKU', ?, ?, 'A', ?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`
	for _, r := range [][]any{{"I1", "S1", "processed", 7}, {"I1", "S2", "processed", 7}, {"I2", "S1", "ready", nil}} {
		if _, err := d.ExecContext(ctx, ins, r...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	def := `SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'triggers_file'`
	if d.Dialect == db.Postgres {
		def = `SELECT indexdef FROM pg_indexes WHERE indexname = 'triggers_file'`
	}
	var sql string
	if err := d.QueryRowContext(ctx, def).Scan(&sql); err != nil {
		t.Fatal(err)
	}
	// SQLite keeps the statement, PostgreSQL writes its own.
	if flat := strings.ReplaceAll(sql, " ", ""); !strings.Contains(flat, "triggers(file_id)WHERE") && !strings.Contains(flat, "btree(file_id)WHERE") {
		t.Errorf("triggers_file after 0023: %s, want an index of file_id alone", sql)
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM triggers WHERE file_id = 7`).Scan(&n); err != nil || n != 2 {
		t.Errorf("triggers of file 7 after 0023: %d (%v), want 2", n, err)
	}
}
