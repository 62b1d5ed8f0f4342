package transfer_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/transfer"
)

// TestHTTPPullAcrossHosts: two hosts sharing a PostgreSQL database pull
// one endpoint of a site at once, each into its own inbox with its own
// lock files. The second waits for the site's lock across the hosts
// (docs/transfers.md, "Concurrency and exit codes") and then finds the
// page fetched: it is pulled, recorded and imported once. Without that
// lock both fetched the page, both found it not fetched yet, and each
// host's inbox had it to import.
func TestHTTPPullAcrossHosts(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("a SQLite database serves one host: the lock file keeps its runs apart")
	}
	ctx := context.Background()
	asked := make(chan struct{}, 2)
	srv := httptest.NewTLSServer(&partner{answer: func(w http.ResponseWriter, r *http.Request, key string, n int) bool {
		asked <- struct{}{}
		io.WriteString(w, `[{"purchaseOrderId": 1}]`)
		return true
	}})
	defer srv.Close()
	d := openTestDB(t)
	s := httpSite(t, srv, nil)
	inboxes := []string{t.TempDir(), t.TempDir()}
	// The ledger takes no new row until the test lets it: a pull that
	// has fetched the page and found it new waits there.
	_, release := dbtest.Hold(t, d, `LOCK TABLE transfers IN SHARE MODE`)
	results := make(chan error, 2)
	pull := func(d *db.DB, inbox string) {
		_, err := transfer.HTTPPull(ctx, d, s, transfer.HTTPPullOptions{SiteName: "wms", Endpoint: "/api/v1/purchaseOrders",
			To: inbox, LockDir: t.TempDir()})
		results <- err
	}
	go pull(d, inboxes[0])
	if dbtest.LockWaiters(t, d, 1) != 1 {
		release()
		t.Fatalf("the first host's pull never came to record its page (%v)", <-results)
	}
	<-asked
	go pull(dbtest.OpenAgain(t, d), inboxes[1])
	secondArrives(t, d, asked)
	release()
	for range inboxes {
		if err := <-results; err != nil && !errors.Is(err, transfer.ErrBusy) {
			t.Errorf("pull: %v, want done or busy", err)
		}
	}
	var pages []string
	for _, dir := range inboxes {
		got, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		pages = append(pages, got...)
	}
	var done int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM transfers WHERE direction = 'pull' AND status = 'done'`).Scan(&done); err != nil {
		t.Fatal(err)
	}
	if len(pages) != 1 || done != 1 {
		t.Errorf("pages in the hosts' inboxes %v, %d pulls recorded done; want one", pages, done)
	}
}

// secondArrives waits, up to 10 s, until the second host's pull waits for
// the site's lock across hosts, or else asks for the page too and comes
// to record it. The lock's wait is no wait on a lock that the server sees
// (dbtest.LockWaiters): db.LockSession tries it every 50 ms. A session
// whose last query was a try is the holder or one that tries: two of them
// is the second host trying.
func secondArrives(t *testing.T, d *db.DB, asked <-chan struct{}) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-asked:
			dbtest.LockWaiters(t, d, 2)
			return
		default:
		}
		var trying int
		if err := d.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_try_advisory_lock(%'`).Scan(&trying); err != nil {
			t.Fatal(err)
		}
		if trying == 2 {
			return
		}
	}
	t.Fatal("the second host's pull neither waited for the site nor asked for the page")
}
