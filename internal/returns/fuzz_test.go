package returns

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/format"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/imports"
)

// FuzzReturns feeds Increff return files (expectations and return events)
// to import returns, each on a fresh copy of the test state. Whatever the
// input: no panic, and a failure is a failed file (imports.ErrFile,
// or fsx.ErrEncoding for a file in another encoding than UTF-8); a
// file with no return applied leaves the state as it was; every return
// kept holds text that passes format.CheckText and quantities in their
// range; and the same file imported again changes nothing (what is kept is
// what was read), unless the file gives a return twice.
//
//	go test ./internal/returns -run '^$' -fuzz '^FuzzReturns$' -fuzztime 30s
func FuzzReturns(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "bad", "returns-*"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"returnOrderCode": "R1", "orderType": "CUSTOMER_RETURN", "orderItems": [{"returnItemCode": "I1", "channelSkuCode": "111", "reason": "size"}, {"returnItemCode": "I2", "channelSkuCode": "222", "quantity": "2"}]}`,
		"{\"returnOrderCode\": \"R1\", \"orderType\": \"SELF_SHIP\", \"returnOrderTime\": \"2026-03-04T18:45:10.000+05:30\", \"orderItems\": [{\"returnItemCode\": \"I1\", \"channelSkuCode\": \"111\"}]}\n" +
			`{"returnOrderCode": "R1", "eventType": "RETURN_ORDER_PARTIAL_CANCEL", "orderItems": [{"returnItemCode": "I1", "status": "CANCELLED"}]}`,
		`[{"returnOrderCode": "R2", "eventType": "RETURN_ORDER_CANCEL", "status": "CANCELLED"}, {"returnOrderCode": 7}]`,
		"{\"returnOrderCode\": \"R\xff\", \"RETURNORDERCODE\": \"x\", \"orderType\": \"CUSTOMER_RETURN\", \"orderItems\": [{\"returnItemCode\": \"I\\u0000\", \"channelSkuCode\": \"111\", \"quantity\": \"99999999999999999999\"}]}",
	} {
		f.Add([]byte(s))
	}
	tables := `SELECT 'returns', * FROM returns ORDER BY id`
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		d := seed(t)
		path := filepath.Join(t.TempDir(), "r.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		state := func() string {
			return query(t, d, tables) + query(t, d, `SELECT * FROM return_items ORDER BY return_id, item_code`) +
				query(t, d, `SELECT id, stream, partner, return_id, event_type, payload, status FROM order_messages ORDER BY id`) +
				query(t, d, `SELECT * FROM inventory ORDER BY item, sku, warehouse, location`)
		}
		before := state()
		opts := imports.Options{MaxFieldLength: 1000}
		res, first, err := Import(ctx, d, oms, path, opts)
		if err != nil && !errors.Is(err, imports.ErrFile) && !errors.Is(err, fsx.ErrEncoding) {
			t.Fatalf("import failed, not as a file: %v", err)
		}
		if err != nil || res.Applied == 0 {
			if got := state(); got != before {
				t.Fatalf("nothing applied, yet the state changed:\n%s\nwas\n%s", got, before)
			}
			return
		}
		for _, line := range strings.Split(query(t, d, `SELECT return_code, forward_order_code, location_code, channel, event_type, order_type,
  awb_number, transporter FROM returns`)+query(t, d, `SELECT item_code, channel_sku_code, reason FROM return_items`), ";") {
			if err := format.CheckText(line, 0); err != nil {
				t.Fatalf("a return keeps %q, which %v", line, err)
			}
		}
		if bad := query(t, d, `SELECT count(*) FROM return_items WHERE quantity NOT BETWEEN 1 AND ?`, format.MaxQuantity); bad != "0;" {
			t.Fatalf("%s items with a quantity out of range", strings.TrimSuffix(bad, ";"))
		}
		if first.Updated > 0 {
			return // a return given twice: the later one wins, again on every import
		}
		after := state()
		opts.Force = true
		_, st, err := Import(ctx, d, oms, path, opts)
		if err != nil {
			t.Fatalf("the same file again: %v", err)
		}
		if st.Added != 0 || st.Updated != 0 || st.Cancelled != 0 {
			t.Fatalf("the same file again: %+v: what was kept is not what was read", st)
		}
		if got := state(); got != after {
			t.Fatalf("the same file again changed the state:\n%s\nwas\n%s", got, after)
		}
	})
}
