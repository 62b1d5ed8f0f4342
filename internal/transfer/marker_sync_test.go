package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// TestPullMarkerAfterFailedFolderSync: a pulled file's folder is synced
// when its done row is committed, after pullOne returned: a sync that
// fails fails the file, and its marker must then stay on the site. Found
// in review: the marker was fetched and deleted meanwhile, and with
// --require-marker the next runs skipped the file forever ("no marker").
func TestPullMarkerAfterFailedFolderSync(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, local, locks := filepath.Join(dir, "site"), filepath.Join(dir, "in"), filepath.Join(dir, "locks")
	for _, p := range []string{filepath.Join(root, "out"), local} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"f.csv", "f.csv.done"} {
		p := filepath.Join(root, "out", n)
		os.WriteFile(p, []byte("x,"+n), 0o644)
		os.Chtimes(p, old, old)
	}
	site, err := NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	d := dbtest.Open(t)
	from, _ := site.Check("out")
	entries, err := site.List(from)
	if err != nil {
		t.Fatal(err)
	}
	var ef, em Entry
	for _, e := range entries {
		switch e.Name {
		case "f.csv":
			ef = e
		case "f.csv.done":
			em = e
		}
	}
	// One run, as Pull's worker does it, whose first folder sync fails (EIO).
	st := newStmts(d)
	fails := 1
	o := PullOptions{SiteName: "s", From: "out", To: local, After: AfterDelete, RequireMarker: true, Now: time.Now}
	o.dirSync = &groupSync{sync: func() error {
		if fails > 0 {
			fails--
			return errors.New("sync: input/output error")
		}
		return nil
	}}
	var first []FileResult
	for _, frs := range inParallel(ctx, st, 1, 1, func(w *worker, i int) []FileResult {
		return pullUnit(ctx, w, site, o, from, "", ef, em, true)
	}) {
		first = append(first, frs...)
	}
	st.Close()
	if len(first) != 1 || first[0].Status != "failed" {
		t.Fatalf("first run: %+v, want f.csv failed and its marker left", first)
	}
	if _, err := os.Stat(filepath.Join(root, "out", "f.csv.done")); err != nil {
		t.Fatalf("the marker is gone from the site after its file failed: %v", err)
	}
	// The next runs.
	for range 2 {
		res, err := Pull(ctx, d, site, PullOptions{SiteName: "s", From: "out", To: local, After: AfterDelete, RequireMarker: true,
			LockDir: locks, Sleep: func(time.Duration) {}})
		if err != nil {
			t.Fatalf("next run: %+v, %v", res, err)
		}
	}
	_, ferr := os.Stat(filepath.Join(root, "out", "f.csv"))
	_, merr := os.Stat(filepath.Join(root, "out", "f.csv.done"))
	last, _, _ := ledger.LastTransfer(ctx, d, "s", "pull", "out/f.csv")
	if !errors.Is(ferr, os.ErrNotExist) || !errors.Is(merr, os.ErrNotExist) || last.Status != ledger.TransferDone {
		t.Errorf("after the next runs: f.csv %v, marker %v, row %s/%s; want both fetched and deleted, f.csv done", ferr, merr, last.Status, last.Stage)
	}
}
