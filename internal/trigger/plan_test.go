package trigger

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// The queries that ask which files are unfinished, and which triggers an
// older version claimed, can use the indexes migration 0022 made for
// them, on both backends: files_unfinished (its predicate is unfinished,
// which must stay written alike) and triggers_processing. PostgreSQL is
// kept off sequential scans, which it prefers on tables this small.
func TestClaimQueriesUseIndexes(t *testing.T) {
	queries := []struct{ name, q, index string }{
		{"unfinished files", `SELECT f.id FROM files f WHERE ` + unfinished, "files_unfinished"},
		{"in flight, claimed now", inFlight("record_key"), "files_unfinished"},
		{"in flight, claimed the older way", inFlight("record_key"), "triggers_processing"},
		{"CompleteLegacy", `UPDATE triggers AS t SET status = 'processed', processed_at = t.updated_at WHERE t.file_id = ?1 AND ` + legacy, "triggers_processing"},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			var d *db.DB
			if backend == "postgres" {
				d = dbtest.OpenPostgres(t)
			} else {
				var err error
				d, err = db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
			}
			err := d.Tx(ctx, false, func(conn *sql.Conn) error {
				explain := `EXPLAIN QUERY PLAN `
				if backend == "postgres" {
					// A file of this version's claim, as many triggers
					// as triggers_file finds for it: the older way's are
					// found through triggers_processing, which has none.
					if _, err := conn.ExecContext(ctx, `INSERT INTO triggers(file_code, record_key, capture, status, file_id, created_at, updated_at)
SELECT 'VND', 'V' || n, 'A', 'processed', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM generate_series(1, 2000) AS n`); err != nil {
						return err
					}
					if _, err := conn.ExecContext(ctx, `ANALYZE triggers`); err != nil {
						return err
					}
					explain = `EXPLAIN `
					if _, err := conn.ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
						return err
					}
				}
				for _, c := range queries {
					var args []any
					switch {
					case strings.Contains(c.q, "file_code"):
						args = append(args, CodeVendor)
					case strings.Contains(c.q, "?"):
						args = append(args, int64(1))
					}
					rows, err := conn.QueryContext(ctx, explain+c.q, args...)
					if err != nil {
						return err
					}
					var plan []string
					for rows.Next() {
						cols, _ := rows.Columns()
						vals := make([]any, len(cols))
						for i := range vals {
							vals[i] = new(sql.RawBytes)
						}
						if err := rows.Scan(vals...); err != nil {
							rows.Close()
							return err
						}
						plan = append(plan, string(*vals[len(vals)-1].(*sql.RawBytes)))
					}
					rows.Close()
					if !strings.Contains(strings.Join(plan, "\n"), c.index) {
						t.Errorf("%s: the plan does not use %s:\n%s", c.name, c.index, strings.Join(plan, "\n"))
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
