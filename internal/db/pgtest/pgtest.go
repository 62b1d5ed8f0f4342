package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// shared is the one server of this test binary, started by the first
// Start and stopped by Main.
var shared struct {
	sync.Mutex
	tried bool
	srv   *server
	err   error
	dbs   int // databases made, to name the next one
}

// Start starts (once per test binary, shared by the tests of the package) a
// throwaway PostgreSQL server on a free loopback port and returns the URL
// of a new empty database made for this test (dropped at t.Cleanup), like
// "postgres://posbridge@127.0.0.1:PORT/t_NAME_N?sslmode=disable", for the
// "pgx" database/sql driver this package registers. The connecting role is
// a superuser; the database has UTF8 encoding and the C collation.
//
// It skips the test when PostgreSQL is not installed, except under CI=true,
// where it fails: CI installs PostgreSQL, and a skip there would hide a
// whole suite.
func Start(t testing.TB) string {
	t.Helper()
	return StartFrom(t, "")
}

// StartFrom is Start with the new database a copy of the database named
// template on the same server (made with NewDatabase, and with no open
// connection), "" for an empty one: copying a migrated schema is faster
// than migrating each test's database.
func StartFrom(t testing.TB, template string) string {
	t.Helper()
	url, drop, err := newDatabase(t.Name(), template)
	if err != nil {
		if skip, msg := Unavailable(err); skip {
			t.Skip(msg)
		} else {
			t.Fatal(msg)
		}
	}
	t.Cleanup(func() {
		if err := drop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return url
}

// Backend is the name of the variable that runs the suites against
// PostgreSQL: with POSBRIDGE_TEST_BACKEND=postgres (make test-postgres),
// a test that opens a posbridge database (package dbtest) gets a new
// PostgreSQL database instead of a SQLite file.
const Backend = "POSBRIDGE_TEST_BACKEND"

// Wanted reports whether the tests run against PostgreSQL ($Backend).
func Wanted() bool { return os.Getenv(Backend) == "postgres" }

// NewDatabase makes a new empty database on the shared server, as Start
// does, for a runner with no *testing.T (a testscript Setup): it returns
// the database's URL and the function that drops it. Unlike Start it never
// skips: it is called when PostgreSQL was asked for.
func NewDatabase(name string) (url string, drop func() error, err error) {
	url, drop, err = newDatabase(name, "")
	if err != nil {
		return "", nil, fmt.Errorf("pgtest: %w", err)
	}
	return url, drop, nil
}

// Unavailable is what a runner without a *testing.T does with an error of
// NewDatabase, as Start does: skip (true) when PostgreSQL is not installed,
// except under CI=true; fail otherwise. msg says why.
func Unavailable(err error) (skip bool, msg string) { return unavailable(os.Getenv("CI"), err) }

// newDatabase makes a database for the test named testName on the shared
// server, which it starts first if no test has: empty, or a copy of
// template. It returns its URL and the function that drops it; FORCE ends
// the sessions a test left open, so that one test's leak does not fail
// the next.
func newDatabase(testName, template string) (url string, drop func() error, err error) {
	shared.Lock()
	if !shared.tried {
		shared.tried = true
		shared.srv, shared.err = startServer()
	}
	srv, err := shared.srv, shared.err
	shared.dbs++
	name := databaseName(testName, shared.dbs)
	shared.Unlock()
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	create := `CREATE DATABASE ` + name
	if template != "" {
		create += ` TEMPLATE ` + template
	}
	if _, err := srv.admin.ExecContext(ctx, create); err != nil {
		return "", nil, fmt.Errorf("create database %s: %w", name, err)
	}
	drop = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := srv.admin.ExecContext(ctx, `DROP DATABASE `+name+` WITH (FORCE)`); err != nil {
			return fmt.Errorf("drop database %s: %w", name, err)
		}
		return nil
	}
	return srv.url(name), drop, nil
}

// unavailable is how Start reacts to err, from the value of $CI: it skips
// when PostgreSQL is not installed, unless in CI; anything else (a broken
// installation, a server that does not start) fails.
func unavailable(ci string, err error) (skip bool, msg string) {
	if !errors.Is(err, errNotInstalled) {
		return false, "pgtest: " + err.Error()
	}
	if inCI, _ := strconv.ParseBool(ci); inCI {
		return false, "pgtest: CI=true and " + err.Error() + "; .ci/run installs it"
	}
	return true, "pgtest: " + err.Error() + "; the test needs PostgreSQL"
}

// databaseName is the name of the n-th database of a test binary, made for
// the test testName: "t_" and the test's name in lower case with anything
// but letters and digits as "_", cut to PostgreSQL's 63 bytes, and n to
// keep it unique.
func databaseName(testName string, n int) string {
	suffix := "_" + strconv.Itoa(n)
	name := []byte("t_")
	for _, c := range []byte(strings.ToLower(testName)) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			name = append(name, c)
		} else {
			name = append(name, '_')
		}
	}
	name = name[:min(len(name), 63-len(suffix))]
	return string(name) + suffix
}

// Main runs the tests of m and then stops the server if a test started
// one, removing its files. Call it from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The test binary exits with m's result when TestMain returns.
func Main(m *testing.M) {
	WithServer(m).Run()
}

// Runner runs the tests: a *testing.M, or what wraps one.
type Runner interface {
	Run() int
}

// WithServer is m, whose Run also stops the server when the tests end, for
// a TestMain that hands m to another runner:
//
//	testscript.Main(pgtest.WithServer(m), commands)
func WithServer(m Runner) Runner {
	return stopAfter{m}
}

type stopAfter struct{ m Runner }

func (s stopAfter) Run() int {
	code := s.m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		shared.srv.stop()
		shared.srv = nil
		shared.err = errors.New("pgtest.Start called after the tests' runner stopped the server")
	}
	return code
}
