package export

import (
	"context"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/trigger"
)

// TestFirstFeedWhileLoadDeletes: on PostgreSQL the first engagement feed
// of customers starts while a full load on another host, which has taken
// its change number, removes a customer never exported: with no feed in
// use yet (trigger.FeedInUse) the load removes it outright, keeping no
// tombstone. The feed waits for the load to commit and sends the
// customers without it. Without the wait the feed's snapshot saw the
// customer still there and sent it, the load's delete went with no
// tombstone for the next feed to send, and the engagement system kept
// the customer for good.
func TestFirstFeedWhileLoadDeletes(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	f := newFixture(t)
	f.load("customers", catalog.ModeDelta, "customer,last_name\nC1,Ash\nC2,Birch\n")
	// The load, under way as catalog's deleteGone runs it: its number
	// taken, C2 (its A trigger cancelled) deleted, not committed yet.
	load, release := dbtest.Hold(t, f.d, `SELECT 1`)
	seq, err := catalog.NextChangeSeq(ctx, load)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := load.ExecContext(ctx, `DELETE FROM customers WHERE customer = 'C2' AND NOT `+trigger.FeedInUse("customers")); err != nil {
		t.Fatal(err)
	}
	if _, err := load.ExecContext(ctx, `UPDATE customers SET deleted_at = ?1, updated_at = ?1, change_seq = ?2 WHERE customer = 'C2'`,
		db.Now(), seq); err != nil {
		t.Fatal(err)
	}
	other := dbtest.OpenAgain(t, f.d)
	type result struct {
		res *Result
		err error
	}
	first := make(chan result, 1)
	go func() {
		res, err := Engagement(ctx, other, f.opts())
		first <- result{res, err}
	}()
	// The feed waits for the load (or, unfixed, is done without).
	dbtest.LockWaiters(t, f.d, 1)
	if _, err := load.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	release()
	r := <-first
	if r.err != nil {
		t.Fatal(r.err)
	}
	sent, next := f.sent(r.res), f.feed(f.opts())
	f.want("first feed", sent["engagement_customers"], "A C1")
	f.want("next feed", next["engagement_customers"])
}
