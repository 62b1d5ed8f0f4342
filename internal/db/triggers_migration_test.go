package db_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// Migration 0019 rebuilds the triggers table with its CHECKs written as
// ORs: the rows, ids, indexes and AUTOINCREMENT sequence are what they
// were, and the checks still refuse what they refused.
func TestTriggersChecksMigration(t *testing.T) {
	for _, empty := range []bool{false, true} {
		ctx := context.Background()
		d, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true, NoMigrate: true})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		for _, m := range db.Migrations() {
			if m.Version >= 19 {
				break
			}
			if _, err := d.ExecContext(ctx, m.SQL); err != nil {
				t.Fatalf("%s: %v", m.Name, err)
			}
			if _, err := d.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?,?,?)`, m.Version, m.Name, db.Now()); err != nil {
				t.Fatal(err)
			}
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		ins := `INSERT INTO triggers(id, file_code, record_key, sub_key, capture, status, attempts, last_error, run_id, file_id, created_at, updated_at, processed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`
		exec(ins, 1, "SKU", "I1", "S1", "A", "ready", 0, "", nil, nil, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", nil)
		exec(ins, 2, "VND", "V1", "", "C", "processing", 1, "", 7, 3, "2026-01-02T00:00:00Z", "2026-01-02T00:00:01Z", nil)
		exec(ins, 3, "IHD", "INV1", "", "D", "processed", 1, "", 7, 3, "2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-03T00:00:05Z")
		exec(ins, 4, "CST", "C1", "", "A", "error", 3, "vendor V9 ' missing", 8, nil, "2026-01-04T00:00:00Z", "2026-01-04T00:00:00Z", nil)
		exec(ins, 5, "ITW", "I1", "W1", "C", "ready", 0, "", nil, nil, "2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z", nil)
		exec(ins, 50, "SKU", "I9", "", "A", "processed", 1, "", nil, nil, "2026-01-06T00:00:00Z", "2026-01-06T00:00:00Z", nil)
		exec(`DELETE FROM triggers WHERE id = 50`) // purged: its id is not given again
		if empty {
			exec(`DELETE FROM triggers`)
		}
		rows := `SELECT coalesce(json_group_array(json_array(id, file_code, record_key, sub_key, capture, status, attempts, last_error, run_id, file_id, created_at, updated_at, processed_at)), '')
FROM (SELECT * FROM triggers ORDER BY id)`
		indexes := `SELECT group_concat(name || ': ' || sql, char(10)) FROM (SELECT name, sql FROM sqlite_schema WHERE tbl_name = 'triggers' AND type = 'index' ORDER BY name)`
		var beforeRows, beforeIndexes string
		d.QueryRowContext(ctx, rows).Scan(&beforeRows)
		d.QueryRowContext(ctx, indexes).Scan(&beforeIndexes)

		// 0019 alone: a later migration (0022) adds an index of its own.
		for _, m := range db.Migrations() {
			if m.Version == 19 {
				exec(m.SQL)
			}
		}
		var afterRows, afterIndexes, table string
		d.QueryRowContext(ctx, rows).Scan(&afterRows)
		d.QueryRowContext(ctx, indexes).Scan(&afterIndexes)
		d.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'triggers'`).Scan(&table)
		if afterRows != beforeRows || (!empty && !strings.Contains(afterRows, "vendor V9 ' missing")) {
			t.Errorf("empty %v: rows before\n%s\nafter\n%s", empty, beforeRows, afterRows)
		}
		if afterIndexes != beforeIndexes || !strings.Contains(afterIndexes, "triggers_pending") || !strings.Contains(afterIndexes, "triggers_file") {
			t.Errorf("indexes before\n%s\nafter\n%s", beforeIndexes, afterIndexes)
		}
		if strings.Contains(table, " IN (") || !strings.Contains(table, "AUTOINCREMENT") {
			t.Errorf("the table is now %s", table)
		}
		if n := count(t, d, `SELECT count(*) FROM sqlite_schema WHERE name IN ('triggers_new', 'triggers_seq')`); n != 0 {
			t.Errorf("%d leftover tables", n)
		}
		for _, bad := range [][]any{{"XXX", "A", "ready"}, {"SKU", "X", "ready"}, {"SKU", "A", "done"}} {
			if _, err := d.ExecContext(ctx, `INSERT INTO triggers(file_code, record_key, capture, status, created_at, updated_at) VALUES (?, 'K', ?, ?, '', '')`, bad...); err == nil || !strings.Contains(err.Error(), "CHECK") {
				t.Errorf("%v: %v, want a CHECK failure", bad, err)
			}
		}
		exec(`INSERT INTO triggers(file_code, record_key, capture, status, created_at, updated_at) VALUES ('SKU', 'NEW', 'A', 'ready', '', '')`)
		if id := count(t, d, `SELECT id FROM triggers WHERE record_key = 'NEW'`); id != 51 {
			t.Errorf("empty %v: a new trigger got id %d, want 51 (ids are not reused)", empty, id)
		}
	}
}
