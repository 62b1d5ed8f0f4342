package inquiry

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// The demo data set (testdata/demo) is loaded once into a template
// database; each test gets its own copy, which it may change.
var demo struct {
	once sync.Once
	path string
	err  error
}

func loadDemo() (string, error) {
	dir, err := os.MkdirTemp("", "inquiry-demo-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "posbridge.db")
	ctx := context.Background()
	d, err := db.Open(ctx, path, db.Options{Create: true})
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := loadDemoInto(ctx, d); err != nil {
		return "", err
	}
	// One file to copy: no WAL left beside it.
	_, err = d.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return path, err
}

// loadDemoInto loads the demo data set into d through the real loads.
func loadDemoInto(ctx context.Context, d *db.DB) error {
	for _, kind := range []string{"warehouses", "vendors", "items", "customers", "invoices", "inventory"} {
		res, err := catalog.Load(ctx, d, kind, filepath.Join("..", "..", "testdata", "demo", kind+".csv"), catalog.Options{})
		if err != nil {
			return fmt.Errorf("load %s: %w", kind, err)
		}
		if res.Rejected != 0 {
			return fmt.Errorf("load %s: %d rows rejected", kind, res.Rejected)
		}
	}
	return nil
}

func TestMain(m *testing.M) {
	code := pgtest.WithServer(m).Run()
	if demo.path != "" {
		os.RemoveAll(filepath.Dir(demo.path))
	}
	os.Exit(code)
}

// demoDB returns a database of its own holding the demo data: a copy of
// the template file, or on PostgreSQL a new database loaded with it.
func demoDB(t *testing.T) *db.DB {
	t.Helper()
	if dbtest.Postgres() {
		d := dbtest.Open(t)
		if err := loadDemoInto(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	demo.once.Do(func() { demo.path, demo.err = loadDemo() })
	if demo.err != nil {
		t.Fatal(demo.err)
	}
	path := filepath.Join(t.TempDir(), "posbridge.db")
	if err := copyFile(demo.path, path); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(context.Background(), path, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// exec runs statements that set up a case.
func exec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// loadCSV loads content as kind into d.
func loadCSV(t *testing.T, d *db.DB, kind, content string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), kind+".csv")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := catalog.Load(context.Background(), d, kind, path, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 0 {
		t.Fatalf("load %s: %d rows rejected", kind, res.Rejected)
	}
}
