package db_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// Migration 0022 rewrites no trigger: one an older version claimed
// ('processing') stays so, as that version's processes, which may outlive
// the upgrade, give back and count in flight only that form. It adds the
// indexes of the unfinished export files and of such triggers.
func TestClaimIndexesMigration(t *testing.T) {
	onEngines(t, testClaimIndexesMigration)
}

func testClaimIndexesMigration(t *testing.T, target string) {
	ctx := context.Background()
	d := dbtest.OpenBefore(t, target, 22)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := d.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	ins := `INSERT INTO triggers(file_code, record_key, capture, status, attempts, file_id, created_at, updated_at, processed_at) VALUES ('VND', ?, 'C', ?, ?, ?, ?, ?, ?)`
	exec(ins, "V1", "processing", 1, 7, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", nil)
	exec(ins, "V2", "processed", 1, 6, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-01-01T00:00:05Z")
	exec(ins, "V3", "ready", 0, nil, "2026-01-03T00:00:00Z", "2026-01-03T00:00:00Z", nil)
	exec(ins, "V4", "error", 3, nil, "2026-01-04T00:00:00Z", "2026-01-04T00:00:00Z", nil)
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := d.QueryContext(ctx, `SELECT record_key, status, attempts, coalesce(file_id, 0), updated_at, coalesce(processed_at, '') FROM triggers ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var key, status, updated, processed string
		var attempts, file int64
		if err := rows.Scan(&key, &status, &attempts, &file, &updated, &processed); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s|%s|%d|%d|%s|%s", key, status, attempts, file, updated, processed))
	}
	want := []string{
		"V1|processing|1|7|2026-01-02T00:00:00Z|",
		"V2|processed|1|6|2026-01-01T00:00:00Z|2026-01-01T00:00:05Z",
		"V3|ready|0|0|2026-01-03T00:00:00Z|",
		"V4|error|3|0|2026-01-04T00:00:00Z|",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("triggers after 0022:\n got  %q\n want %q", got, want)
	}
	indexes := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ('files_unfinished', 'triggers_processing')`
	if d.Dialect == db.Postgres {
		indexes = `SELECT count(*) FROM pg_indexes WHERE indexname IN ('files_unfinished', 'triggers_processing')`
	}
	var n int
	if err := d.QueryRowContext(ctx, indexes).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d of files_unfinished and triggers_processing after 0022 (%v), want both", n, err)
	}
}
