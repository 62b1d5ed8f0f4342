package catalog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/catalog"
	"github.com/posbridge/posbridge/internal/db"
)

// readAheadUsed is the debug message of a reload that reads its stored
// rows on a second connection.
const readAheadUsed = "read-ahead: the stored rows are read on a second connection"

// loadDebug loads content as items from a file named name and returns
// the load's result, error and debug messages.
func loadDebug(ctx context.Context, f *fixture, name, content string, opts catalog.Options) (*catalog.Result, []string, error) {
	f.t.Helper()
	path := filepath.Join(f.dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		f.t.Fatal(err)
	}
	var msgs []string
	opts.Debug = func(msg string) { msgs = append(msgs, msg) }
	res, err := catalog.Load(ctx, f.d, "items", path, opts)
	return res, msgs, err
}

// manyBatches is a reload's files of 2,500 items, about 6,800 rows (27 of
// the parser's batches), changed all over: prices, a full file without
// items and SKUs and with new items between, forms changed; then files
// that go staged after most of their batches were merged.
func manyBatches(t *testing.T) (base []string, steps []reloadStep) {
	base = reloadBase(2500)
	full := catalog.Options{Mode: catalog.ModeFull}
	var onePct, gone, late []string
	for i, r := range base {
		if i%37 == 5 {
			r = strings.Replace(r, ".50,", ".75,", 1)
		}
		onePct = append(onePct, r)
	}
	for i, r := range base {
		switch {
		case i%50 == 7, strings.HasPrefix(r, "I2500,"):
			continue // an item's row or a SKU gone
		case strings.Split(r, ",")[1] == "" && i%7 == 3:
			// An item added after this one, which has no SKUs.
			r += fmt.Sprintf("\n%s,S1,New,,CLS,V1,A,,,,,,1.00,", strings.SplitN(r, ",", 2)[0]+"N")
		case strings.HasPrefix(r, "I1500,"):
			r = "I1500,S1,Item 1500,Size 1,CLS,V1,A,,,,,,15.25," // no longer without SKUs
		}
		gone = append(gone, r)
	}
	late = setField(t, base, "I2401,S001,", 5, "NOPE")
	unsorted := append(slices.Clone(base[:len(base)-1]), "I0001,S999,Late,,CLS,V1,A,,,,,,1.00,")
	rejected := setField(t, base, "I2499,S001,", 12, "x")
	sent := `UPDATE triggers SET status = 'processed', processed_at = '2026-01-01T00:00:00Z' WHERE status IN ('ready', 'error')`
	return base, []reloadStep{
		{content: file(base)},
		{content: file(onePct), direct: true},
		{content: file(gone), opts: full, before: sent, direct: true},
		{content: file(base), before: sent, direct: true},
		{content: file(gone), opts: full, direct: true},
		{content: file(late)},
		{content: file(unsorted), opts: full},
		{content: file(rejected), opts: full},
		{content: file(onePct), opts: catalog.Options{DryRun: true}, direct: true},
		{content: file(base), opts: full, direct: true},
	}
}

// TestReloadReadAheadAsSerialAndStaged runs the loads of manyBatches
// three ways: as they go (on SQLite with the read-ahead), with the stored
// rows read on the load's connection, and all staged: results, warnings,
// rejects and tables must be the same after every load.
func TestReloadReadAheadAsSerialAndStaged(t *testing.T) {
	_, steps := manyBatches(t)
	run := func(f *fixture) []loadSeen {
		var seen []loadSeen
		for j, s := range steps {
			if s.before != "" {
				if _, err := f.d.ExecContext(context.Background(), s.before); err != nil {
					t.Fatal(err)
				}
			}
			seen = append(seen, loadAndLook(f, fmt.Sprintf("load%d.csv", j), s.content, s.opts))
		}
		return seen
	}
	ahead, staged := bothWays(t, run)
	for j, s := range steps {
		if j > 0 && ahead[j].direct != s.direct {
			t.Errorf("load %d without the staging table: %v, want %v", j+1, ahead[j].direct, s.direct)
		}
	}
	sameLoads(t, ahead, staged)
	defer catalog.ReadAheadOff()()
	f := newFixture(t)
	f.delta("vendors", "vendor,name\nV1,One\nV2,Two\n")
	sameLoads(t, ahead, run(f))
}

// TestReloadReadAhead: a reload reads its stored rows on a second
// connection, which it gives back (on SQLite out of its read
// transaction), also when it goes staged after most of its batches or is
// interrupted; on SQLite with no second connection to have, or a journal
// mode other than WAL, it reads them on its own connection.
func TestReloadReadAhead(t *testing.T) {
	base, _ := manyBatches(t)
	onePct := slices.Clone(base)
	var changed int64
	for i, r := range onePct {
		if i%100 == 1 && strings.Contains(r, ".50,") {
			onePct[i] = strings.Replace(r, ".50,", ".75,", 1)
			changed++
		}
	}
	late := file(append(slices.Clone(base), "I0001,S999,Late,,CLS,V1,A,,,,,,1.00,"))
	newBase := func(t *testing.T) *fixture {
		f := newFixture(t)
		f.delta("vendors", "vendor,name\nV1,One\nV2,Two\n")
		f.delta("items", file(base))
		return f
	}
	sqlite := func(f *fixture) bool { return f.d.Dialect == db.SQLite }
	// released checks that the loads left no goroutine and no connection
	// in use or in a read transaction (which would keep a checkpoint from
	// truncating the WAL).
	released := func(t *testing.T, f *fixture, goroutines int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > goroutines {
			t.Errorf("goroutines after the loads: %d, before %d", n, goroutines)
		}
		if n := f.d.Stats().InUse; n != 0 {
			t.Errorf("connections in use after the loads: %d", n)
		}
		if sqlite(f) {
			// Every connection of the pool has the cache size Open gave it.
			ctx := context.Background()
			for range 2 {
				c, err := f.d.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				var size int
				if err := c.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&size); err != nil {
					t.Fatal(err)
				}
				if size != -8*1024 {
					t.Errorf("cache size of a connection after the loads: %d, want -8192", size)
				}
			}
			var busy, frames, done int
			if err := f.d.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
				t.Fatal(err)
			}
			if busy != 0 || frames != 0 {
				t.Errorf("checkpoint after the loads: busy %d, %d frames left, want 0, 0", busy, frames)
			}
		}
	}
	t.Run("used", func(t *testing.T) {
		f := newBase(t)
		goroutines := runtime.NumGoroutine()
		for j, c := range []string{file(onePct), late, file(base)} {
			_, msgs, err := loadDebug(context.Background(), f, fmt.Sprintf("l%d.csv", j), c, catalog.Options{Mode: catalog.ModeFull})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(msgs, readAheadUsed) {
				t.Errorf("load %d: not read ahead; debug: %q", j+1, msgs)
			}
		}
		released(t, f, goroutines)
	})
	t.Run("interrupted", func(t *testing.T) {
		f := newBase(t)
		before := f.strings(itemTables[1])
		goroutines := runtime.NumGoroutine()
		content := file(onePct)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, msgs, err := loadDebug(ctx, f, "cut.csv", content, catalog.Options{Mode: catalog.ModeFull,
			Progress: func(read int64) {
				if read > int64(len(content)/2) {
					cancel()
				}
			}})
		if err == nil {
			t.Fatal("interrupted load: no error")
		}
		if !slices.Contains(msgs, readAheadUsed) {
			t.Errorf("not read ahead; debug: %q", msgs)
		}
		if after := f.strings(itemTables[1]); !slices.Equal(after, before) {
			t.Errorf("after the interrupted load: %q", firstDifference(after, before))
		}
		released(t, f, goroutines)
	})
	t.Run("one connection", func(t *testing.T) {
		f := newBase(t)
		if !sqlite(f) {
			t.Skip("a load on PostgreSQL takes a second connection of its own")
		}
		f.d.SetMaxOpenConns(1)
		done := make(chan []string)
		go func() {
			res, msgs, err := loadDebug(context.Background(), f, "one.csv", file(onePct), catalog.Options{})
			if err != nil {
				t.Error(err)
			} else if res.Changed != changed {
				t.Errorf("changed %d, want %d", res.Changed, changed)
			}
			done <- msgs
		}()
		select {
		case msgs := <-done:
			if slices.Contains(msgs, readAheadUsed) {
				t.Errorf("read ahead with one connection; debug: %q", msgs)
			}
		case <-time.After(time.Minute):
			t.Fatal("the reload on a pool of one connection did not end in a minute")
		}
	})
	t.Run("not WAL", func(t *testing.T) {
		f := newBase(t)
		if !sqlite(f) {
			t.Skip("SQLite's journal modes")
		}
		if got := f.strings(`PRAGMA journal_mode = DELETE`); !slices.Equal(got, []string{"delete"}) {
			t.Fatalf("journal mode: %q", got)
		}
		res, msgs, err := loadDebug(context.Background(), f, "delete.csv", file(onePct), catalog.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed != changed {
			t.Errorf("changed %d, want %d", res.Changed, changed)
		}
		if slices.Contains(msgs, readAheadUsed) || !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasSuffix(m, "not in WAL mode") }) {
			t.Errorf("debug: %q, want no read-ahead, the database not in WAL mode", msgs)
		}
	})
}
