package pgtest

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// open connects to url for the rest of the test.
func open(t *testing.T, url string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// testOwnDatabase is what each of two parallel tests does: its database
// starts empty, and a table it makes is not seen by the other.
func testOwnDatabase(t *testing.T, marker string) {
	t.Parallel()
	db := open(t, Start(t))
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("new database has %d tables, want none", tables)
	}
	if _, err := db.Exec(`CREATE TABLE shared_name (v text)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO shared_name VALUES ($1)`, marker); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the other test write its row meanwhile
	var got []string
	rows, err := db.Query(`SELECT v FROM shared_name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{marker}) {
		t.Errorf("rows = %q, want only this test's %q", got, marker)
	}
}

func TestOwnDatabaseA(t *testing.T) { testOwnDatabase(t, "A") }
func TestOwnDatabaseB(t *testing.T) { testOwnDatabase(t, "B") }

func TestBytewiseText(t *testing.T) {
	db := open(t, Start(t))
	var collate, encoding string
	if err := db.QueryRow(`SELECT datcollate, pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()`).Scan(&collate, &encoding); err != nil {
		t.Fatal(err)
	}
	if collate != "C" || encoding != "UTF8" {
		t.Errorf("collation %q, encoding %q; want C, UTF8", collate, encoding)
	}
	// In C, upper case sorts before lower case; in en_US, 'a' < 'B'.
	var less bool
	if err := db.QueryRow(`SELECT 'a' < 'B'`).Scan(&less); err != nil {
		t.Fatal(err)
	}
	if less {
		t.Error("'a' < 'B' is true: text is not compared bytewise")
	}
}

func TestDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("uses", func(t *testing.T) {
		url := Start(t)
		db := open(t, url)
		// A session the test leaves open must not stop the drop.
		if err := db.QueryRow(`SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(url, "/"+name+"?") {
			t.Errorf("URL %s does not name database %s", url, name)
		}
		if !strings.HasPrefix(name, "t_testdroppedatcleanup_uses_") {
			t.Errorf("database name %q does not say which test made it", name)
		}
	})
	db := open(t, Start(t))
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

// serveForParent is TestServerGoneAfterTests in the subprocess it starts:
// it starts the server, prints the server's folder and the pids of the
// postmaster and its children, then ends through Main, or waits to be
// killed.
func serveForParent(t *testing.T, mode string) {
	db := open(t, Start(t))
	if err := db.Ping(); err != nil { // a backend among the children
		t.Fatal(err)
	}
	srv := shared.srv
	pids := append([]int{srv.cmd.Process.Pid}, children(srv.cmd.Process.Pid)...)
	fmt.Printf("server %s %s\n", srv.root, strings.Trim(fmt.Sprint(pids), "[]"))
	if mode == "killed" {
		select {}
	}
	// The parent looks at the processes before the test ends and Main
	// stops them: it says so by closing stdin.
	io.Copy(io.Discard, os.Stdin)
}

func TestServerGoneAfterTests(t *testing.T) {
	if mode := os.Getenv("PGTEST_HELPER"); mode != "" {
		serveForParent(t, mode)
		return
	}
	Start(t) // skips or fails as the other tests do without PostgreSQL
	for _, mode := range []string{"main", "killed"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestServerGoneAfterTests$")
			cmd.Env = append(os.Environ(), "PGTEST_HELPER="+mode)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			looked, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var root string
			var pids []int
			lines := bufio.NewScanner(out)
			for lines.Scan() {
				if f := strings.Fields(lines.Text()); len(f) > 2 && f[0] == "server" {
					root = f[1]
					for _, p := range f[2:] {
						pid, _ := strconv.Atoi(p)
						pids = append(pids, pid)
					}
					break
				}
			}
			if root == "" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatal("the helper printed no server")
			}
			if len(pids) < 2 {
				t.Errorf("pids %v: want the postmaster and its children", pids)
			}
			// The postmaster runs while the test does; its children may come
			// and go (an autovacuum worker), so only their end is checked.
			if !alive(pids[0]) {
				t.Fatalf("server process %d not running while its test runs", pids[0])
			}
			looked.Close()
			if mode == "killed" {
				cmd.Process.Kill()
			}
			go func() { // drain, so that the helper does not block on a full pipe
				for lines.Scan() {
				}
			}()
			err = cmd.Wait()
			if mode == "main" && err != nil {
				t.Fatalf("helper: %v", err)
			}
			if mode == "main" {
				// Main has stopped the server before the helper exits.
				for _, pid := range pids {
					if alive(pid) {
						t.Errorf("server process %d outlived the tests", pid)
					}
				}
			} else {
				// The parent-death signal stops it soon after.
				deadline := time.Now().Add(30 * time.Second)
				for _, pid := range pids {
					for alive(pid) && time.Now().Before(deadline) {
						time.Sleep(50 * time.Millisecond)
					}
					if alive(pid) {
						t.Errorf("server process %d outlived its killed test binary by 30s", pid)
					}
				}
				if _, err := os.Stat(root); err != nil {
					t.Fatalf("the killed helper's folder: %v", err)
				}
				sweep(filepath.Dir(root)) // what the next Start does
			}
			if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("server folder %s remains (%v)", root, err)
			}
		})
	}
}

// alive reports whether process pid exists and is not a zombie (a
// container's init may not reap the postmaster's orphans).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces, so read after the last ')'.
	state := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))[0]
	return state != "Z" && state != "X"
}

// children are the pids of the processes whose parent is pid.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, path := range stats {
		stat, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
			kid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			kids = append(kids, kid)
		}
	}
	return kids
}

// A postmaster whose port was taken after freePort chose it says so, so
// that startServer tries another port.
func TestPortTaken(t *testing.T) {
	Start(t) // skips or fails as the other tests do without PostgreSQL
	s, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	s.stopPostmaster()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := s.run(port); !errors.Is(err, errPortTaken) {
		t.Fatalf("postgres on a taken port: %v, want errPortTaken", err)
	}
	ln.Close()
	if err := s.run(port); err != nil {
		t.Fatalf("postgres on the port once free: %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	broken := errors.New("initdb in /tmp/x/data: exit status 1")
	for _, tc := range []struct {
		ci       string
		err      error
		skip     bool
		contains string
	}{
		{"", errNotInstalled, true, "apt-get install postgresql"},
		{"false", errNotInstalled, true, "the test needs PostgreSQL"},
		{"true", errNotInstalled, false, "CI=true and no PostgreSQL server found"},
		{"1", errNotInstalled, false, ".ci/run installs it"},
		{"true", fmt.Errorf("wrapped: %w", errNotInstalled), false, "apt-get install postgresql"},
		{"", broken, false, "initdb in /tmp/x/data"}, // installed but broken: never a skip
		{"true", broken, false, "initdb in /tmp/x/data"},
	} {
		skip, msg := unavailable(tc.ci, tc.err)
		if skip != tc.skip || !strings.Contains(msg, tc.contains) {
			t.Errorf("unavailable(CI=%q, %v) = %v, %q; want %v and a message with %q", tc.ci, tc.err, skip, msg, tc.skip, tc.contains)
		}
	}
}

func TestDatabaseName(t *testing.T) {
	long := "TestX/" + strings.Repeat("é", 40)
	for _, tc := range []struct {
		test string
		n    int
		want string
	}{
		{"TestOwn", 1, "t_testown_1"},
		{"TestOwn/sub test#2", 12, "t_testown_sub_test_2_12"},
		{long, 7, "t_testx_" + strings.Repeat("_", 53) + "_7"},
		{long, 1234, "t_testx_" + strings.Repeat("_", 50) + "_1234"},
	} {
		got := databaseName(tc.test, tc.n)
		if got != tc.want || len(got) > 63 {
			t.Errorf("databaseName(%q, %d) = %q (%d bytes), want %q", tc.test, tc.n, got, len(got), tc.want)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	dirs := []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin"}
	slices.SortFunc(dirs, compareVersions)
	if want := []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"}; !slices.Equal(dirs, want) {
		t.Errorf("sorted %v, want %v", dirs, want)
	}
}
