package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/db/pgtest"
)

// The PostgreSQL backend's side of Open: what SQLite's tests above check
// for a file, checked for a database URL.

func TestPostgresOpenCreatesTheSchemaOnlyWhenAsked(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)

	_, err := db.Open(ctx, url, db.Options{})
	if !errors.Is(err, db.ErrMissing) || !strings.Contains(err.Error(), "posbridge init") {
		t.Fatalf("Open of an empty database without Create: error %v, want ErrMissing with the hint", err)
	}
	if ok, err := db.Exists(ctx, url); err != nil || ok {
		t.Fatalf("Exists of an empty database = %v, %v; want false", ok, err)
	}

	d, err := db.Open(ctx, url, db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Dialect != db.Postgres {
		t.Errorf("Dialect = %q, want %q", d.Dialect, db.Postgres)
	}
	if v, err := d.Version(ctx); err != nil || v != db.LatestVersion() {
		t.Fatalf("Version = %d, %v; want %d", v, err, db.LatestVersion())
	}
	if ok, err := db.Exists(ctx, url); err != nil || !ok {
		t.Fatalf("Exists after Create = %v, %v; want true", ok, err)
	}
	// Again, without Create: the schema is there, nothing to apply.
	d2 := dbtest.OpenAgain(t, d)
	applied, err := d2.Migrate(ctx)
	if err != nil || len(applied) != 0 {
		t.Fatalf("Migrate of a current schema applied %v, %v; want nothing", applied, err)
	}
}

func TestPostgresOpenRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	d, err := db.Open(ctx, url, db.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	newer := db.LatestVersion() + 1
	if _, err := d.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, 'future', ?)`, newer, db.Now()); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if _, err := db.Open(ctx, url, db.Options{}); !errors.Is(err, db.ErrTooNew) {
		t.Fatalf("Open of a newer schema: error %v, want ErrTooNew", err)
	}
	if v, err := db.ReadVersion(ctx, url); err != nil || v != newer {
		t.Fatalf("ReadVersion = %d, %v; want %d", v, err, newer)
	}
}

// Hosts that migrate one database at once take turns: every migration is
// applied and recorded once, and every Open succeeds.
func TestPostgresConcurrentMigrations(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := db.Open(ctx, url, db.Options{Create: true})
			if err == nil {
				d.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
		}
	}
	d, err := db.Open(ctx, url, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if n := count(t, d, `SELECT count(*) FROM schema_migrations`); n != int64(db.LatestVersion()) {
		t.Errorf("schema_migrations has %d rows, want %d", n, db.LatestVersion())
	}
	if n := count(t, d, `SELECT count(DISTINCT version) FROM schema_migrations`); n != int64(db.LatestVersion()) {
		t.Errorf("schema_migrations has %d versions, want %d", n, db.LatestVersion())
	}
}

// A server that does not answer is "try again later" (exit 75), and the
// password is never part of what is printed.
func TestPostgresUnreachableAndPasswordNotShown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	url := fmt.Sprintf("postgres://posbridge:s3cret-pw@127.0.0.1:%d/posbridge?sslmode=disable&connect_timeout=2", port)
	_, err = db.Open(context.Background(), url, db.Options{})
	if !errors.Is(err, db.ErrUnavailable) {
		t.Errorf("Open of a closed port: error %v, want ErrUnavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error shows the password: %v", err)
	}
	if got := db.Redact(url); strings.Contains(got, "s3cret-pw") || !strings.Contains(got, "posbridge@127.0.0.1") {
		t.Errorf("Redact(%q) = %q", url, got)
	}
}

// A writer that waits for a row lock longer than the busy timeout fails
// as busy (exit 75), as a SQLite writer does; a connection the server
// ends is unavailable (exit 75).
func TestPostgresBusyAndLostConnection(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Start(t)
	d, err := db.Open(ctx, url, db.Options{Create: true, BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, `INSERT INTO sequences(kind, last) VALUES ('k', 1)`); err != nil {
		t.Fatal(err)
	}
	holder, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	release := make(chan struct{})
	held := make(chan struct{})
	go db.WithTx(ctx, holder, false, func() error {
		holder.ExecContext(ctx, `UPDATE sequences SET last = last + 1 WHERE kind = 'k'`)
		close(held)
		<-release
		return nil
	})
	<-held
	err = d.Tx(ctx, true, func(conn *sql.Conn) error {
		_, err := db.NextSequence(ctx, conn, "k")
		return db.Classify(err)
	})
	close(release)
	if !errors.Is(err, db.ErrBusy) {
		t.Errorf("writer behind a held row lock: error %v, want ErrBusy", err)
	}

	victim, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var pid int
	if err := victim.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `SELECT pg_terminate_backend(?)`, pid); err != nil {
		t.Fatal(err)
	}
	var one int
	err = victim.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	if err := db.Classify(err); !errors.Is(err, db.ErrUnavailable) {
		t.Errorf("query on a terminated connection: error %v, want ErrUnavailable", err)
	}
}

// A database that sorts text by a language's rules is refused: keys and
// files would come out in another order than on SQLite.
func TestPostgresRefusesALanguageCollation(t *testing.T) {
	ctx := context.Background()
	testURL := pgtest.Start(t)
	admin, err := sql.Open("pgx", testURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE icu_en TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C' ENCODING 'UTF8'`); err != nil {
		t.Fatalf("create an ICU database: %v", err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), `DROP DATABASE icu_en WITH (FORCE)`) })
	u, err := url.Parse(testURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/icu_en"
	_, err = db.Open(ctx, u.String(), db.Options{Create: true})
	if !errors.Is(err, db.ErrCollation) || !strings.Contains(err.Error(), "ICU en-US") || !strings.Contains(err.Error(), "createdb --locale=C") {
		t.Fatalf("Open of an ICU en-US database: error %v, want ErrCollation naming it and the createdb line", err)
	}
}

// Temporary finds a busy or lost database anywhere in an error's chain,
// classified or not, and nothing else: a truncated input file's unexpected
// EOF is not the database's.
func TestTemporary(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	conn := openConn(t, d)
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ExecContext(ctx, `SELECT pg_terminate_backend(?)`, pid); err != nil {
		t.Fatal(err)
	}
	_, lost := conn.ExecContext(ctx, `SELECT 1`)
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("load items.csv: %w", lost), true},
		{fmt.Errorf("x: %w", db.ErrBusy), true},
		// pgx's own sentinel names its engine, classified or not.
		{fmt.Errorf("record exit code of run 7: %w", pgconn.ErrConnClosed), true},
		{fmt.Errorf("read orders.json: %w", io.ErrUnexpectedEOF), false},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, false},
		{errors.New("something else"), false},
		{nil, false},
	} {
		if got := db.Temporary(c.err); got != c.want {
			t.Errorf("Temporary(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// A prepared statement takes the arguments Exec and Query take: those
// past the highest ?N of a statement that numbers its parameters are
// dropped, as SQLite leaves them unused.
func TestPostgresPreparedUnusedArguments(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	const q = `SELECT ?2::text || ?1::text`
	args := []any{"a", "b", "unused"}
	st, err := d.PrepareContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for how, row := range map[string]*sql.Row{
		"QueryRow":          d.QueryRowContext(ctx, q, args...),
		"prepared QueryRow": st.QueryRowContext(ctx, args...),
	} {
		var got string
		if err := row.Scan(&got); err != nil || got != "ba" {
			t.Errorf("%s: %q, %v; want \"ba\"", how, got, err)
		}
	}
	if _, err := st.ExecContext(ctx, args...); err != nil {
		t.Errorf("prepared Exec: %v", err)
	}
	if _, err := st.ExecContext(ctx, "a"); err == nil {
		t.Error("prepared Exec with an argument missing: no error")
	}
}

// A connection pgx closed is unavailable by pgx's own error, not by the
// text of one: another library's "conn closed" is not the database's.
func TestClassifyConnClosed(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	conn := openConn(t, d)
	err := db.PgxConn(conn, func(pc *pgx.Conn) error {
		pc.Close(ctx)
		_, err := pc.Exec(ctx, `SELECT 1`)
		return err
	})
	if !errors.Is(err, pgconn.ErrConnClosed) {
		t.Fatalf("a statement on a closed pgx connection: %v, want pgconn.ErrConnClosed", err)
	}
	if c := db.Classify(fmt.Errorf("export items: %w", err)); !errors.Is(c, db.ErrUnavailable) {
		t.Errorf("Classify(%v) = %v, want ErrUnavailable", err, c)
	}
	for _, other := range []error{errors.New("sftp: conn closed"), errors.New("read orders.json: unexpected EOF")} {
		if c := db.Classify(other); errors.Is(c, db.ErrUnavailable) {
			t.Errorf("Classify(%v) = %v, want it as it is", other, c)
		}
	}
}

// openConn is a connection of d's, closed at the test's end.
func openConn(t *testing.T, d *db.DB) *sql.Conn {
	t.Helper()
	conn, err := d.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A server that turns a host away for now is unavailable (exit 75), as a
// server it cannot reach is: its connections all taken (max_connections,
// or a role's or database's CONNECTION LIMIT, 53300), or it takes no
// writes because it is a standby (25006: the URL still names the old
// primary after a failover, until its DNS name follows). The next run
// may find it again.
func TestPostgresRefusesForNow(t *testing.T) {
	ctx := context.Background()
	testURL := pgtest.Start(t)
	if _, err := db.Open(ctx, testURL, db.Options{Create: true}); err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("pgx", testURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	role := fmt.Sprintf("full_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, `CREATE ROLE `+role+` LOGIN CONNECTION LIMIT 0`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.ExecContext(context.Background(), `DROP ROLE `+role) })
	u, err := url.Parse(testURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	_, err = db.Open(ctx, u.String(), db.Options{})
	if !errors.Is(err, db.ErrUnavailable) || !strings.Contains(err.Error(), "too many connections") {
		t.Errorf("Open with no connection left for the role: error %v, want ErrUnavailable saying so", err)
	}

	d, err := db.Open(ctx, testURL, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	conn := openConn(t, d)
	if _, err := conn.ExecContext(ctx, `SET default_transaction_read_only = on`); err != nil {
		t.Fatal(err)
	}
	err = db.WithTx(ctx, conn, true, func() error {
		_, err := db.NextSequence(ctx, conn, "k")
		return db.Classify(err)
	})
	if !errors.Is(err, db.ErrUnavailable) || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("a write on a server that takes none: error %v, want ErrUnavailable saying so", err)
	}
	if !db.Temporary(fmt.Errorf("export items: %w", err)) {
		t.Errorf("Temporary(%v) = false", err)
	}
}

// A URL may name the primary and its standbys, for a failover of the
// database itself (docs/operations.md, section 15): posbridge connects to
// the first host that answers and takes writes, and shows the URL without
// its password.
func TestPostgresSeveralServerHosts(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := l.Addr().String()
	l.Close() // the old primary: nothing listens there now
	u.Host = gone + "," + u.Host
	u.User = url.UserPassword(u.User.Username(), "s3cret-pw")
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	q.Set("connect_timeout", "5")
	u.RawQuery = q.Encode()
	d, err := db.Open(ctx, u.String(), db.Options{Create: true})
	if err != nil {
		t.Fatalf("Open of %s: %v", db.Redact(u.String()), err)
	}
	defer d.Close()
	if _, err := d.ExecContext(ctx, `INSERT INTO sequences(kind, last) VALUES ('k', 1)`); err != nil {
		t.Errorf("write through the second host: %v", err)
	}
	if got := db.Redact(u.String()); strings.Contains(got, "s3cret-pw") || !strings.Contains(got, gone+",127.0.0.1:") {
		t.Errorf("Redact(%q) = %q, want both hosts and no password", u.String(), got)
	}
}

// TestPostgresStopIsNoOutage: a run stopped (SIGTERM, Ctrl-C) while pgx
// works stops with its context's error, which pgx wraps as a timeout or a
// failed connection; classified by those, the stop read "database
// unavailable" and a stopped job exited 75, to be run again at once,
// rather than 1 (TestJobTerminated on PostgreSQL, now and then).
func TestPostgresStopIsNoOutage(t *testing.T) {
	url := pgtest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := pgconn.Connect(ctx, url)
	if err == nil {
		t.Fatal("connected with a cancelled context")
	}
	if c := db.Classify(err); errors.Is(c, db.ErrUnavailable) || !errors.Is(c, context.Canceled) || db.Temporary(c) {
		t.Errorf("a stop while connecting classified %v, want context.Canceled, not temporary", c)
	}
	conn, err := pgconn.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ctx, cancel = context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	err = conn.Exec(ctx, `SELECT pg_sleep(10)`).Close()
	if c := db.Classify(err); errors.Is(c, db.ErrUnavailable) || errors.Is(c, db.ErrBusy) || !errors.Is(c, context.Canceled) {
		t.Errorf("a stop during a statement classified %v, want context.Canceled", c)
	}
}
