package export

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/trigger"
)

// crashAt does by hand, with the code's own pieces, what a run of the
// items export recorded on host does up to status: the file claimed and
// its temporary file written ("writing"), or recorded written and not
// renamed ("written"). A host other than this one is another host that
// shares the database. It returns the file's path.
func crashAt(t *testing.T, f *fixture, o Options, host, status string) string {
	t.Helper()
	ctx := context.Background()
	run, err := ledger.InsertRun(ctx, f.d, ledger.Run{Command: "export items"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.d.ExecContext(ctx, `UPDATE runs SET host = ? WHERE id = ?`, host, run); err != nil {
		t.Fatal(err)
	}
	k := kinds["items"]
	o.defaults(k)
	o.RunID = run
	conn, err := f.d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := prepareDir(k, o.Dir); err != nil {
		t.Fatal(err)
	}
	file, fileID, err := startFile(ctx, conn, k, &o, func(fileID int64, _ string) (int64, int64, error) {
		return trigger.Claim(ctx, conn, k.code, fileID, run, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	w, err := writeFile(k, &o, file.Path, file.Records, func(emit func(node) error) error {
		return k.records(ctx, conn, claimedBy(fileID), &o, emit)
	})
	if err != nil {
		t.Fatal(err)
	}
	if status == fileWritten {
		if _, err := conn.ExecContext(ctx, `UPDATE files SET status = ?, sha256 = ?, size = ?, records = ? WHERE id = ?`,
			fileWritten, w.SHA256, w.Size, w.Records, fileID); err != nil {
			t.Fatal(err)
		}
	}
	return file.Path
}

// hidden runs fn with the file at path out of sight, as what is in
// another host's outbox is.
func hidden(t *testing.T, path string, fn func()) {
	t.Helper()
	if err := os.Rename(path, path+".elsewhere"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := os.Rename(path+".elsewhere", path); err != nil {
			t.Fatal(err)
		}
	}()
	fn()
}

// TestRecoverOtherHosts has a run find the files of a dead run of the
// items export, recorded on this host or another one sharing the
// database, in an outbox it can see or not (an outbox per host), with
// newer changes of the same records ready meanwhile. A file it can see,
// or that a run of this host wrote, it finishes as ever; an unfinished one
// it undoes whoever wrote it (the kind's lock, held across hosts, says no
// run of the kind is alive). Another host's written file that it cannot
// see stops the kind, writing nothing (a later file would carry the newer
// changes ahead of that file's older ones), until that host finishes it
// or the operator gives that host up (LostHost): then the file is undone
// and its records go out once, in the run's file. Every trigger ends in
// exactly one complete file.
func TestRecoverOtherHosts(t *testing.T) {
	const items = 40
	cases := []struct {
		name     string
		host     string // the host of the dead run; "" this one
		status   string
		hide     bool   // the outbox is out of sight during the run
		lostHost string // Options.LostHost
		// What the run after the crash does.
		completed, abandoned int64
		stops                bool // fails with ErrElsewhere, writing nothing
		resent               bool // writes the file's records again
		pushed               bool // its host pushed the file before it died
	}{
		{name: "this host's written file taken away", status: fileWritten, hide: true, completed: 1},
		{name: "another host's written file in sight", host: "int1", status: fileWritten, completed: 1},
		{name: "another host's written file out of sight", host: "int1", status: fileWritten, hide: true, stops: true},
		{name: "another host's written file, another host given up", host: "int1", status: fileWritten, hide: true, lostHost: "int9",
			stops: true},
		{name: "another host's written file, that host given up", host: "int1", status: fileWritten, hide: true, lostHost: "int1",
			abandoned: 1, resent: true},
		{name: "another host's unfinished file out of sight", host: "int1", status: fileWriting, hide: true, abandoned: 1, resent: true},
		{name: "another host's written file out of sight, pushed", host: "int1", status: fileWritten, hide: true, pushed: true, completed: 1},
		{name: "another host's written file out of sight, pushed, that host given up", host: "int1", status: fileWritten, hide: true,
			pushed: true, lostHost: "int1", completed: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			if f.d.Dialect == db.SQLite && c.host != "" && c.status == fileWritten {
				// One SQLite file is one host's state: TestRecoverRenamedHost.
				t.Skip("another host's written file: PostgreSQL only")
			}
			f.load("items", catalog.ModeDelta, itemsCSV(items, "10.00"))
			o := f.opts()
			o.Marker = true
			host := c.host
			if host == "" {
				host = ledger.Hostname()
			}
			path := crashAt(t, f, o, host, c.status)
			if c.pushed {
				// int1 put it into place and pushed it (to sent/, out of
				// sight here too) before it died.
				if _, err := f.d.ExecContext(ctx, `INSERT INTO transfers(site, direction, local_path, remote_path, sha256, status, created_at, updated_at)
SELECT 'partner', 'push', path, 'in/' || name, sha256, 'done', created_at, created_at FROM files WHERE path = ?`, path); err != nil {
					t.Fatal(err)
				}
			}
			if c.hide && c.host == "" {
				// Taken away by a transfer: gone from this host's outbox.
				if err := os.Remove(tmpPath(path)); err != nil {
					t.Fatal(err)
				}
			}
			// Newer changes of half of the crashed file's records.
			f.load("items", catalog.ModeDelta, itemsCSV(items/2, "11.00"))
			var crashed, newer int64
			if err := f.d.QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE shown = 'processing'), count(*) FILTER (WHERE shown = 'ready')
FROM `+shownTriggers).Scan(&crashed, &newer); err != nil {
				t.Fatal(err)
			}
			if crashed != items*5 || newer == 0 {
				t.Fatalf("%d triggers claimed by the crashed file, %d ready after the change; want %d and some", crashed, newer, items*5)
			}
			o.LostHost = c.lostHost
			var res, dry *Result
			var err, dryErr error
			run := func() {
				// A dry run first says what the run will do, changing nothing.
				before := f.rows(`SELECT id, status, file_id FROM triggers ORDER BY id`)
				do := o
				do.DryRun = true
				dry, dryErr = Run(ctx, f.d, "items", do)
				f.want("the triggers after the dry run", f.rows(`SELECT id, status, file_id FROM triggers ORDER BY id`), before...)
				res, err = Run(ctx, f.d, "items", o)
			}
			if c.hide && c.host != "" {
				hidden(t, tmpPath(path), run)
			} else {
				run()
			}
			if c.stops {
				if err == nil || dryErr == nil || dryErr.Error() != err.Error() {
					t.Errorf("the dry run: %v; want the run's error: %v", dryErr, err)
				}
			} else if dryErr != nil || dry.Unfinished != 1 {
				t.Errorf("the dry run: %+v, %v; want 1 unfinished file", dry, dryErr)
			}
			if c.stops {
				if !errors.Is(err, ErrElsewhere) || len(res.Files) != 0 {
					t.Fatalf("the run after the crash: %d files, %v; want ErrElsewhere and no file", len(res.Files), err)
				}
				for _, s := range []string{filepath.Base(path), "host int1", "--lost-host int1"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("the error does not say %q: %v", s, err)
					}
				}
				// Left as it was: its triggers still claimed by it, its
				// temporary file where its host left it, the newer changes
				// ready.
				f.want("the file left to int1", f.rows(`SELECT sequence, status FROM files WHERE direction = 'out'`), "1|"+fileWritten)
				f.want("the triggers", f.rows(`SELECT shown, count(*) FROM `+shownTriggers+` GROUP BY shown ORDER BY shown`),
					fmt.Sprintf("processing|%d", crashed), fmt.Sprintf("ready|%d", newer))
				if _, err := os.Stat(tmpPath(path)); err != nil {
					t.Errorf("the temporary file of the file left to int1: %v", err)
				}
				// int1 back (or the outbox shared): its file is finished
				// where it is, then the newer changes go out after it.
				o.LostHost = ""
				res, err = Run(ctx, f.d, "items", o)
				if err != nil || res.Completed != 1 || len(res.Files) != 1 || res.Files[0].Records != items/2 {
					t.Fatalf("the run with int1's outbox in sight: %+v, %v; want the file completed and the newer changes in one file", res, err)
				}
			} else {
				if err != nil {
					t.Fatalf("the run after the crash: %v", err)
				}
				if res.Completed != c.completed || res.Abandoned != c.abandoned {
					t.Errorf("recovered %d completed, %d abandoned; want %d, %d", res.Completed, res.Abandoned, c.completed, c.abandoned)
				}
				// The records of an undone file go out once, in this
				// run's file, with the newer changes of half of them.
				want := int64(items / 2)
				if c.resent {
					want = items
				}
				if len(res.Files) != 1 || res.Files[0].Records != want {
					t.Errorf("the run after the crash wrote %+v; want one file of %d records (the crashed file's again: %v)", res.Files, want, c.resent)
				}
			}
			f.want("triggers not processed in exactly one complete file", f.rows(`SELECT count(*) FROM triggers t
LEFT JOIN files f ON f.id = t.file_id AND f.status = 'complete' WHERE t.status <> 'processed' OR f.id IS NULL`), "0")
			f.want("unfinished files afterwards", f.rows(`SELECT count(*) FROM files WHERE status IN ('writing', 'written')`), "0")
			if !c.pushed && (c.host != "" || !c.hide) {
				for _, r := range f.rows(`SELECT path FROM files WHERE direction = 'out' AND status = 'complete'`) {
					for _, p := range []string{r, r + ".done"} {
						if _, err := os.Stat(p); err != nil {
							t.Errorf("complete file: %v", err)
						}
					}
				}
			}
		})
	}
}

// TestRecoverRenamedHost leaves a file written by a run recorded under
// another host name, taken away from the outbox: on SQLite that is this
// host under an earlier name (a container's host name changes on each
// start), and the file is finished as delivered; on PostgreSQL it is
// another host's file out of sight, and the kind stops.
func TestRecoverRenamedHost(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.load("items", catalog.ModeDelta, itemsCSV(10, "10.00"))
	o := f.opts()
	path := crashAt(t, f, o, "old-container-name", fileWritten)
	if err := os.Remove(tmpPath(path)); err != nil {
		t.Fatal(err)
	}
	res, err := Run(ctx, f.d, "items", o)
	if f.d.Dialect == db.Postgres {
		if !errors.Is(err, ErrElsewhere) {
			t.Fatalf("the run after the crash on PostgreSQL: %+v, %v; want ErrElsewhere", res, err)
		}
		return
	}
	if err != nil || res.Completed != 1 || len(res.Files) != 0 {
		t.Fatalf("the run after the crash on SQLite: %+v, %v; want the file finished as delivered and no new file", res, err)
	}
	f.want("triggers not processed", f.rows(`SELECT count(*) FROM `+shownTriggers+` WHERE shown <> 'processed'`), "0")
}

// TestRecoverOtherHostsFeed leaves a file of the engagement feed written
// and not renamed by a run of another host, out of sight of this one: the
// feed stops like every kind (and could not go on anyway: its next file
// would send the same changes again), so the run fails, writing nothing;
// once the file is in sight it is finished, and its changes are not sent
// again.
func TestRecoverOtherHostsFeed(t *testing.T) {
	ctx := context.Background()
	f := feedFixture(t)
	if f.d.Dialect == db.SQLite {
		t.Skip("another host's written file: PostgreSQL only (TestRecoverRenamedHost)")
	}
	o := f.opts()
	res, err := Engagement(ctx, f.d, o)
	if err != nil {
		t.Fatal(err)
	}
	// Back to a run of int1 that died after recording the customers file
	// written: not renamed, the watermark where it was.
	var path string
	for _, file := range res.Files {
		if file.Kind == "engagement_customers" {
			path = file.Path
		}
	}
	run, err := ledger.InsertRun(ctx, f.d, ledger.Run{Command: "export engagement"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []struct {
		q    string
		args []any
	}{
		{`UPDATE runs SET host = 'int1' WHERE id = ?`, []any{run}},
		{`UPDATE files SET status = 'written', run_id = ? WHERE kind = 'engagement_customers'`, []any{run}},
		{`UPDATE feed_watermarks SET change_seq = NULL, file_id = NULL WHERE kind = 'engagement_customers'`, nil},
	} {
		if _, err := f.d.ExecContext(ctx, st.q, st.args...); err != nil {
			t.Fatalf("%s: %v", st.q, err)
		}
	}
	if err := os.Rename(path, tmpPath(path)); err != nil {
		t.Fatal(err)
	}
	hidden(t, tmpPath(path), func() {
		res, err = Engagement(ctx, f.d, o)
	})
	if !errors.Is(err, ErrElsewhere) || len(res.Files) != 0 {
		t.Fatalf("the feed with int1's file out of sight: %+v, %v; want ErrElsewhere and no file", res, err)
	}
	f.want("int1's file", f.rows(`SELECT status FROM files WHERE kind = 'engagement_customers'`), fileWritten)
	res, err = Engagement(ctx, f.d, o)
	if err != nil || res.Completed != 1 {
		t.Fatalf("the feed with int1's file in sight: %+v, %v; want it completed", res, err)
	}
	if sent := f.sent(res); len(sent["engagement_customers"]) != 0 {
		t.Errorf("the customers of int1's file sent again: %v", sent)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error(err)
	}
}
