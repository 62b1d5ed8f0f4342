package transfer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// Two hosts sharing a PostgreSQL database never transfer with one site at
// once: the second is busy (exit 75) while the first holds the site, and
// takes it once the first is done. (The lock file keeps apart the runs of
// one host; it cannot see another's.)
func TestSiteLockAcrossHosts(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	open := func() *db.DB {
		d, err := db.Open(ctx, url, db.Options{Create: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	host1, host2 := open(), open()
	defer func(w time.Duration) { siteLockWait = w }(siteLockWait)
	siteLockWait = 200 * time.Millisecond
	unlock, err := lockSiteAcrossHosts(ctx, host1, "pos")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockSiteAcrossHosts(ctx, host2, "pos"); !errors.Is(err, ErrBusy) {
		t.Fatalf("second host while the first holds the site: %v, want ErrBusy", err)
	}
	other, err := lockSiteAcrossHosts(ctx, host2, "wms")
	if err != nil {
		t.Fatalf("another site: %v", err)
	}
	other()
	unlock()
	again, err := lockSiteAcrossHosts(ctx, host2, "pos")
	if err != nil {
		t.Fatalf("second host after the first is done: %v", err)
	}
	again()

	// A lock given up while the next run waits for it (the session of a
	// run killed a moment ago, which the server has not ended yet) is
	// taken, not reported busy.
	siteLockWait = 5 * time.Second
	held, err := lockSiteAcrossHosts(ctx, host1, "pos")
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(300*time.Millisecond, held)
	start := time.Now()
	next, err := lockSiteAcrossHosts(ctx, host2, "pos")
	if err != nil {
		t.Fatalf("a run starting while the lock goes: %v, want the lock", err)
	}
	next()
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("took the lock after %s, while the first held it for 300ms", waited)
	}
}
