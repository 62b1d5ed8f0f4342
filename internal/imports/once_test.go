package imports

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// TestSameContentAtOnce: two hosts import the same content into one
// database at the same moment, each through its own connection pool. The
// content is applied once: one import applies it, the other says it was
// applied before (exit 0), and never fails on the ledger. On PostgreSQL
// writers do not exclude each other as SQLite's do, which is where a check
// of the ledger before the insert let both apply it.
func TestSameContentAtOnce(t *testing.T) {
	for _, backend := range []struct {
		name   string
		target func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "posbridge.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			ctx := context.Background()
			target := backend.target(t)
			first, err := db.Open(ctx, target, db.Options{Create: true})
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			second := dbtest.OpenAgain(t, first)
			// Each host has its own copy of the file, as two hosts
			// fetching the same remote file would.
			var paths []string
			for _, host := range []string{"a", "b"} {
				p := filepath.Join(t.TempDir(), host+".csv")
				if err := os.WriteFile(p, []byte("one record\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
			}

			type outcome struct {
				res *Result
				err error
			}
			start := make(chan struct{})
			done := make(chan outcome, 2)
			for i, d := range []*db.DB{first, second} {
				go func() {
					<-start
					res, err := Run(ctx, d, countingUpload, paths[i], Options{})
					done <- outcome{res, err}
				}()
			}
			close(start)
			var applied, same int
			for range 2 {
				o := <-done
				switch {
				case o.err != nil:
					t.Errorf("an import failed: %v", o.err)
				case o.res.SameAs != "":
					same++
				case o.res.Applied == 1:
					applied++
				default:
					t.Errorf("an import neither applied nor found the content applied: %+v", o.res)
				}
			}
			if applied != 1 || same != 1 {
				t.Errorf("%d imports applied the content and %d found it applied, want 1 and 1", applied, same)
			}
			var times, rows int64
			if err := first.QueryRowContext(ctx, `SELECT coalesce((SELECT last FROM sequences WHERE kind = 'once-test'), 0)`).Scan(&times); err != nil {
				t.Fatal(err)
			}
			if err := first.QueryRowContext(ctx, `SELECT count(*) FROM files WHERE kind = 'once-test'`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if times != 1 || rows != 1 {
				t.Errorf("applied %d times with %d ledger rows, want 1 and 1", times, rows)
			}
		})
	}
}

// countingUpload applies a file by counting, in the database, how often it
// was applied; it takes its time, so that two imports overlap.
var countingUpload = Upload{Kind: "once-test", What: "records",
	Open: func(f *os.File, path string, o *Options) ([]string, func(*Session) error, error) {
		return []string{"record"}, func(s *Session) error {
			s.Result.Read++
			if _, err := db.NextSequence(s.Ctx, s.Conn, "once-test"); err != nil {
				return err
			}
			time.Sleep(300 * time.Millisecond)
			s.Result.Applied++
			return nil
		}, nil
	}}
