package db_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// Migration 0021 rebuilds the transfers table on SQLite with its CHECKs
// written as ORs: the columns and their order, rows, ids, indexes, foreign
// key and AUTOINCREMENT sequence are what they were, and the checks still
// refuse what they refused. The migration is applied by itself, on a file
// at version 20, so that later migrations do not blur what it does.
func TestTransfersChecksMigration(t *testing.T) {
	for _, empty := range []bool{false, true} {
		ctx := context.Background()
		d := dbtest.OpenBefore(t, filepath.Join(t.TempDir(), "posbridge.db"), 21)
		m21 := db.Migrations()[20]
		if m21.Version != 21 {
			t.Fatalf("migration %s is not 21", m21.Name)
		}
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.ExecContext(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`INSERT INTO runs(id, command, status, started_at) VALUES (7, 'push', 'ok', '2026-01-01T00:00:00Z')`)
		ins := `INSERT INTO transfers(id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error, run_id,
  created_at, updated_at, stage, temp_path, temp_mtime) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`
		exec(ins, 1, "hq", "push", "/out/a.csv", "in/a.csv", 10, "2026-01-01T00:00:00Z", "aa", "done", 1, "", 7, "t1", "t1", "", "", "")
		exec(ins, 2, "hq", "pull", "/in/b.csv", "out/b.csv", 20, "2026-01-02T00:00:00Z", "bb", "done", 1, "", nil, "t2", "t2", "rename", "out/.b.csv.tmp", "")
		exec(ins, 3, "hq", "push", "/out/c.csv", "in/c.csv", 30, "", "", "started", 0, "", 7, "t3", "t3", "rename", "in/.c.csv.tmp-1", "2026-01-03T00:00:00Z")
		exec(ins, 4, "dc", "push", "/out/d.csv", "in/d.csv", 0, "", "", "failed", 3, "permission ' denied", nil, "t4", "t4", "temp", "", "")
		exec(ins, 5, "dc", "pull", "/in/b.csv", "out/b.csv", 20, "2026-01-02T00:00:00Z", "bb", "skipped", 1, "recorded twice; the first is transfer 2", nil, "t5", "t5", "", "", "")
		exec(ins, 50, "dc", "push", "/out/e.csv", "in/e.csv", 1, "", "", "done", 1, "", nil, "t6", "t6", "", "", "")
		exec(`DELETE FROM transfers WHERE id = 50`) // its id is not given again
		if empty {
			exec(`DELETE FROM transfers`)
		}
		rows := `SELECT coalesce(json_group_array(json_array(id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error,
  run_id, created_at, updated_at, stage, temp_path, temp_mtime)), '') FROM (SELECT * FROM transfers ORDER BY id)`
		describe := map[string]string{
			"rows":    rows,
			"indexes": `SELECT group_concat(name || ': ' || sql, char(10)) FROM (SELECT name, sql FROM sqlite_schema WHERE tbl_name = 'transfers' AND type = 'index' ORDER BY name)`,
			"columns": `SELECT group_concat(cid || ' ' || name || ' ' || type || ' ' || "notnull" || ' ' || coalesce(dflt_value, 'none') || ' ' || pk, char(10)) FROM pragma_table_info('transfers')`,
			"keys":    `SELECT group_concat("table" || ' ' || "from" || ' ' || "to" || ' ' || on_update || ' ' || on_delete, char(10)) FROM pragma_foreign_key_list('transfers')`,
		}
		before := map[string]string{}
		for what, q := range describe {
			var s sql.NullString
			if err := d.QueryRowContext(ctx, q).Scan(&s); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			before[what] = s.String
		}

		// As Migrate applies it: in a transaction, with the foreign key
		// checks on.
		err := d.Tx(ctx, true, func(conn *sql.Conn) error {
			_, err := conn.ExecContext(ctx, m21.SQL)
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", m21.Name, err)
		}
		for what, q := range describe {
			var s sql.NullString
			if err := d.QueryRowContext(ctx, q).Scan(&s); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if s.String != before[what] {
				t.Errorf("empty %v: %s before\n%s\nafter\n%s", empty, what, before[what], s.String)
			}
		}
		if !empty && !strings.Contains(before["rows"], "permission ' denied") {
			t.Errorf("the rows compared are not the ones written: %s", before["rows"])
		}
		for _, name := range []string{"transfers_fetched", "transfers_remote", "transfers_pulled_once"} {
			if !strings.Contains(before["indexes"], name) {
				t.Errorf("index %s missing:\n%s", name, before["indexes"])
			}
		}
		var table string
		d.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'transfers'`).Scan(&table)
		if strings.Contains(table, " IN (") || !strings.Contains(table, "AUTOINCREMENT") {
			t.Errorf("the table is now %s", table)
		}
		if n := count(t, d, `SELECT count(*) FROM sqlite_schema WHERE name IN ('transfers_new', 'transfers_seq')`); n != 0 {
			t.Errorf("%d leftover tables", n)
		}
		if n := count(t, d, `SELECT count(*) FROM pragma_foreign_key_check`); n != 0 {
			t.Errorf("foreign_key_check: %d rows", n)
		}
		for _, bad := range [][]any{{"sideways", "done"}, {"push", "finished"}, {"PUSH", "done"}, {"push", "Done"}} {
			if _, err := d.ExecContext(ctx, `INSERT INTO transfers(site, direction, local_path, remote_path, status, created_at, updated_at) VALUES ('x', ?, 'l', 'r', ?, '', '')`, bad...); err == nil || !strings.Contains(err.Error(), "CHECK") {
				t.Errorf("%v: %v, want a CHECK failure", bad, err)
			}
		}
		if _, err := d.ExecContext(ctx, `INSERT INTO transfers(site, direction, local_path, remote_path, status, run_id, created_at, updated_at) VALUES ('x', 'push', 'l', 'r', 'done', 99, '', '')`); err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("a transfer of a run that does not exist: %v, want a FOREIGN KEY failure", err)
		}
		for _, ok := range [][]any{{"push", "started"}, {"pull", "failed"}, {"push", "skipped"}, {"pull", "done"}} {
			exec(`INSERT INTO transfers(site, direction, local_path, remote_path, status, created_at, updated_at) VALUES ('x', ?, 'l', 'r', ?, '', '')`, ok...)
		}
		if id := count(t, d, `SELECT min(id) FROM transfers WHERE site = 'x'`); id != 51 {
			t.Errorf("empty %v: a new transfer got id %d, want 51 (ids are not reused)", empty, id)
		}
	}
}
