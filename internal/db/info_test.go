package db_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// TestInfo: the backend of the suite, its engine's version as the engine
// gives it, and a size that grows with the rows.
func TestInfo(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	in, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, version := db.SQLite, `^3\.[0-9]+\.[0-9]+$`
	if dbtest.Postgres() {
		want, version = db.Postgres, `^1[0-9]\.[0-9]+ `
	}
	if in.Backend != want || !regexp.MustCompile(version).MatchString(in.ServerVersion) {
		t.Errorf("info %+v: want backend %s, server version matching %s", in, want, version)
	}
	if in.SizeBytes <= 0 {
		t.Fatalf("size %d", in.SizeBytes)
	}
	if _, err := d.ExecContext(ctx, `INSERT INTO sequences(kind, last) SELECT 'k' || x, x FROM (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < 20000) SELECT x FROM n) AS n`); err != nil {
		t.Fatal(err)
	}
	if !dbtest.Postgres() {
		// The file's size: the rows are in the write-ahead log until a
		// checkpoint.
		if _, err := d.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
	}
	after, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.SizeBytes <= in.SizeBytes {
		t.Errorf("size %d after 20000 rows, %d before", after.SizeBytes, in.SizeBytes)
	}
}
