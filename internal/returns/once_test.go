package returns

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/imports"
)

// TestSameReturnAtOnce: two hosts import, at the same moment, two files of
// a partner with the same return (a re-send with another awbNumber). On
// PostgreSQL both may find no such return and add it; the second insert
// breaks the return key's unique constraint, which must not fail its
// file: that import updates the return the other added.
func TestSameReturnAtOnce(t *testing.T) {
	ctx := context.Background()
	target := pgtest.Start(t)
	first, err := db.Open(ctx, target, db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := seedRows(ctx, first); err != nil {
		t.Fatal(err)
	}
	second := dbtest.OpenAgain(t, first)
	for round := range 10 { // new returns, so that some rounds overlap
		var wg sync.WaitGroup
		stats := make([]Stats, 2)
		for i, d := range []*db.DB{first, second} {
			path := write(t, fmt.Sprintf("r%d-%d.json", round, i), fmt.Sprintf(`{"returnOrderCode":"RET-%d","eventType":"RETURN_ORDER_CREATE",`+
				`"orderType":"CUSTOMER_RETURN","awbNumber":"AWB-%d","orderItems":[{"returnItemCode":"RI-1","channelSkuCode":"111"}]}`, round, i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if _, stats[i], err = Import(ctx, d, oms, path, imports.Options{}); err != nil {
					t.Errorf("round %d: an import failed: %v", round, err)
				}
			}()
		}
		wg.Wait()
		if added, updated := stats[0].Added+stats[1].Added, stats[0].Updated+stats[1].Updated; added != 1 || updated != 1 {
			t.Errorf("round %d: %d added and %d updated, want 1 and 1", round, added, updated)
		}
	}
}
