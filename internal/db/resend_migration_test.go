package db_test

import (
	"context"
	"testing"

	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// Migration 0024 adds triggers.resend: every trigger made before it is an
// add captured by a load (or a change or delete), 0; a trigger made without
// it is 0 too, and only 0 and 1 are accepted.
func TestTriggersResendMigration(t *testing.T) {
	onEngines(t, testTriggersResendMigration)
}

func testTriggersResendMigration(t *testing.T, target string) {
	ctx := context.Background()
	d := dbtest.OpenBefore(t, target, 24)
	ins := `INSERT INTO triggers(file_code, record_key, sub_key, capture, status, created_at, updated_at) VALUES ('VND', ?, '', ?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`
	for _, r := range [][]any{{"V1", "A", "ready"}, {"V2", "C", "processed"}, {"V3", "D", "error"}} {
		if _, err := d.ExecContext(ctx, ins, r...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, ins, "V4", "A", "ready"); err != nil {
		t.Fatal(err)
	}
	var n, marked int
	if err := d.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(resend), 0) FROM triggers`).Scan(&n, &marked); err != nil || n != 4 || marked != 0 {
		t.Errorf("after 0024: %d triggers, %d resend (%v); want 4, 0", n, marked, err)
	}
	if _, err := d.ExecContext(ctx, `UPDATE triggers SET resend = 1 WHERE record_key = 'V4'`); err != nil {
		t.Errorf("resend 1 refused: %v", err)
	}
	if _, err := d.ExecContext(ctx, `UPDATE triggers SET resend = 2 WHERE record_key = 'V4'`); err == nil {
		t.Error("resend 2 accepted")
	}
}
