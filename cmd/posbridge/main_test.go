package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver of openStateDB
	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/pgtest"
	_ "modernc.org/sqlite"
)

// TestMain lets the test binary stand in for the posbridge binary: scripts
// run "exec posbridge ...", which re-executes this binary's main.
func TestMain(m *testing.M) {
	testscript.Main(pgtest.WithServer(m), map[string]func(){"posbridge": main})
}

// TestScript runs the end-to-end stories in testdata/script, one per
// command group.
func TestScript(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		// Report every failed assertion of a script, not only the first.
		ContinueOnError: true,
		Setup:           func(env *testscript.Env) error { return setup(env, root) },
		Condition: func(cond string) (bool, error) {
			if cond == "root" {
				return os.Geteuid() == 0, nil
			}
			if cond == "sshd" {
				return sshdCondition() // sshd_test.go
			}
			// [sqlite] and [postgres]: the backend the suite runs against,
			// for the few lines whose behaviour legitimately differs (a
			// database file on disk, db backup, each engine's own SQL).
			if cond == "sqlite" || cond == "postgres" {
				return pgtest.Wanted() == (cond == "postgres"), nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"exitcode": cmdExitcode,
			"sqlq":     cmdSQLQ,
			"inflate":  cmdInflate,
			"dblock":   cmdDBLock,
			"dbunlock": cmdDBUnlock,
			"timeago":  cmdTimeAgo,
			"filelock": cmdFileLock,

			// The export stories' commands, in export_cmds_test.go.
			"requirexmllint": cmdRequireXmllint,
			"xsdvalid":       cmdXSDValid,
			"xsdvalidall":    cmdXSDValidAll,
			"xpath":          cmdXPath,
			"sha256":         cmdSHA256,
			"lsdir":          cmdLsdir,
			"pick":           cmdPick,
			"csvread":        cmdCSVRead,
			"unescape":       cmdUnescape,
			"seqs":           cmdSeqs,
			"editfile":       cmdEditFile,
			"droplines":      cmdDropLines,

			// The inventory transaction import stories' commands, in
			// import_cmds_test.go.
			"mtime":      cmdMtime,
			"sizeatmost": cmdSizeAtMost,
			"memrun":     cmdMemrun,
			"jsonlines":  cmdJSONLines, // jobs_cmds_test.go
			"jsondoc":    cmdJSONDoc,   // jsondoc_test.go: --output json against docs/json.md

			// The partner stories' commands, in partner_cmds_test.go.
			"normtime": cmdNormTime,
			"batches":  cmdBatches,
			"httpsrv":  cmdHTTPSrv, // HTTPS partner servers, httpsrv_test.go
			"sshd":     cmdSSHD,    // the OpenSSH sshd, sshd_test.go

			"pgdatabase": cmdPGDatabase, // a PostgreSQL database, pgdb_test.go
		},
	})
}

// openStateDB opens the database file for sqlq and dblock: under make
// test-postgres the script's posbridge.db is its PostgreSQL database (the
// one POSBRIDGE_DATABASE names at the time), opened as it is, whatever its
// schema version (db.Open would refuse a newer one), so its SQL must go
// through db.Rebind.
func openStateDB(ts *testscript.TestScript, file string) (*sql.DB, db.Dialect, error) {
	if url := ts.Getenv("POSBRIDGE_DATABASE"); db.IsURL(url) && filepath.Base(file) == "posbridge.db" {
		d, err := sql.Open("pgx", url)
		return d, db.Postgres, err
	}
	d, err := sql.Open("sqlite", "file:"+ts.MkAbs(file)+"?_pragma=busy_timeout(5000)")
	return d, db.SQLite, err
}

// repoRoot finds the repository: the first folder above the test's working
// directory that holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's working directory")
		}
		dir = parent
	}
}

// setup gives every script its own data folder, a HOME without a user
// config, the demo data in $WORK/demo and the bad-input files of
// testdata/bad in $WORK/bad. Copies rather than links, so that the reject
// files a load writes beside its input never land in the repository.
//
// It sets $DB to the script's database as posbridge prints it, and
// $DB_TARGET to what POSBRIDGE_DATABASE holds at the start (empty on
// SQLite), for a script that points POSBRIDGE_DATABASE elsewhere and back.
func setup(env *testscript.Env, root string) error {
	env.Setenv("POSBRIDGE_DATA_DIR", filepath.Join(env.WorkDir, "data"))
	env.Setenv("DB", filepath.Join(env.WorkDir, "data", "posbridge.db"))
	env.Setenv("DB_TARGET", "")
	if pgtest.Wanted() {
		// make test-postgres: the script's state in a database of its
		// own on the test server instead of data/posbridge.db.
		url, drop, err := pgtest.NewDatabase(filepath.Base(env.WorkDir))
		if err != nil {
			return err
		}
		env.Defer(func() {
			if err := drop(); err != nil {
				env.T().Log(err)
			}
		})
		env.Setenv("POSBRIDGE_DATABASE", url)
		env.Setenv("DB", db.Redact(url))
		env.Setenv("DB_TARGET", url)
	}
	env.Setenv("HOME", env.WorkDir)
	env.Setenv("XDG_CONFIG_HOME", "")
	env.Values[lockKey{}] = &dbLock{}
	env.Values[scriptT{}] = env.T() // pgdatabase skips the script by it
	env.Defer(env.Values[lockKey{}].(*dbLock).release)
	for _, dir := range []string{"demo", "bad", "partners", "exports"} {
		if err := copyDir(filepath.Join(root, "testdata", dir), filepath.Join(env.WorkDir, dir)); err != nil {
			return err
		}
	}
	return nil
}

// copyDir copies the files (not subfolders) of src into a new folder dst.
func copyDir(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cmdExitcode runs a program like exec and checks its exact exit code:
//
//	exitcode N program [args...]
//
// Its stdout and stderr are kept for the stdout and stderr commands.
func cmdExitcode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode (give the expected code instead)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	err = ts.Exec(args[1], args[2:]...)
	// No panic, ever: an unrecovered one exits with 2, the code of a usage
	// error, and a recovered one with 1; neither may pass for the real thing.
	if e := ts.ReadFile("stderr"); strings.Contains(e, "panic: ") || strings.Contains(e, ": internal error: ") {
		ts.Fatalf("%s panicked", args[1])
	}
	got := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		got = ee.ExitCode()
	default:
		ts.Fatalf("exitcode: %v", err)
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

// cmdSQLQ runs SQL against a SQLite file (or, under make test-postgres,
// the script's database: see openStateDB) and prints result rows like the
// sqlite3 shell: columns separated by |, NULL as an empty string.
// Statements that return no rows (UPDATE, INSERT, ...) print nothing.
// With -set, the query must return one value, which goes into the script
// variable VAR instead (for ids the script needs later). Each ARG is the
// value of the next ? of the SQL, with the escapes of unescapeText, for
// characters no SQL literal spells on both engines (control characters).
//
//	sqlq [-set VAR] DBFILE 'SQL' [ARG...]
func cmdSQLQ(ts *testscript.TestScript, neg bool, args []string) {
	const usage = "usage: sqlq [-set VAR] DBFILE 'SQL' [ARG...]"
	if neg {
		ts.Fatalf("unsupported: ! sqlq")
	}
	var setVar string
	if len(args) > 0 && args[0] == "-set" {
		if len(args) < 2 {
			ts.Fatalf(usage)
		}
		setVar, args = args[1], args[2:]
	}
	if len(args) < 2 {
		ts.Fatalf(usage)
	}
	var params []any
	for _, a := range args[2:] {
		params = append(params, unescapeText(ts, a))
	}
	d, dialect, err := openStateDB(ts, args[0])
	ts.Check(err)
	defer d.Close()
	query := args[1]
	if dialect == db.Postgres {
		query = db.Rebind(query)
	}
	rows, err := d.Query(query, params...)
	if err != nil {
		ts.Fatalf("sqlq: %v", err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	ts.Check(err)
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var lines []string
	for rows.Next() {
		ts.Check(rows.Scan(ptrs...))
		cells := make([]string, len(vals))
		for i, v := range vals {
			switch x := v.(type) {
			case nil:
			case []byte:
				cells[i] = string(x)
			case bool:
				// A comparison is a boolean on PostgreSQL, an integer on
				// SQLite: shown as the sqlite3 shell shows it.
				cells[i] = map[bool]string{false: "0", true: "1"}[x]
			default:
				cells[i] = fmt.Sprint(x)
			}
		}
		lines = append(lines, strings.Join(cells, "|"))
	}
	if err := rows.Err(); err != nil {
		ts.Fatalf("sqlq: %v", err)
	}
	if setVar != "" {
		if len(lines) != 1 || len(cols) != 1 {
			ts.Fatalf("sqlq -set %s: want one row of one column, got %d rows of %d", setVar, len(lines), len(cols))
		}
		ts.Setenv(setVar, lines[0])
		return
	}
	for _, l := range lines {
		fmt.Fprintln(ts.Stdout(), l)
	}
}

// cmdTimeAgo sets the script variable VAR to the time DURATION (as
// time.ParseDuration reads it) before now, as posbridge writes times
// (UTC, db.TimeLayout), for the SQL of a script that backdates a row:
//
//	timeago VAR DURATION
func cmdTimeAgo(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: timeago VAR DURATION")
	}
	d, err := time.ParseDuration(args[1])
	if err != nil {
		ts.Fatalf("timeago: %v", err)
	}
	ts.Setenv(args[0], time.Now().Add(-d).UTC().Format(db.TimeLayout))
}

// cmdInflate writes OUT as TEMPLATE with MARKER replaced by N 'x'
// characters, so a script can hold a small template of a huge file:
//
//	inflate TEMPLATE OUT MARKER N
func cmdInflate(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! inflate")
	}
	if len(args) != 4 {
		ts.Fatalf("usage: inflate TEMPLATE OUT MARKER N")
	}
	n, err := strconv.Atoi(args[3])
	if err != nil || n < 0 {
		ts.Fatalf("inflate: %q is not a count", args[3])
	}
	before, after, ok := strings.Cut(ts.ReadFile(args[0]), args[2])
	if !ok {
		ts.Fatalf("inflate: %s does not contain %q", args[0], args[2])
	}
	f, err := os.Create(ts.MkAbs(args[1]))
	ts.Check(err)
	w := bufio.NewWriter(f)
	w.WriteString(before)
	_, err = io.CopyN(w, repeatReader('x'), int64(n))
	ts.Check(err)
	w.WriteString(after)
	ts.Check(w.Flush())
	ts.Check(f.Close())
}

// repeatReader is an endless stream of one byte.
type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// lockKey finds a script's dbLock in its Env.Values.
type lockKey struct{}

// dbLock is a write transaction held open on a database, as another
// posbridge process in the middle of a load would hold it.
type dbLock struct {
	db   *sql.DB
	conn *sql.Conn
}

func (l *dbLock) release() {
	if l.conn != nil {
		l.conn.ExecContext(context.Background(), "ROLLBACK")
		l.conn.Close()
		l.db.Close()
		l.conn, l.db = nil, nil
	}
}

// cmdDBLock takes the write lock of a database and holds it until dbunlock
// or the end of the script:
//
//	dblock DBFILE
//
// On SQLite it is the file's write lock (BEGIN IMMEDIATE). PostgreSQL has
// no lock on the whole database: an EXCLUSIVE lock on every table of the
// schema, in an open transaction, is the same for posbridge (writers wait,
// and fail at the busy timeout; readers proceed).
func cmdDBLock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: dblock DBFILE")
	}
	l := ts.Value(lockKey{}).(*dbLock)
	if l.conn != nil {
		ts.Fatalf("dblock: a database is already locked")
	}
	d, dialect, err := openStateDB(ts, args[0])
	ts.Check(err)
	ctx := context.Background()
	conn, err := d.Conn(ctx)
	ts.Check(err)
	l.db, l.conn = d, conn
	if dialect == db.SQLite {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	} else {
		err = lockAllTables(ctx, conn)
	}
	if err != nil {
		l.release()
		ts.Fatalf("dblock: %v", err)
	}
}

// lockAllTables begins a transaction on conn, a PostgreSQL connection, and
// takes an EXCLUSIVE lock on every table of the current schema.
func lockAllTables(ctx context.Context, conn *sql.Conn) error {
	var tables string
	err := conn.QueryRowContext(ctx, `SELECT coalesce(string_agg(quote_ident(tablename), ', '), '') FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables)
	if err != nil {
		return err
	}
	if tables == "" {
		return errors.New("no tables to lock: run posbridge init first")
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "LOCK TABLE "+tables+" IN EXCLUSIVE MODE")
	return err
}

// cmdDBUnlock releases the lock taken by dblock.
func cmdDBUnlock(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: dbunlock")
	}
	ts.Value(lockKey{}).(*dbLock).release()
}
