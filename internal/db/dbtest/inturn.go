package dbtest

import (
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db"
)

// InTurn makes two hosts meet on a lock on PostgreSQL: it runs first and
// then second on handles of d's database of their own (OpenAgain), while
// the test holds a row with hold, a locking read (Hold). first is under
// way, waiting on a lock, before second starts, and both wait before the
// row is let go, first in line. It returns their errors.
func InTurn(t *testing.T, d *db.DB, hold string, first, second func(*db.DB) error) (error, error) {
	t.Helper()
	_, release := Hold(t, d, hold)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, fn := range []func(*db.DB) error{first, second} {
		host := OpenAgain(t, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(host)
		}()
		if waiting := LockWaiters(t, d, i+1); waiting != i+1 {
			release()
			wg.Wait()
			t.Fatalf("%d sessions wait on a lock, want %d (errors: %v)", waiting, i+1, errs)
		}
	}
	release()
	wg.Wait()
	return errs[0], errs[1]
}
