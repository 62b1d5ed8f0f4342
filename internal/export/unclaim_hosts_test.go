package export

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/orders"
	"github.com/posbridge/posbridge/internal/partner"
)

// TestRecoveredStatusWhileOrderChanges: on PostgreSQL an order status
// export recovers a dead run's file, giving its status message back,
// while the order changes on another host and queues a newer status of
// it. The newer one stands and the old one goes, as when it was queued
// first. Given back unchecked, the old message met the newer one on the
// order's one ready status (order_messages_status_pending) and the
// export failed with the raw constraint error (exit 1).
func TestRecoveredStatusWhileOrderChanges(t *testing.T) {
	dbtest.WritersAtOnce(t)
	ctx := context.Background()
	f := newFixture(t)
	now := db.Now()
	for _, q := range []string{
		`INSERT INTO warehouses(warehouse, name, created_at, updated_at) VALUES ('S01', 'Store', ?1, ?1)`,
		`INSERT INTO orders(order_code, partner, external_key, warehouse, status, order_time, content_sha, created_at, updated_at)
VALUES ('W1', 'shop', 'W1', 'S01', 'open', ?1, '', ?1, ?1)`,
		// The dead run's file, and the status message it claimed.
		`INSERT INTO files(direction, kind, name, path, sha256, size, status, sequence, marker, created_at)
VALUES ('out', 'order_status', 'order_status_1.ndjson', '` + filepath.Join(f.dir, "order_status_1.ndjson") + `', '', 0, 'writing', 1, 0, ?1)`,
		`INSERT INTO order_messages(stream, partner, order_id, event_type, status, file_id, created_at, updated_at)
SELECT 'status', 'shop', o.id, 'PENDING', 'processing', f.id, ?1, ?1 FROM orders o, files f`,
	} {
		if _, err := f.d.ExecContext(ctx, q, now); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The order's change on another host, queuing its newer status: not
	// committed yet.
	change, release := dbtest.Hold(t, f.d, `INSERT INTO order_messages(stream, partner, order_id, event_type, status, created_at, updated_at)
SELECT 'status', 'shop', id, 'COMPLETED', 'ready', '`+now+`', '`+now+`' FROM orders`)
	done := make(chan error, 1)
	other := dbtest.OpenAgain(t, f.d)
	go func() {
		_, err := Orders(ctx, other, orders.StreamStatus, partner.Profile{Name: "shop", Kind: partner.StorePOS}, f.opts())
		done <- err
	}()
	if waiting := dbtest.LockWaiters(t, f.d, 1); waiting != 1 {
		release()
		t.Fatalf("%d sessions wait on a lock, want the recovery waiting on the change (export: %v)", waiting, <-done)
	}
	if _, err := change.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("export of the order status: %v", err)
	}
	f.want("status messages", f.rows(`SELECT event_type, status FROM order_messages ORDER BY id`), "COMPLETED|processed")
}
