package wms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/imports"
)

var wmsPartner = config.Partner{Profile: config.ProfileWMS, SKUCode: config.SKUCodeUPC, Location: "L1", Warehouse: "S01"}

// seed is a state with two SKUs: RED S (UPC 111) with 5 on hand in S01
// location A1 and 2 in B1, and RED M (UPC 222) with no stock.
func seed(t *testing.T) *db.DB {
	t.Helper()
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "posbridge.db"), db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Store', ?1, ?1)`,
		`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Jacket', ?1, ?1)`,
		`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'RED S', '111', ?1, ?1), ('IT1', 'RED M', '222', ?1, ?1)`,
		`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'S01', 'A1', 5, 0, ?1),
  ('IT1', 'RED S', 'S01', 'B1', 2, 0, ?1)`,
	} {
		if _, err := d.ExecContext(ctx, q, now); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func stock(t *testing.T, d *db.DB) string {
	t.Helper()
	rows, err := d.QueryContext(context.Background(), `SELECT sku, location, on_hand FROM inventory ORDER BY sku, location`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var sku, loc string
		var n int64
		if err := rows.Scan(&sku, &loc, &n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s|%s|%d;", sku, loc, n)
	}
	return b.String()
}

func TestReceipts(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		files   []string
		applied int64 // of the last file
		reject  string
		want    string
	}{
		{name: "to the SKU's biggest location and a new row",
			files:   []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3},{"rowNumber":2,"articleNumber":"222","receivedNumberOfItems":4}]}`},
			applied: 2, want: "RED M||4;RED S|A1|8;RED S|B1|2;"},
		{name: "cumulative: only the increase",
			files: []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3}]}`,
				`{"webhookEventId":"e2","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":4}]}`},
			applied: 1, want: "RED S|A1|9;RED S|B1|2;"},
		{name: "re-sent event",
			files: []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3}]}`,
				`[{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3}]}]`},
			applied: 0, want: "RED S|A1|8;RED S|B1|2;"},
		{name: "unknown article rejects the file",
			files:  []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3},{"rowNumber":2,"articleNumber":"999","receivedNumberOfItems":1}]}`},
			reject: `unknown article`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "row twice",
			files:  []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3},{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":1}]}`},
			reject: `rowNumber 1 is given twice`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "negative received",
			files:  []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":-3}]}`},
			reject: `cannot be negative`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "another article on a received row",
			files: []string{`{"webhookEventId":"e1","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"111","receivedNumberOfItems":3}]}`,
				`{"webhookEventId":"e2","purchaseOrderNumber":"P1","lines":[{"rowNumber":1,"articleNumber":"222","receivedNumberOfItems":4}]}`},
			reject: `was received as article`, want: "RED S|A1|8;RED S|B1|2;"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			var res *imports.Result
			for i, f := range c.files {
				var err error
				res, _, err = ImportReceipts(ctx, d, "w", wmsPartner, write(t, fmt.Sprintf("r%d.json", i), f), imports.Options{})
				if err != nil {
					t.Fatal(err)
				}
			}
			if c.reject != "" {
				b, _ := os.ReadFile(res.RejectsFile)
				if res.Rejected == 0 || !res.RolledBack || !strings.Contains(string(b), c.reject) {
					t.Errorf("rejected %d, rolled back %v, rejects %q; want %q", res.Rejected, res.RolledBack, b, c.reject)
				}
			} else if res.Applied != c.applied || res.Rejected != 0 {
				t.Errorf("applied %d, rejected %d; want %d, 0", res.Applied, res.Rejected, c.applied)
			}
			if got := stock(t, d); got != c.want {
				t.Errorf("stock %s, want %s", got, c.want)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, file, reject, want string
	}{
		{name: "signed adjustments", file: `[{"webhookEventId":"c1","adjustments":[{"articleNumber":"111","location":"l1","numberOfItems":-2,"causeCode":"DMG"},{"articleNumber":"222","numberOfItems":"3","isStockTaking":true}]}]`,
			want: "RED M||3;RED S|A1|3;RED S|B1|2;"},
		{name: "unknown location", file: `{"webhookEventId":"c1","adjustments":[{"articleNumber":"111","location":"L9","numberOfItems":1}]}`,
			reject: `L9"": unknown location`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "below zero", file: `{"webhookEventId":"c1","adjustments":[{"articleNumber":"111","numberOfItems":-6}]}`,
			reject: `negative stock is not allowed`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "bad flag", file: `{"webhookEventId":"c1","adjustments":[{"articleNumber":"111","numberOfItems":1,"isStockTaking":"maybe"}]}`,
			reject: `isStockTaking ""maybe""`, want: "RED S|A1|5;RED S|B1|2;"},
		{name: "no event id", file: `{"adjustments":[{"articleNumber":"111","numberOfItems":1}]}`,
			reject: `webhookEventId is required`, want: "RED S|A1|5;RED S|B1|2;"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			res, _, err := ImportCounts(ctx, d, "w", wmsPartner, write(t, "c.json", c.file), imports.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if c.reject != "" {
				b, _ := os.ReadFile(res.RejectsFile)
				if res.Rejected == 0 || !strings.Contains(string(b), c.reject) {
					t.Errorf("rejected %d, rejects %q; want %q", res.Rejected, b, c.reject)
				}
			} else if res.Rejected != 0 {
				t.Errorf("rejected %d", res.Rejected)
			}
			if got := stock(t, d); got != c.want {
				t.Errorf("stock %s, want %s", got, c.want)
			}
		})
	}
}
