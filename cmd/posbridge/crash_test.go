package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
)

// stateEnv is the environment of the posbridge processes of a test whose
// data folder is dir/data, with extra added, and where they keep their
// state: the database extra names in POSBRIDGE_DATABASE, else the folder's
// SQLite file, or, under make test-postgres, a new PostgreSQL database
// (POSBRIDGE_DATABASE), dropped at the test's end.
func stateEnv(t testing.TB, dir string, extra ...string) (env []string, target string) {
	env = append(os.Environ(), "POSBRIDGE_DATA_DIR="+filepath.Join(dir, "data"), "HOME="+dir, "XDG_CONFIG_HOME=")
	for _, kv := range extra {
		if v, ok := strings.CutPrefix(kv, "POSBRIDGE_DATABASE="); ok {
			target = v
		}
	}
	switch {
	case target != "":
	case dbtest.Postgres():
		target = dbtest.Target(t)
		env = append(env, "POSBRIDGE_DATABASE="+target)
	default:
		target = filepath.Join(dir, "data", "posbridge.db")
	}
	return append(env, extra...), target
}

// startCmd starts cmd with its output in out; done gives its end.
func startCmd(t testing.TB, cmd *exec.Cmd) (out *bytes.Buffer, done chan error) {
	t.Helper()
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return out, done
}

// openState opens the state of posbridge processes (target, from stateEnv)
// for a test to read or change behind their back. The caller closes it.
func openState(t testing.TB, target string) *db.DB {
	t.Helper()
	d, err := db.Open(context.Background(), target, db.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// crashFile writes an items file of rows SKU rows; with changed set, every
// 20th row has a price one higher and every 100th row is left out, so a
// full load of it changes and deletes records. It returns the live SKU
// count and the sum of prices (in ten-thousandths) the file leaves behind.
func crashFile(t *testing.T, path string, rows int, changed bool) (count, priceSum int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "item,sku,description,price")
	for i := 0; i < rows; i++ {
		price := int64(i%1000)*10000 + 9900
		if changed {
			if i%100 == 99 {
				continue
			}
			if i%20 == 0 {
				price += 10000
			}
		}
		fmt.Fprintf(w, "IT%06d,S%d,Item %d,%d.%02d\n", i/5, i%5, i/5, price/10000, price%10000/100)
		count++
		priceSum += price
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return count, priceSum
}

type crashState struct{ count, priceSum int64 }

func readState(t *testing.T, target string) crashState {
	t.Helper()
	d := openState(t, target)
	defer d.Close()
	var s crashState
	if err := d.QueryRow(`SELECT count(*), coalesce(sum(price), 0) FROM skus WHERE deleted_at IS NULL`).Scan(&s.count, &s.priceSum); err != nil {
		t.Fatal(err)
	}
	// The fold keeps at most one pending trigger per SKU, and every live
	// SKU the loads touched has one, since nothing exports them here.
	var pending, dup int64
	d.QueryRow(`SELECT count(*) FROM triggers WHERE status = 'ready'`).Scan(&pending)
	d.QueryRow(`SELECT count(*) FROM (SELECT 1 FROM triggers WHERE status = 'ready' GROUP BY record_key, sub_key HAVING count(*) > 1) AS d`).Scan(&dup)
	if dup > 0 {
		t.Fatalf("%d SKUs have more than one pending trigger", dup)
	}
	checkIntegrity(t, d.DB)
	return s
}

// checkIntegrity runs SQLite's integrity check on d. PostgreSQL has none
// to run: a killed client cannot leave its files half-written.
func checkIntegrity(t testing.TB, d *sql.DB) {
	t.Helper()
	if dbtest.Postgres() {
		return
	}
	var check string
	d.QueryRow(`PRAGMA integrity_check`).Scan(&check)
	if check != "ok" {
		t.Errorf("integrity_check: %s", check)
	}
}

// TestLoadKilled kills full loads of two alternating files at random
// moments and checks after each kill that the database holds exactly the
// state before the load or exactly the state after it, never a mix, and
// that a last load completes.
func TestLoadKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	dir := t.TempDir()
	env, dbPath := stateEnv(t, dir)
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command("posbridge", args...)
		cmd.Env = env
		cmd.Dir = dir
		return cmd
	}
	if out, err := run("init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	const rows = 40000
	files := []string{filepath.Join(dir, "base.csv"), filepath.Join(dir, "changed.csv")}
	var want [2]crashState
	want[0].count, want[0].priceSum = crashFile(t, files[0], rows, false)
	want[1].count, want[1].priceSum = crashFile(t, files[1], rows, true)

	// How long a whole load takes here, to spread the kills over it.
	start := time.Now()
	if out, err := run("load", "items", files[0], "--mode", "full", "-q").CombinedOutput(); err != nil {
		t.Fatalf("first load: %v\n%s", err, out)
	}
	whole := time.Since(start)
	prev := readState(t, dbPath)
	if prev != want[0] {
		t.Fatalf("after the first load: %+v, want %+v", prev, want[0])
	}

	rng := rand.New(rand.NewPCG(1, 2))
	killed, finished := 0, 0
	for i := 0; i < 12; i++ {
		next := want[(i+1)%2]
		cmd := run("load", "items", files[(i+1)%2], "--mode", "full", "--force", "-q")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(whole) * 11 / 10)))
		cmd.Process.Kill()
		if err := cmd.Wait(); err != nil {
			killed++
		} else {
			finished++
		}
		got := readState(t, dbPath)
		switch got {
		case next:
			prev = next
		case prev:
		default:
			t.Fatalf("kill %d: database holds %+v, neither the state before (%+v) nor after (%+v) the load", i, got, prev, next)
		}
	}
	t.Logf("%d loads killed, %d finished before the kill", killed, finished)

	last := want[0]
	if prev == want[0] {
		last = want[1]
	}
	lastFile := files[0]
	if last == want[1] {
		lastFile = files[1]
	}
	if out, err := run("load", "items", lastFile, "--mode", "full", "--force", "-q").CombinedOutput(); err != nil {
		t.Fatalf("last load: %v\n%s", err, out)
	}
	if got := readState(t, dbPath); got != last {
		t.Fatalf("after the last load: %+v, want %+v", got, last)
	}
}

// TestConcurrentLoads starts two loads at the same moment: both finish
// (the second waits for the first's write lock), neither reports a locked
// database, and the state is the one of the load that committed last.
func TestConcurrentLoads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes; skipped with -short")
	}
	dir := t.TempDir()
	env, target := stateEnv(t, dir)
	run := func(args ...string) *exec.Cmd {
		cmd := exec.Command("posbridge", args...)
		cmd.Env = env
		return cmd
	}
	if out, err := run("init").CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	files := []string{filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")}
	var want [2]crashState
	want[0].count, want[0].priceSum = crashFile(t, files[0], 20000, false)
	want[1].count, want[1].priceSum = crashFile(t, files[1], 20000, true)
	errs := make(chan error, 2)
	for _, f := range files {
		cmd := run("load", "items", f, "--mode", "full", "-q")
		go func() {
			out, err := cmd.CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
			errs <- err
		}()
	}
	for range files {
		if err := <-errs; err != nil {
			t.Fatalf("a concurrent load failed: %v", err)
		}
	}
	got := readState(t, target)
	if got != want[0] && got != want[1] {
		t.Fatalf("after two concurrent loads: %+v, want one file's state: %+v or %+v", got, want[0], want[1])
	}
}

// TestLoadKilledFirst kills first loads of items (into an empty catalog:
// the direct load, which writes items, skus and triggers as it reads, with
// SQLite's foreign key checks off), each into a database of its own, early,
// midway and late: at moments spread over a whole load's time and, on
// SQLite, once the load's transaction has written a share of its pages to
// the write-ahead log, so that the kill surely lands inside it. After each
// kill the database is the empty one, whole (no foreign key violation,
// integrity check ok, foreign keys on for the next connection), the ledger
// does not hold the file as loaded, and a rerun loads the file once, to the
// tables of a load never killed. The second file has an item's rows apart
// at its end: its direct load writes every row before it gives up, rolls
// back and loads the file through the staging table.
func TestLoadKilledFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; skipped with -short")
	}
	const rows = 40000
	dir := t.TempDir()
	direct, fallback := filepath.Join(dir, "direct.csv"), filepath.Join(dir, "fallback.csv")
	crashFile(t, direct, rows, false)
	crashFile(t, fallback, rows, false)
	f, err := os.OpenFile(fallback, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(f, "IT000000,S9,Item 0,1.00")
	f.Close()
	t.Run("direct", func(t *testing.T) { killFirstLoads(t, direct, "first load: written without the staging table") })
	t.Run("fallback", func(t *testing.T) { killFirstLoads(t, fallback, "first load: the file needs the staging table") })
}

// killFirstLoads is TestLoadKilledFirst with one file, whose unkilled
// first load logs path (with -v).
func killFirstLoads(t *testing.T, file, path string) {
	load := func(env []string, dir string, args ...string) *exec.Cmd {
		cmd := exec.Command("posbridge", append([]string{"load", "items", file, "--mode", "full"}, args...)...)
		cmd.Env, cmd.Dir = env, dir
		return cmd
	}
	fresh := func(t *testing.T) (env []string, dir, target string) {
		dir = t.TempDir()
		env, target = stateEnv(t, dir)
		init := exec.Command("posbridge", "init")
		init.Env, init.Dir = env, dir
		if out, err := init.CombinedOutput(); err != nil {
			t.Fatalf("init: %v\n%s", err, out)
		}
		return env, dir, target
	}
	loaded := func(t *testing.T, target string) int64 {
		d := openState(t, target)
		defer d.Close()
		var n int64
		if err := d.QueryRow(`SELECT count(*) FROM files WHERE kind = 'load-items' AND status IN ('loaded', 'rejects')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// The load never killed: its tables, how long it takes and how much
	// the SQLite file grows, to place the kills.
	env, dir, target := fresh(t)
	empty := catalogTables(t, target)
	before := fileSize(target)
	start := time.Now()
	out, err := load(env, dir, "-v").CombinedOutput()
	whole := time.Since(start)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out)
	}
	// Else the kills would not test the path they are meant for.
	if !strings.Contains(string(out), path) {
		t.Fatalf("the first load did not log %q:\n%s", path, out)
	}
	growth := fileSize(target) - before
	want := catalogTables(t, target)

	// The moments in the transaction: on SQLite once the write-ahead log
	// holds a share of the pages the load writes (it has them before the
	// commit), on PostgreSQL a share of the load's time after its
	// transaction took its lock on skus.
	type moment struct {
		name       string
		time, inTx float64
	}
	moments := []moment{{"early", 0.15, 0}, {"middle", 0.5, 0}, {"late", 0.9, 0},
		{"tx-early", 0, 0.05}, {"tx-middle", 0, 0.4}, {"tx-late", 0, 0.8}}
	killed := 0
	for _, m := range moments {
		t.Run(m.name, func(t *testing.T) {
			env, dir, target := fresh(t)
			cmd := load(env, dir, "-q")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			switch {
			case m.inTx == 0:
				time.Sleep(time.Duration(m.time * float64(whole)))
			case dbtest.Postgres():
				if !waitInTx(t, target, 2*whole) {
					t.Logf("no transaction of the load seen")
				}
				time.Sleep(time.Duration(m.inTx * 0.7 * float64(whole)))
			default:
				for deadline := time.Now().Add(2 * whole); fileSize(target+"-wal") < int64(m.inTx*float64(growth)) && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			cmd.Process.Kill()
			if cmd.Wait() == nil {
				t.Logf("the load ended before its kill")
			}
			d := openState(t, target)
			checkKeys(t, d.DB)
			d.Close()
			// A kill between the commit and the exit leaves the file
			// loaded: then whole, else not at all.
			committed := loaded(t, target) == 1
			if committed {
				if got := catalogTables(t, target); got != want {
					t.Fatalf("the ledger holds the file as loaded, but the tables differ from an unkilled load's:\n%s", tablesDiff(got, want))
				}
			} else {
				killed++
				if got := catalogTables(t, target); got != empty {
					t.Fatalf("after the kill the ledger does not hold the file as loaded, but the tables are not empty:\n%s", tablesDiff(got, empty))
				}
			}

			out, err := load(env, dir).CombinedOutput()
			if err != nil {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			if again := strings.Contains(string(out), "nothing to do"); again != committed {
				t.Fatalf("rerun after a kill (file loaded before it: %v):\n%s", committed, out)
			}
			if got := catalogTables(t, target); got != want {
				t.Fatalf("after the rerun the tables differ from an unkilled load's:\n%s", tablesDiff(got, want))
			}
			// Loaded once: the same file again is nothing to do.
			out, err = load(env, dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "nothing to do") {
				t.Fatalf("the file loaded again after the rerun: %v\n%s", err, out)
			}
			if n := loaded(t, target); n != 1 {
				t.Fatalf("the ledger holds the file as loaded %d times, want once", n)
			}
			d = openState(t, target)
			defer d.Close()
			checkKeys(t, d.DB)
		})
	}
	t.Logf("%d of %d first loads killed before their commit (a whole load: %v)", killed, len(moments), whole)
	if killed == 0 {
		t.Fatalf("no first load was killed before its commit: the test tested nothing")
	}
}

// waitInTx waits up to limit for a write transaction on the PostgreSQL
// database target to lock skus, and says whether one did.
func waitInTx(t *testing.T, target string, limit time.Duration) bool {
	d := openState(t, target)
	defer d.Close()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var n int64
		if err := d.QueryRow(`SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE c.relname = 'skus' AND l.mode = 'RowExclusiveLock' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// fileSize is the size of the file at path, 0 if there is none (a
// PostgreSQL target).
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// checkKeys checks, on SQLite, that d (a new connection) has its foreign
// keys on and that no row breaks one, and that the file is whole.
func checkKeys(t testing.TB, d *sql.DB) {
	t.Helper()
	checkIntegrity(t, d)
	if dbtest.Postgres() {
		return
	}
	var on int64
	if err := d.QueryRow(`PRAGMA foreign_keys`).Scan(&on); err != nil || on != 1 {
		t.Errorf("foreign keys of a new connection: %d (%v), want 1", on, err)
	}
	rows, err := d.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int64
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			t.Fatal(err)
		}
		t.Errorf("foreign_key_check: a row of %s (rowid %v) without its %s", table, rowid, parent)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// catalogTables is the content of items, skus and triggers, without what
// differs between two loads of the same file (times, ids and sequence
// numbers, which PostgreSQL does not roll back), one line a row.
func catalogTables(t testing.TB, target string) string {
	t.Helper()
	d := openState(t, target)
	defer d.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT item, description, item_class, vendor, status, coalesce(deleted_at, '') FROM items ORDER BY item`,
		`SELECT item, sku, sku_description, color, size, width, upc, retail_ref, coalesce(price, -1), coalesce(cost, -1), coalesce(deleted_at, '') FROM skus ORDER BY item, sku`,
		`SELECT file_code, record_key, sub_key, capture, status, attempts, coalesce(file_id, 0) > 0 FROM triggers ORDER BY file_code, record_key, sub_key, status`,
	} {
		rows, err := d.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		b.WriteString("--\n")
	}
	return b.String()
}

// tablesDiff is the first line where got and want differ.
func tablesDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, g[i], w[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(g), len(w))
}
