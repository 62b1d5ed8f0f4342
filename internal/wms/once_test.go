package wms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	"github.com/posbridge/posbridge/internal/imports"
)

// TestSameWebhookAtOnce: two hosts import, at the same moment, two files
// with the same webhook (webhookEventId) of a new article item: the one
// file as Ongoing sent it, the other with a webhook more. The webhook is
// applied once. An import that loses the race on PostgreSQL (it found the
// event new, the other committed it first) fails with exit 75 rather than
// a constraint error, and applies it as "applied before" when run again.
func TestSameWebhookAtOnce(t *testing.T) {
	ctx := context.Background()
	target := pgtest.Start(t)
	first, err := seedAt(target)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second := dbtest.OpenAgain(t, first)
	received := int64(5)    // on hand in A1, where receipts go
	for round := range 10 { // new webhooks, so that some rounds overlap
		event, item := 100+2*round, 1000+2*round
		files := []string{write(t, fmt.Sprintf("a%d.json", round), inbound(event, item, "1.0")),
			write(t, fmt.Sprintf("b%d.json", round), inbound(event, item, "1.0")+"\n"+inbound(event+1, item+1, "1.0"))}
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, d := range []*db.DB{first, second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, errs[i] = ImportReceipts(ctx, d, wmsPartner, files[i], imports.Options{})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err == nil {
				continue
			}
			if !errors.Is(err, db.ErrBusy) {
				t.Fatalf("round %d: an import failed, not as busy (exit 75): %v", round, err)
			}
			if _, _, err := ImportReceipts(ctx, first, wmsPartner, files[i], imports.Options{}); err != nil {
				t.Fatalf("round %d: the import again: %v", round, err)
			}
		}
		received += 2
		if got, want := stock(t, first), fmt.Sprintf("RED S|S01|A1|%d;RED S|S01|B1|2;", received); got != want {
			t.Fatalf("round %d: stock %s, want %s", round, got, want)
		}
	}
}
