package transfer

import (
	"context"
	"errors"
	"testing"

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
}
