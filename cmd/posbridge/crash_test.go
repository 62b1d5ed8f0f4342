package main

import (
	"bufio"
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
