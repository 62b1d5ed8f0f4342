package catalog_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

// TestFullWarehousesLoadKeepsReferredWarehouses: a full load of
// warehouses keeps, with a warning, a warehouse it leaves out that no
// stock row names but an order or a return does, as it keeps one that
// stock names. Deleted, the load failed on the order's or return's
// foreign key: a database error (exit 1), nothing of the file loaded.
func TestFullWarehousesLoadKeepsReferredWarehouses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.delta("warehouses", "warehouse,name\nWH1,Main\nWH2,Store\nWH3,Outlet\nWH4,Closed\n")
	now := db.Now()
	if _, err := f.d.ExecContext(ctx, `INSERT INTO orders(order_code, partner, external_key, warehouse, status, order_time, content_sha, created_at, updated_at)
VALUES ('SO1', 'shop', 'W1', 'WH2', 'completed', ?1, 'x', ?1, ?1)`, now); err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.ExecContext(ctx, `INSERT INTO returns(partner, return_code, warehouse, order_type, content_sha, created_at, updated_at)
VALUES ('shop', 'R1', 'WH3', 'CUSTOMER_RETURN', 'x', ?1, ?1)`, now); err != nil {
		t.Fatal(err)
	}
	var warnings []string
	path := filepath.Join(t.TempDir(), "warehouses.csv")
	if err := os.WriteFile(path, []byte("warehouse,name\nWH1,Main\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := catalog.Load(ctx, f.d, "warehouses", path, catalog.Options{Mode: catalog.ModeFull,
		Warn: func(msg string) { warnings = append(warnings, msg) }})
	if err != nil {
		t.Fatalf("full load of warehouses: %v", err)
	}
	equal(t, "warehouses", f.strings(`SELECT warehouse FROM warehouses ORDER BY 1`), []string{"WH1", "WH2", "WH3"})
	if res.Deleted != 1 {
		t.Errorf("deleted %d, want 1 (WH4)", res.Deleted)
	}
	got := strings.Join(warnings, "\n")
	for _, want := range []string{"warehouse WH2 is not in the file but orders refer to it: kept", "warehouse WH3 is not in the file but returns refer to it: kept"} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings:\n%s\nwant %q", got, want)
		}
	}
}
