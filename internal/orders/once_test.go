package orders

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/imports"
	"github.com/posbridge/posbridge/internal/partner"
)

// TestSameOrderAtOnce: two hosts import, at the same moment, two files of
// a partner with the same order (different content: a re-send). On
// PostgreSQL both may find no such order and add it; the second insert
// breaks the order key's unique constraint, which must not fail its file:
// that import updates the order the other added, as a later file would.
func TestSameOrderAtOnce(t *testing.T) {
	ctx := context.Background()
	first := dbtest.OpenPostgres(t)
	hosts := []*db.DB{first, dbtest.OpenAgain(t, first)}
	seedRows(t, hosts[0])
	p := partner.Profile{Name: "shop", Kind: partner.StorePOS, SKUCode: partner.SKUCodeUPC, Warehouse: "S01"}
	dir := t.TempDir()
	// Rounds of a new order each, so that the two imports overlap at
	// their look-up in some of them whatever the scheduling.
	const rounds = 10
	for round := range rounds {
		key := fmt.Sprintf("W%d", round)
		type outcome struct {
			st  Stats
			err error
		}
		start := make(chan struct{})
		done := make(chan outcome, len(hosts))
		for i, d := range hosts {
			path := filepath.Join(dir, fmt.Sprintf("%s-%d.json", key, i))
			content := fmt.Sprintf(`{"ONLINEREFERENCENO": %q, "CreatedAt": "2026-03-01 10:00:0%d",
  "orderItems": [{"rowNo": 1, "itemReferenceCode": "111", "quantity": 1}]}`, key, i)
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			go func() {
				<-start
				_, st, err := Import(ctx, d, p, path, imports.Options{})
				done <- outcome{st, err}
			}()
		}
		close(start)
		var added, updated int64
		for range hosts {
			o := <-done
			if o.err != nil {
				t.Fatalf("round %d: an import failed: %v", round, o.err)
			}
			added += o.st.Added
			updated += o.st.Updated
		}
		if added != 1 || updated != 1 {
			t.Errorf("round %d: %d added and %d updated, want 1 and 1", round, added, updated)
		}
	}
	var orders int64
	if err := hosts[0].QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&orders); err != nil {
		t.Fatal(err)
	}
	if orders != rounds {
		t.Errorf("%d orders, want %d", orders, rounds)
	}
}
