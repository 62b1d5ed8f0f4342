package imports

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestEvictedSKUsSameTables: an applier that holds few SKUs at a time
// (maxHeld) writes back what it holds and reads again what the file names
// after; the stock, the history and the triggers end as when it holds
// them all. ORG-11 has no stock: its first row (A, added) is written back
// before the file adds to it again, where the SKU has stock (its own): its
// trigger stays A. 50 off BLK-9 in S02 SF01 (10, after +5) is refused as
// negative stock either way, and the rows ORG-10 and others get in DC1
// (no location) take their 25 or 26 receipts.
func TestEvictedSKUsSameTables(t *testing.T) {
	var b strings.Builder
	b.WriteString(txnHead)
	b.WriteString("R,IT0000001,ORG-11,DC1,,5\nR,IT0000001,BLK-9,S02,SF01,5\n")
	// The applier writes back between two batches: ORG-11's next records
	// come in the next.
	skus := []string{"BLK-8", "BLK-10", "BLK-11", "BLU-8", "BLU-9", "BLU-10", "BLU-11", "ORG-8", "ORG-9", "ORG-10"}
	for i := range batchSize {
		fmt.Fprintf(&b, "R,IT0000001,%s,DC1,,1\n", skus[i%len(skus)])
	}
	b.WriteString("R,IT0000001,ORG-11,DC2,,3\nA,IT0000001,ORG-11,DC1,,-2\nS,IT0000001,BLK-9,S02,SF01,50\nA,IT0000001,BLK-9,S02,SF01,-4\n")
	var want string
	for _, held := range []int{maxHeld, 2} {
		t.Run(fmt.Sprint("held ", held), func(t *testing.T) {
			defer func(was int) { maxHeld = was }(maxHeld)
			maxHeld = held
			f := newTxnFixture(t)
			if _, err := f.d.Exec(`UPDATE triggers SET status = 'processed'`); err != nil {
				t.Fatal(err)
			}
			res, err := ImportTransactions(context.Background(), f.d, f.write("in.csv", b.String()), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			fmt.Fprintf(&out, "read %d, applied %d, rejected %d, triggers %d\n", res.Read, res.Applied, res.Rejected, res.Triggers)
			dumpRows(t, &out, f.d, "inventory_txns", `SELECT line, code, item, sku, warehouse, location, quantity, before_on_hand, after_on_hand
FROM inventory_txns ORDER BY id`)
			dumpRows(t, &out, f.d, "inventory", `SELECT item, sku, warehouse, location, on_hand FROM inventory WHERE change_seq = (SELECT max(change_seq) FROM inventory)
ORDER BY item, sku, warehouse, location`)
			dumpRows(t, &out, f.d, "triggers", `SELECT record_key, sub_key, capture FROM triggers WHERE status = 'ready' ORDER BY record_key, sub_key`)
			if want == "" {
				want = out.String()
				for _, s := range []string{"read 262, applied 261, rejected 1, triggers 12", "IT0000001|ORG-11|A", "IT0000001|BLK-9|S02|SF01|11"} {
					if !strings.Contains(want, s) {
						t.Fatalf("holding every SKU: no %q in\n%s", s, want)
					}
				}
			} else if out.String() != want {
				t.Errorf("holding %d SKUs and balances:\n%s\nholding them all:\n%s", held, out.String(), want)
			}
		})
	}
}

// TestBalancesOfManyPlaces: a SKU's balances are found by a scan, and by
// an index past scanned of them; each place has one balance either way.
func TestBalancesOfManyPlaces(t *testing.T) {
	s := &skuState{}
	got := map[placeKey]*balance{}
	seen := map[*balance]bool{}
	for round := range 2 {
		for i := range 3 * scanned {
			k := placeKey{fmt.Sprint("W", i%3), fmt.Sprint("L", i)}
			b := s.balance(k.warehouse, k.location)
			if round == 0 {
				if seen[b] {
					t.Fatalf("%v: the balance of another place", k)
				}
				got[k], seen[b] = b, true
			} else if got[k] != b {
				t.Fatalf("%v: another balance the second time", k)
			}
		}
	}
	if len(s.stock) != 3*scanned {
		t.Errorf("%d balances, want %d", len(s.stock), 3*scanned)
	}
}
