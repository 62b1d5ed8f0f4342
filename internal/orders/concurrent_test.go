package orders

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// TestShipmentsAtOnce: two orders completed at once on PostgreSQL, 4 and
// 3 from 5 on hand, with negative stock not allowed. Each checks the stock
// its shipment leaves; read unlocked, both saw 5 and the stock went to -2.
// One ships, and the other is refused against what is left.
func TestShipmentsAtOnce(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("SQLite runs one write transaction at a time")
	}
	ctx := context.Background()
	d := seed(t)
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	for code, qty := range map[string]int{"W1": 4, "W2": 3} {
		path := filepath.Join(t.TempDir(), code+".json")
		body := fmt.Sprintf(`{"onlineReferenceNo": "%s", "createdAt": "2026-03-01 10:00:00", "status": "pending", `+
			`"orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": %d}]}`, code, qty)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if res, _, err := Import(ctx, d, p, path, imports.Options{}); err != nil || res.Applied != 1 {
			t.Fatalf("import %s: %+v %v", code, res, err)
		}
	}
	if oh, r := stockOf(t, d); oh != 5 || r != 7 {
		t.Fatalf("before: on hand %d reserved %d, want 5 7", oh, r)
	}
	// A transaction of the test holds the stock row, so that both
	// completions are under way before either writes.
	_, release := dbtest.Hold(t, d, `SELECT on_hand FROM inventory WHERE item = 'IT1' AND location = 'A1' FOR UPDATE`)
	codes := []string{"W1", "W2"}
	errs := make([]error, len(codes))
	var wg sync.WaitGroup
	for i, code := range codes {
		other := dbtest.OpenAgain(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Complete(ctx, other, code, false)
		}()
	}
	if waiting := dbtest.LockWaiters(t, d, len(codes)); waiting != len(codes) {
		release()
		wg.Wait()
		t.Fatalf("%d completions wait for the stock row, want %d (errors: %v)", waiting, len(codes), errs)
	}
	release()
	wg.Wait()
	shipped := 0
	for i, err := range errs {
		switch {
		case err == nil:
			shipped++
		case !errors.Is(err, ErrRefused):
			t.Fatalf("complete %s: %v", codes[i], err)
		}
	}
	oh, r := stockOf(t, d)
	if shipped != 1 || oh < 0 {
		t.Fatalf("%d of 2 shipped, on hand %d reserved %d (errors: %v): want one shipped, the other refused", shipped, oh, r, errs)
	}
	if want := map[bool][2]int64{true: {1, 3}, false: {2, 4}}[errs[0] == nil]; oh != want[0] || r != want[1] {
		t.Errorf("on hand %d reserved %d, want %d %d", oh, r, want[0], want[1])
	}
}
