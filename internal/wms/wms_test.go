package wms

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

var wmsPartner = partner.Profile{Name: "w", Kind: partner.WMS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01", GoodsOwnerID: 159,
	Locations: map[string]string{"store-01": "S01", "store-02": "S02"}}

// seedSQL makes a state with two SKUs: RED S (UPC 111) with 5 on hand
// in S01 location A1 and 2 in B1, and RED M (UPC 222) with no stock;
// stores S01 and S02 (?1 is the time).
var seedSQL = []string{
	`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Store', ?1, ?1), ('S02', 'Store 2', ?1, ?1)`,
	`INSERT INTO items(item, description, created_at, updated_at) VALUES ('IT1', 'Jacket', ?1, ?1)`,
	`INSERT INTO skus(item, sku, upc, created_at, updated_at) VALUES ('IT1', 'RED S', '111', ?1, ?1), ('IT1', 'RED M', '222', ?1, ?1)`,
	`INSERT INTO inventory(item, sku, warehouse, location, on_hand, reserved, updated_at) VALUES ('IT1', 'RED S', 'S01', 'A1', 5, 0, ?1),
  ('IT1', 'RED S', 'S01', 'B1', 2, 0, ?1)`,
}

// seed is a new database with the state of seedSQL.
func seed(t *testing.T) *db.DB {
	t.Helper()
	d, err := seedAt(dbtest.Target(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// seedAt creates the database target (a SQLite path or a PostgreSQL
// URL) with the state of seedSQL.
func seedAt(target string) (*db.DB, error) {
	ctx := context.Background()
	d, err := db.Open(ctx, target, db.Options{Create: true})
	if err != nil {
		return nil, err
	}
	now := db.Now()
	for _, q := range seedSQL {
		if _, err := d.ExecContext(ctx, q, now); err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", q, err)
		}
	}
	return d, nil
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
	rows, err := d.QueryContext(context.Background(), `SELECT sku, warehouse, location, on_hand FROM inventory ORDER BY sku, warehouse, location`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var sku, w, loc string
		var n int64
		if err := rows.Scan(&sku, &w, &loc, &n); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s|%s|%s|%d;", sku, w, loc, n)
	}
	return b.String()
}

// inbound is an "Inbound transaction has been performed" webhook of line
// 1 of PO-1 receiving qty (as written) of article 111 in article item
// item.
func inbound(event, item int, qty string) string {
	return fmt.Sprintf(`{"webhookEventId":%d,"goodsOwnerId":159,"isReceive":true,"isMove":false,"article":{"articleNumber":"111"},
"articleItem":{"articleItemId":%d,"originalArticleItemId":%d,"numberOfItems":%s},
"purchaseOrder":{"purchaseOrderId":9,"purchaseOrderNumber":"PO-1","purchaseOrderLine":{"id":1,"rowNumber":"1"}}}`, event, item, item, qty)
}

// poGet is the GET of PO-1 whose line 1 (article 111) has received
// (as written), with the article items listed, in warehouse code wh.
func poGet(received, wh string, items ...int) string {
	var ai []string
	for _, i := range items {
		ai = append(ai, fmt.Sprintf(`{"originalArticleItemId":%d,"numberOfItems":1.0}`, i))
	}
	return fmt.Sprintf(`{"goodsOwner":{"id":159},"purchaseOrderInfo":{"purchaseOrderId":9,"purchaseOrderNumber":"PO-1","warehouse":{"code":%q}},
"purchaseOrderLines":[{"id":1,"rowNumber":"1","article":{"articleNumber":"111"},"advisedNumberOfItems":10.0,"receivedNumberOfItems":%s,"articleItems":[%s]}]}`,
		wh, received, strings.Join(ai, ","))
}

// run imports the files in turn and returns the last result.
func run(t *testing.T, d *db.DB, imp func(context.Context, *db.DB, partner.Profile, string, imports.Options) (*imports.Result, Stats, error),
	files []string) *imports.Result {
	t.Helper()
	var res *imports.Result
	for i, f := range files {
		var err error
		res, _, err = imp(context.Background(), d, wmsPartner, write(t, fmt.Sprintf("f%d.json", i), f), imports.Options{})
		if err != nil {
			t.Fatal(err)
		}
	}
	return res
}

func check(t *testing.T, d *db.DB, res *imports.Result, applied int64, reject, want string) {
	t.Helper()
	if reject != "" {
		b, _ := os.ReadFile(res.RejectsFile)
		if res.Rejected == 0 || !res.RolledBack || !strings.Contains(string(b), reject) {
			t.Errorf("rejected %d, rolled back %v, rejects %q; want %q", res.Rejected, res.RolledBack, b, reject)
		}
	} else if res.Applied != applied || res.Rejected != 0 {
		t.Errorf("applied %d, rejected %d; want %d, 0", res.Applied, res.Rejected, applied)
	}
	if got := stock(t, d); got != want {
		t.Errorf("stock %s, want %s", got, want)
	}
}

func TestQuantity(t *testing.T) {
	for _, c := range []struct {
		in     num
		signed bool
		want   int64
		err    string
	}{
		{in: "5", want: 5},
		{in: "5.0", want: 5},
		{in: "-2.00", signed: true, want: -2},
		{in: "5.5", err: "a fraction"},
		{in: `"5.0"`, err: "not a string"},
		{in: "-1.0", err: "cannot be negative"},
		{in: "", err: "is required"},
		{in: "true", err: "want a number"},
		{in: "1e3", err: "not a whole number"},
		{in: "1000000000.0", want: 1000000000},
		{in: "-1000000001", signed: true, err: "out of range: -1000000001 is beyond ±1000000000"},
		{in: "99999999999999999999.0", err: "out of range: 99999999999999999999 is beyond ±1000000000"},
	} {
		n, err := quantity("f", c.in, c.signed)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.in, err, c.err)
			}
		} else if err != nil || n != c.want {
			t.Errorf("%s: %d %v, want %d", c.in, n, err, c.want)
		}
	}
}

func TestReceipts(t *testing.T) {
	const start = "RED S|S01|A1|5;RED S|S01|B1|2;"
	for _, c := range []struct {
		name    string
		files   []string
		applied int64 // of the last file
		reject  string
		want    string
	}{
		{name: "webhook then GET: only the increase",
			files:   []string{inbound(1, 11, "3.0"), poGet("5.0", "STORE-01", 11, 12)},
			applied: 1, want: "RED S|S01|A1|10;RED S|S01|B1|2;"},
		{name: "GET then a late webhook of an article item it counted",
			files: []string{poGet("5.0", "", 11), inbound(1, 11, "5.0")},
			want:  "RED S|S01|A1|10;RED S|S01|B1|2;"},
		{name: "GET, a webhook of a new article item, the next GET",
			files:   []string{poGet("5.0", "", 11), inbound(2, 12, "2.0"), poGet("7.0", "", 11, 12)},
			applied: 0, want: "RED S|S01|A1|12;RED S|S01|B1|2;"},
		{name: "the same GET again", files: []string{poGet("5.0", "", 11), poGet("5.0", "", 11) + " "},
			want: "RED S|S01|A1|10;RED S|S01|B1|2;"},
		{name: "GET went down", files: []string{poGet("5.0", "", 11), poGet("4.0", "", 11)},
			reject: "receivedNumberOfItems 4.0 went down", want: "RED S|S01|A1|10;RED S|S01|B1|2;"},
		{name: "the purchase order's warehouse", files: []string{poGet("5.0", "store-02")},
			applied: 1, want: start + "RED S|S02||5;"},
		{name: "a move is no receipt",
			files: []string{strings.Replace(strings.Replace(inbound(1, 11, "3.0"), `"isMove":false`, `"isMove":true`, 1), `"isReceive":true`, `"isReceive":false`, 1)},
			want:  start},
		{name: "a fraction", files: []string{inbound(1, 11, "2.5")}, reject: "a fraction", want: start},
		{name: "a line's received total beyond the range",
			files:  []string{inbound(1, 11, "999999990.0"), inbound(2, 12, "11.0")},
			reject: "articleItem.numberOfItems 11.0: purchase order line 1 had 999999990 received before: the total is out of range: 1000000001 is beyond ±1000000000",
			want:   "RED S|S01|A1|999999995;RED S|S01|B1|2;"},
		{name: "a string", files: []string{inbound(1, 11, `"3.0"`)}, reject: "not a string", want: start},
		{name: "another goods owner", files: []string{strings.Replace(poGet("5.0", ""), `"id":159`, `"id":158`, 1)},
			reject: "goodsOwner.id 158: another goods owner", want: start},
		{name: "the same line id, another article",
			files:  []string{inbound(1, 11, "3.0"), strings.Replace(inbound(2, 12, "1.0"), `"111"`, `"222"`, 1)},
			reject: `purchase order line 1 was received as article ""111""`, want: "RED S|S01|A1|8;RED S|S01|B1|2;"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			check(t, d, run(t, d, ImportReceipts, c.files), c.applied, c.reject, c.want)
		})
	}
}

// invWebhook is an "Inventory transaction has been performed" webhook of
// article 111 in bin bin of warehouse code wh.
func invWebhook(event, inventory int, qty, bin, wh string) string {
	return fmt.Sprintf(`{"webhookEventId":%d,"goodsOwnerId":159,"transaction":{"transactionNumberOfItems":%s,"inventoryAdjustmentCause":{"id":1,"code":"DMG"}},
"inventory":{"inventoryId":%d,"isCountInventory":false},"article":{"articleNumber":"111"},"articleItem":{"batch":"","serial":""},
"location":{"location":%q,"warehouse":{"warehouseCode":%q}}}`, event, qty, inventory, bin, wh)
}

// adjGet is the inventoryAdjustments GET of article 111 with adjustments
// of inventoryId, numberOfItems and bin.
func adjGet(adj ...string) string {
	return `[{"article":{"articleNumber":"111"},"inventoryAdjustments":[` + strings.Join(adj, ",") + `]}]`
}

func adj(inventory int, qty, bin string) string {
	return fmt.Sprintf(`{"inventoryId":%d,"numberOfItems":%s,"inventoryAdjustmentCause":null,"location":%q,"batchNumber":"","serial":""}`, inventory, qty, bin)
}

func TestCounts(t *testing.T) {
	const start = "RED S|S01|A1|5;RED S|S01|B1|2;"
	for _, c := range []struct {
		name    string
		files   []string
		applied int64
		reject  string
		want    string
	}{
		{name: "webhook then the GET of the same adjustment",
			files:   []string{invWebhook(1, 7, "-2.0", "X-1", "STORE-01"), adjGet(adj(7, "-2.0", "X-1"), adj(8, "1.0", "X-2"))},
			applied: 1, want: "RED S|S01|A1|4;RED S|S01|B1|2;"},
		{name: "GET then the webhook", files: []string{adjGet(adj(7, "-2.0", "X-1")), invWebhook(1, 7, "-2.0", "X-1", "")},
			want: "RED S|S01|A1|3;RED S|S01|B1|2;"},
		{name: "one inventory in two bins is two adjustments", files: []string{adjGet(adj(7, "-1.0", "X-1"), adj(7, "-1.0", "X-2"))},
			applied: 2, want: "RED S|S01|A1|3;RED S|S01|B1|2;"},
		{name: "the same webhook twice in a file", files: []string{invWebhook(1, 7, "-2.0", "X-1", "") + "\n" + invWebhook(1, 7, "-2.0", "X-1", "")},
			applied: 1, want: "RED S|S01|A1|3;RED S|S01|B1|2;"},
		{name: "a mapped warehouse code", files: []string{invWebhook(1, 7, "4.0", "X-1", "Store-02")},
			applied: 1, want: start + "RED S|S02||4;"},
		{name: "an unmapped warehouse code", files: []string{invWebhook(1, 7, "4.0", "X-1", "STORE-09")},
			reject: `location.warehouse.warehouseCode ""STORE-09"": unknown warehouse`, want: start},
		{name: "below zero", files: []string{invWebhook(1, 7, "-6.0", "X-1", "")}, reject: "negative stock is not allowed", want: start},
		{name: "the old flattened shape", files: []string{`{"webhookEventId":"C-1","adjustments":[{"articleNumber":"111","numberOfItems":-2}]}`},
			reject: "a flattened count", want: start},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := seed(t)
			check(t, d, run(t, d, ImportCounts, c.files), c.applied, c.reject, c.want)
		})
	}
}
