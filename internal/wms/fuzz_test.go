package wms

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/imports"
)

// FuzzWMS feeds Ongoing messages to import receipts (counts false) or
// import counts (counts true), each on a fresh state. Whatever the input:
// no panic, and a failure is a failed file (imports.ErrFile,
// or fsx.ErrEncoding for a file in another encoding than UTF-8); a file with
// a rejected record applies nothing (all or nothing); stock stays in its
// range and what is kept passes format.CheckText; and the same file
// imported again moves no stock: each fact is applied once.
//
//	go test ./internal/wms -run '^$' -fuzz '^FuzzWMS$' -fuzztime 30s
func FuzzWMS(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "wms-*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(false, b)
		}
	}
	for _, s := range []string{
		inbound(5001, 70, "2.0"),
		"[" + inbound(5001, 70, "2.0") + "," + inbound(5002, 71, "1") + "]",
		`{"goodsOwner":{"id":159},"purchaseOrderInfo":{"purchaseOrderId":9,"purchaseOrderNumber":"PO-1","warehouse":{"code":"store-01"}},
"purchaseOrderLines":[{"id":1,"rowNumber":"1","article":{"articleNumber":"111"},"advisedNumberOfItems":4.0,"receivedNumberOfItems":3.0,"articleItems":[{"originalArticleItemId":70}]}]}`,
		`{"webhookEventId":6,"goodsOwnerId":159,"purchaseOrderId":9,"purchaseOrderNumber":"PO-1"}`,
	} {
		f.Add(false, []byte(s))
	}
	for _, s := range []string{
		`{"webhookEventId":7001,"goodsOwnerId":159,"transaction":{"transactionNumberOfItems":-2.0,"inventoryAdjustmentCause":{"code":"DMG"}},"inventory":{"inventoryId":1,"isCountInventory":false},"article":{"articleNumber":"111"},"location":{"location":"A-1","warehouse":{"warehouseCode":"store-01"}}}`,
		`[{"article":{"articleNumber":"111"},"inventoryAdjustments":[{"inventoryId":2,"numberOfItems":1.0,"location":"A-1","batchNumber":"","serial":"","warehouse":{"code":"store-02"}}]}]`,
		`{"webhookEventId":7002,"transaction":{"transactionNumberOfItems":1e3},"inventory":{"inventoryId":3},"article":{"articleNumber":"1\u0000"},"location":{}}`,
	} {
		f.Add(true, []byte(s))
	}
	// Each input starts from a copy of one seeded database: migrating a
	// new one for each would be most of the time of an input.
	template := filepath.Join(f.TempDir(), "posbridge.db")
	d, err := seedAt(template)
	if err == nil {
		err = d.Close() // the last connection checkpoints the WAL into the file
	}
	if err != nil {
		f.Fatal(err)
	}
	image, err := os.ReadFile(template)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, counts bool, data []byte) {
		ctx := context.Background()
		dbPath := filepath.Join(t.TempDir(), "posbridge.db")
		if err := os.WriteFile(dbPath, image, 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := db.Open(ctx, dbPath, db.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		path := filepath.Join(t.TempDir(), "m.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		run := ImportReceipts
		if counts {
			run = ImportCounts
		}
		state := func() string {
			return stock(t, d) + rows(t, d, `SELECT * FROM partner_events ORDER BY event_id`) +
				rows(t, d, `SELECT * FROM wms_po_lines ORDER BY line_id`) + rows(t, d, `SELECT * FROM wms_adjustments ORDER BY inventory_id`)
		}
		before := state()
		opts := imports.Options{MaxFieldLength: 1000}
		res, _, err := run(ctx, d, wmsPartner, path, opts)
		if err != nil && !errors.Is(err, imports.ErrFile) && !errors.Is(err, fsx.ErrEncoding) {
			t.Fatalf("import failed, not as a file: %v", err)
		}
		if err != nil || res.Rejected > 0 {
			if got := state(); got != before {
				t.Fatalf("a file with a rejected record changed the state:\n%s\nwas\n%s", got, before)
			}
			return
		}
		var bad int
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM inventory WHERE abs(on_hand) > ?1 OR abs(reserved) > ?1`, format.MaxQuantity).Scan(&bad); err != nil || bad > 0 {
			t.Fatalf("%d stock rows out of range (%v)", bad, err)
		}
		for _, q := range []string{`SELECT purchase_order, row_number, article, source FROM wms_po_lines`,
			`SELECT article, location, batch, serial, source FROM wms_adjustments`, `SELECT event_id FROM partner_events`,
			`SELECT coalesce(reference, ''), coalesce(reason, '') FROM inventory_txns`} {
			if err := format.CheckText(rows(t, d, q), 0); err != nil {
				t.Fatalf("%s: kept text that %v", q, err)
			}
		}
		after := stock(t, d)
		opts.Force = true
		if _, _, err := run(ctx, d, wmsPartner, path, opts); err != nil {
			t.Fatalf("the same file again: %v", err)
		}
		if got := stock(t, d); got != after {
			t.Fatalf("the same file again moved stock: %s, was %s", got, after)
		}
	})
}

// rows is the result of q as text, a row a line.
func rows(t *testing.T, d *db.DB, q string) string {
	t.Helper()
	r, err := d.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer r.Close()
	cols, _ := r.Columns()
	var out []byte
	for r.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := r.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			out = fmt.Append(out, v, "|")
		}
		out = append(out, '\n')
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return string(out)
}
