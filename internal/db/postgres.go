package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// IsURL reports whether target names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsURL(target string) bool {
	return strings.HasPrefix(target, "postgres://") || strings.HasPrefix(target, "postgresql://")
}

// Redact is target as it may be printed: a PostgreSQL URL without its
// password, a SQLite path as it is.
func Redact(target string) string {
	if !IsURL(target) {
		return target
	}
	u, err := url.Parse(target)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	return u.String()
}

// openPostgres connects to the PostgreSQL database of rawURL. The password
// comes from the URL, $PGPASSWORD or ~/.pgpass (pgx reads them as libpq
// does); DB.Path is the URL without it.
func openPostgres(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	shown := Redact(rawURL)
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", shown, redactErr(err, rawURL))
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = defaultBusyTimeout
	}
	// lock_timeout is the busy timeout of PostgreSQL: a statement that
	// waits longer for a row or table lock fails (55P03), as SQLite's
	// busy timeout fails a writer; the run exits 75.
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["lock_timeout"] = strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)
	cfg.RuntimeParams["application_name"] = "posbridge"
	sqldb := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
	d := &DB{DB: sqldb, Path: shown, Dialect: Postgres}
	if err := d.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %s: %w", shown, Classify(redactErr(err, rawURL)))
	}
	if opts.anyVersion {
		return d, nil
	}
	if err := checkCollation(ctx, d); err != nil {
		sqldb.Close()
		return nil, err
	}
	if !opts.Create {
		// As a missing SQLite file: a database without the schema is
		// one 'posbridge init' has not run on.
		if ok, err := hasMigrations(ctx, d, Postgres); err != nil || !ok {
			sqldb.Close()
			if err != nil {
				return nil, fmt.Errorf("open database %s: %w", shown, Classify(err))
			}
			return nil, fmt.Errorf("open database %s: %w (run 'posbridge init' first)", shown, ErrMissing)
		}
	}
	return d.ready(ctx, opts)
}

// ErrCollation means a PostgreSQL database does not treat text as SQLite
// does: posbridge orders keys and files, and folds case in searches, the
// same on both engines only with the C locale and UTF8.
var ErrCollation = errors.New("database must use the C locale and UTF8 encoding")

// checkCollation refuses a database whose collation or character type is
// not C (or POSIX), or whose encoding is not UTF8: under a language's
// collation ORDER BY and key comparisons differ from SQLite's bytewise
// ones, and under a language's character type (C.UTF-8 included) lower()
// folds letters SQLite's lower() leaves alone.
func checkCollation(ctx context.Context, d *DB) error {
	// datlocprovider (PostgreSQL 15 on) is 'i' for an ICU collation,
	// which datcollate does not show; read through to_jsonb so that older
	// servers, without the column, answer too. Its locale is daticulocale
	// (15, 16) or datlocale (17 on).
	var collate, ctype, provider, icu, encoding string
	err := d.QueryRowContext(ctx, `SELECT datcollate, datctype, coalesce(to_jsonb(d) ->> 'datlocprovider', 'c'),
  coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale', ''), pg_encoding_to_char(encoding)
FROM pg_database d WHERE datname = current_database()`).Scan(&collate, &ctype, &provider, &icu, &encoding)
	if err != nil {
		return fmt.Errorf("open database %s: %w", d.Path, Classify(err))
	}
	if provider == "i" {
		collate = "ICU " + icu
	}
	bytewise := func(c string) bool { return c == "C" || c == "POSIX" }
	if !bytewise(collate) || !bytewise(ctype) || encoding != "UTF8" {
		return fmt.Errorf("open database %s: %w: it has collation %s, character type %s and encoding %s; create it with\n  createdb --locale=C --encoding=UTF8 --template=template0 NAME", d.Path, ErrCollation, collate, ctype, encoding)
	}
	return nil
}

// redactErr is err with the password of rawURL, if it shows, replaced.
func redactErr(err error, rawURL string) error {
	u, perr := url.Parse(rawURL)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
	}
	return err
}

// pgConnector connects through pgx, each connection a pgConn.
type pgConnector struct{ driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return pgConn{conn.(*stdlib.Conn)}, nil
}

// pgConn is a pgx connection that takes the statements of posbridge as
// they are written, with SQLite's placeholders: each statement's ? and ?N
// become $n (Rebind) before pgx sees it.
type pgConn struct{ *stdlib.Conn }

func (c pgConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c pgConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	q, n := rebind(query)
	st, err := c.Conn.PrepareContext(ctx, q)
	if err != nil || n < 0 {
		return st, err
	}
	return pgStmt{st.(*stdlib.Stmt), n}, nil
}

// pgStmt is a prepared statement that numbers its parameters (?N): like
// pgConn's ExecContext and QueryContext, it leaves out the arguments past
// its highest parameter, which SQLite lets a statement leave unused.
type pgStmt struct {
	*stdlib.Stmt
	params int // the highest ?N
}

// NumInput is -1 (not known) so that database/sql passes every argument
// to ExecContext and QueryContext, which drop the unused ones, rather
// than refuse the call; too few arguments pgx refuses itself.
func (s pgStmt) NumInput() int { return -1 }

func (s pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.Stmt.ExecContext(ctx, usedArgs(args, s.params))
}

func (s pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.Stmt.QueryContext(ctx, usedArgs(args, s.params))
}

func (c pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	q, n := rebind(query)
	return c.Conn.ExecContext(ctx, q, usedArgs(args, n))
}

func (c pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, n := rebind(query)
	return c.Conn.QueryContext(ctx, q, usedArgs(args, n))
}

// usedArgs is args without those past the highest parameter of a
// statement: SQLite lets a statement with numbered parameters (?1, ?3)
// leave arguments unused, PostgreSQL refuses the call.
func usedArgs(args []driver.NamedValue, params int) []driver.NamedValue {
	if params >= 0 && len(args) > params {
		return args[:params]
	}
	return args
}

// CheckNamedValue passes a Go bool as 0 or 1: SQLite has no boolean type,
// so flags are INTEGER columns in both schemas.
func (c pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
		return nil
	}
	return c.Conn.CheckNamedValue(nv)
}

// rebound caches rebind's answers: the same few hundred statements run
// millions of times.
var rebound sync.Map

type reboundQuery struct {
	query string
	// numbered is the highest ?N of a statement that numbers its
	// parameters, -1 for one that does not.
	numbered int
}

// Rebind writes SQLite's placeholders of query, ? (the next parameter) and
// ?N (parameter N), as PostgreSQL's $n, leaving quoted text, quoted names
// and comments as they are.
func Rebind(query string) string {
	q, _ := rebind(query)
	return q
}

// rebind is Rebind, and the highest parameter number of a statement that
// numbers them (-1 if it does not).
func rebind(query string) (string, int) {
	if !strings.Contains(query, "?") {
		return query, -1
	}
	if r, ok := rebound.Load(query); ok {
		return r.(reboundQuery).query, r.(reboundQuery).numbered
	}
	numbered := -1
	var b strings.Builder
	b.Grow(len(query) + 8)
	next := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(query) && query[j] != c {
				j++
			}
			i = copyThrough(&b, query, i, min(j+1, len(query)))
			continue
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			i = copyThrough(&b, query, i, i+j)
			continue
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			if j < 0 {
				j = len(query) - i - 4
			}
			i = copyThrough(&b, query, i, i+j+4)
			continue
		case c == '?':
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			if j == i+1 {
				next++
				b.WriteString("$" + strconv.Itoa(next))
			} else {
				n, _ := strconv.Atoi(query[i+1 : j])
				next = n
				numbered = max(numbered, n)
				b.WriteString("$" + query[i+1:j])
			}
			i = j - 1
			continue
		}
		b.WriteByte(c)
	}
	r := reboundQuery{b.String(), numbered}
	rebound.Store(query, r)
	return r.query, r.numbered
}

// copyThrough writes query[from:to] to b as it is and returns the index
// of its last byte, where Rebind's loop goes on from.
func copyThrough(b *strings.Builder, query string, from, to int) int {
	b.WriteString(query[from:to])
	return to - 1
}

// PgxConn runs fn with the pgx connection under conn, for what
// database/sql cannot do: COPY.
func PgxConn(conn *sql.Conn, fn func(*pgx.Conn) error) error {
	return conn.Raw(func(dc any) error {
		pc, ok := dc.(pgConn)
		if !ok {
			return fmt.Errorf("not a PostgreSQL connection (%T)", dc)
		}
		return fn(pc.Conn.Conn())
	})
}

// classifyPG maps PostgreSQL's errors that mean "try again later" to
// ErrBusy, and a connection lost or refused to ErrUnavailable: refused
// also when the server has no connection left for the host (53300:
// max_connections, or a role's or database's CONNECTION LIMIT) or takes
// no writes (25006: a standby, as the old primary is after a failover
// until the URL's name follows the new one). A wrong password or a
// missing database is neither: it stays wrong. The price of 25006: a
// write that posbridge itself sent inside one of its read-only
// transactions (a defect) would also read as temporary, exit 75 rather
// than 1; its message still names it.
func classifyPG(err error) error {
	// A run stopped while pgx worked: pgx wraps its context's error as a
	// timeout or a failed connection, but the database is not at fault,
	// and the run is not to be run again at once (exit 75) for it.
	if errors.Is(err, context.Canceled) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", // serialization_failure
			pe.Code == "40P01", // deadlock_detected
			pe.Code == "55P03", // lock_not_available
			pe.Code == "57014": // query_canceled (statement or lock timeout)
			return fmt.Errorf("%w: %w", ErrBusy, err)
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03", // admin shutdown, crash, cannot connect now
			pe.Code == "57P05", pe.Code == "25P03", // idle session, idle in transaction: the session ended
			pe.Code == "53300", // too_many_connections
			pe.Code == "25006": // read_only_sql_transaction
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return err
	}
	// pgx wraps what it meets: a connection it closed (ErrConnClosed), a
	// socket that went away (a net.Error, or an unexpected EOF in a
	// message), a connection attempt that failed (ConnectError).
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, pgconn.ErrConnClosed) || pgconn.Timeout(err) || errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// migrationLock is the key of the advisory lock under which PostgreSQL
// migrations run, so that two hosts migrating at once apply each once.
const migrationLock = "posbridge migrate"
