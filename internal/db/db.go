package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNotDatabase means the file exists but is not a SQLite database.
var ErrNotDatabase = errors.New("not a SQLite database")

// ErrMissing means the database file does not exist yet.
var ErrMissing = errors.New("database does not exist")

// ErrTooNew means the database was migrated by a newer posbridge.
var ErrTooNew = errors.New("database schema is newer than this posbridge")

// ErrBusy means another process held the database lock past the busy timeout.
var ErrBusy = errors.New("database is busy")

// ErrUnavailable means the database server could not be reached or the
// connection to it was lost: try again later (the CLI exits 75).
var ErrUnavailable = errors.New("database unavailable")

// Dialect is the database engine of a DB: what differs between them is
// decided by it, here in package db, and nowhere else.
type Dialect string

// The engines posbridge keeps its state in.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

const defaultBusyTimeout = 10 * time.Second

// Options tune Open.
type Options struct {
	BusyTimeout time.Duration
	CacheMiB    int
	// Create allows Open to create a missing database file.
	Create bool
	// NoMigrate leaves pending migrations for an explicit Migrate.
	NoMigrate bool
	// anyVersion opens a schema newer than the binary's (ReadVersion).
	anyVersion bool
}

// DB is an open posbridge database.
type DB struct {
	*sql.DB
	// Path is the SQLite file, or the PostgreSQL URL without its password.
	Path    string
	Dialect Dialect
}

// Open opens the database target: a PostgreSQL URL (postgres://...) or
// the path of a SQLite file (see openSQLite).
func Open(ctx context.Context, target string, opts Options) (*DB, error) {
	if IsURL(target) {
		return openPostgres(ctx, target, opts)
	}
	return openSQLite(ctx, target, opts)
}

// openSQLite opens the database at path with WAL, synchronous=NORMAL, foreign keys,
// a busy timeout and BEGIN IMMEDIATE for transactions, checks that it is a
// SQLite file, and applies pending migrations. It refuses a database whose
// schema is newer than the binary.
func openSQLite(ctx context.Context, path string, opts Options) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open database %q: %w", path, err)
		}
		if !opts.Create {
			return nil, fmt.Errorf("open database %q: %w (run 'posbridge init' first)", path, ErrMissing)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("create data folder for %q: %w", path, err)
		}
		// The database holds customer data: readable by the owner only.
		// SQLite gives its -wal and -shm files the same mode.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database %q: %w", path, err)
		}
		f.Close()
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = defaultBusyTimeout
	}
	if opts.CacheMiB <= 0 {
		opts.CacheMiB = 8
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", fmt.Sprintf("cache_size(-%d)", opts.CacheMiB*1024))
	q.Add("_pragma", "temp_store(FILE)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	d := &DB{DB: sqldb, Path: path, Dialect: SQLite}
	// page_size only takes effect before the first table is created; larger
	// pages make the B-trees of million-row tables shallower.
	if _, err := d.ExecContext(ctx, "PRAGMA page_size=8192"); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %q: %w", path, Classify(err))
	}
	// journal_mode is persistent in the file, so it is set once here rather
	// than on every connection.
	var mode string
	if err := d.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open database %q: %w", path, Classify(err))
	}
	return d.ready(ctx, opts)
}

// ready ends an Open: it refuses a schema newer than the binary and
// applies pending migrations unless opts.NoMigrate; d is closed on error.
func (d *DB) ready(ctx context.Context, opts Options) (*DB, error) {
	if err := d.checkVersion(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if !opts.NoMigrate {
		if _, err := d.Migrate(ctx); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Classify maps the errors of either engine that have a meaning of their
// own to the sentinel errors of this package (ErrBusy, ErrUnavailable,
// ErrNotDatabase), keeping the original text.
func Classify(err error) error {
	if err == nil || errors.Is(err, ErrBusy) || errors.Is(err, ErrUnavailable) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %v", ErrNotDatabase, err)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %v", ErrBusy, err)
		}
		return err
	}
	return classifyPG(err)
}

// Temporary reports whether err, or an error it wraps, is one a later run
// may not meet: the database busy or unreachable, whether or not the code
// that met it classified it (Classify). The CLI exits 75 for it.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrBusy) || errors.Is(err, ErrUnavailable) {
		return true
	}
	// Only errors that name their engine: a bare network error or an
	// unexpected EOF in the chain may as well be a truncated input file.
	// pgconn.ErrConnClosed is pgx's own: a statement on a connection pgx
	// closed after the server went away, as met unclassified by the code
	// that records a run.
	var se *sqlite.Error
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	if !errors.As(err, &se) && !errors.As(err, &pe) && !errors.As(err, &ce) && !errors.Is(err, pgconn.ErrConnClosed) {
		return false
	}
	c := Classify(err)
	return errors.Is(c, ErrBusy) || errors.Is(c, ErrUnavailable)
}

// Now is the timestamp format of every *_at column: UTC, second precision.
func Now() string { return time.Now().UTC().Format(TimeLayout) }

// TimeLayout is the layout of stored timestamps.
const TimeLayout = "2006-01-02T15:04:05Z"

// NullID is the value of a nullable id column such as run_id: NULL for
// no id (0 or below).
func NullID(id int64) any {
	if id <= 0 {
		return nil
	}
	return id
}

// Backup writes a consistent copy of the live database to dest with VACUUM
// INTO, first to a temporary name beside dest, then renamed into place.
func (d *DB) Backup(ctx context.Context, dest string, overwrite bool) error {
	if d.Dialect == Postgres {
		return fmt.Errorf("%w: db backup copies a SQLite file; back up PostgreSQL with its own tools, for example\n  pg_dump --format=custom --file=%s '%s'\n(see docs/operations.md, \"Several hosts\")", ErrNotSQLite, dest, d.Path)
	}
	if _, err := os.Stat(dest); err == nil && !overwrite {
		return fmt.Errorf("backup to %q: file exists (use --force to replace it)", dest)
	}
	// SQLite names a missing folder only as "unable to open database
	// file": say which folder, and what to do.
	if dir := filepath.Dir(dest); !isDir(dir) {
		return fmt.Errorf("backup to %q: folder %s does not exist: create it (mkdir -p %s) or name a file in another folder", dest, dir, dir)
	}
	tmp := dest + ".tmp-backup"
	os.Remove(tmp)
	if _, err := d.ExecContext(ctx, "VACUUM INTO ?", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %q: %w", dest, Classify(err))
	}
	// A backup holds customer data: readable by the owner only.
	if err := os.Chmod(tmp, 0o600); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %q: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("backup to %q: %w", dest, err)
	}
	return nil
}

func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// ErrNotSQLite is what a SQLite-only operation says on PostgreSQL.
var ErrNotSQLite = errors.New("not a SQLite database")

// Tables names the tables of the schema, in name order.
func (d *DB) Tables(ctx context.Context) ([]string, error) {
	query := `SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if d.Dialect == Postgres {
		query = `SELECT table_name FROM information_schema.tables
WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	names, err := QueryAll(ctx, d, func(sc Scanner) (string, error) {
		var n string
		return n, sc.Scan(&n)
	}, query)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return names, nil
}

// TableCounts returns the number of rows of every table of the schema.
func (d *DB) TableCounts(ctx context.Context) ([]TableCount, error) {
	names, err := d.Tables(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TableCount, 0, len(names))
	for _, n := range names {
		var c int64
		if err := d.QueryRowContext(ctx, `SELECT count(*) FROM "`+strings.ReplaceAll(n, `"`, `""`)+`"`).Scan(&c); err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		out = append(out, TableCount{Table: n, Rows: c})
	}
	return out, nil
}

// TableCount is one row of TableCounts.
type TableCount struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// Tx runs fn in a write transaction on a connection of its own, as WithTx
// does.
func (d *DB) Tx(ctx context.Context, commit bool, fn func(conn *sql.Conn) error) error {
	conn, err := d.Conn(ctx)
	if err != nil {
		return Classify(err)
	}
	defer conn.Close()
	return WithTx(ctx, conn, commit, func() error { return fn(conn) })
}

// SpareConn is a second connection of d, for work beside a transaction
// that holds one (a reader in its snapshot, a read-ahead), or nil when
// there is none to have: in a pool of one connection (SetMaxOpenConns)
// that the caller holds, asking for another would wait for the caller.
func (d *DB) SpareConn(ctx context.Context) *sql.Conn {
	if st := d.Stats(); st.MaxOpenConnections > 0 && st.InUse >= st.MaxOpenConnections {
		return nil
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil
	}
	return conn
}

// WithTx runs fn in a write transaction on conn and commits when fn
// returns nil; otherwise, or when commit is false, it rolls back. On
// SQLite it is BEGIN IMMEDIATE: the writer takes the database's write lock
// first, so that no two writers interleave. On PostgreSQL it is READ
// COMMITTED: writers run at once, and what must not interleave is held by
// row locks (claims, sequences), unique constraints (ledgers) and the
// locks table.
//
// A cancel of ctx stops the wait for the write lock, but not the COMMIT:
// modernc.org/sqlite reports a cancel that came during a statement as the
// statement's error even when SQLite ran it, so a BEGIN that "failed" so
// may have opened the transaction (it is rolled back, whatever it did),
// and a COMMIT cut short would report a committed transaction as failed.
func WithTx(ctx context.Context, conn *sql.Conn, commit bool, fn func() error) (err error) {
	return withTx(ctx, conn, BeginStatement(conn), commit, fn)
}

// WithSnapshotTx is WithTx in a write transaction whose statements all
// see the state its first statement saw, but for its own writes: on
// PostgreSQL REPEATABLE READ, where a row another transaction changed
// since then fails the statement that would change or lock it
// (IsSerializationFailure) rather than have it act on the newer row.
// SQLite's BEGIN IMMEDIATE is that already: no other writer commits
// while it is open.
func WithSnapshotTx(ctx context.Context, conn *sql.Conn, commit bool, fn func() error) (err error) {
	begin := BeginStatement(conn)
	if DialectOf(conn) == Postgres {
		begin = "BEGIN ISOLATION LEVEL REPEATABLE READ"
	}
	return withTx(ctx, conn, begin, commit, fn)
}

func withTx(ctx context.Context, conn *sql.Conn, begin string, commit bool, fn func() error) (err error) {
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return fmt.Errorf("begin: %w", Classify(err))
	}
	defer func() {
		if err != nil || !commit {
			if _, rbErr := conn.ExecContext(context.Background(), "ROLLBACK"); rbErr != nil && err == nil {
				err = fmt.Errorf("rollback: %w", rbErr)
			}
			return
		}
		if _, cErr := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); cErr != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
			err = fmt.Errorf("commit: %w", Classify(cErr))
		}
	}()
	return fn()
}

// BeginStatement is the statement that opens a write transaction on conn.
func BeginStatement(conn *sql.Conn) string {
	if DialectOf(conn) == Postgres {
		return "BEGIN"
	}
	return "BEGIN IMMEDIATE"
}

// SnapshotStatement is the statement that opens a read transaction on
// conn whose reads all see one state of the database: SQLite's deferred
// transaction fixes its snapshot at the first read (WAL); PostgreSQL's
// default, READ COMMITTED, gives each statement a snapshot of its own, so
// there it is REPEATABLE READ.
func SnapshotStatement(conn *sql.Conn) string {
	if DialectOf(conn) == Postgres {
		return "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
	}
	return "BEGIN"
}

// ExportSnapshot names, on PostgreSQL, the snapshot of the transaction
// open on conn, for another connection to read in (BeginInSnapshot) while
// that transaction stays open. In a REPEATABLE READ transaction
// (WithSnapshotTx) it is the state all of its statements see.
func ExportSnapshot(ctx context.Context, conn *sql.Conn) (id string, err error) {
	err = conn.QueryRowContext(ctx, `SELECT pg_export_snapshot()`).Scan(&id)
	return id, Classify(err)
}

// BeginInSnapshot opens, on PostgreSQL, a read-only transaction on conn
// that sees the snapshot id another transaction exported
// (ExportSnapshot), which must still be open.
func BeginInSnapshot(ctx context.Context, conn *sql.Conn, id string) error {
	if _, err := conn.ExecContext(ctx, SnapshotStatement(conn)); err != nil {
		return Classify(err)
	}
	if _, err := conn.ExecContext(ctx, `SET TRANSACTION SNAPSHOT '`+strings.ReplaceAll(id, "'", "''")+`'`); err != nil {
		conn.ExecContext(context.Background(), "ROLLBACK")
		return Classify(err)
	}
	return nil
}

// IsSerializationFailure reports whether err is PostgreSQL's
// serialization failure: in a REPEATABLE READ transaction, a statement
// met a row changed since the transaction's snapshot. The transaction can
// only be rolled back; the work may be done again in a new one.
func IsSerializationFailure(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "40001"
}

// DialectOf is the engine conn is connected to.
func DialectOf(conn *sql.Conn) Dialect {
	d := SQLite
	conn.Raw(func(dc any) error {
		if _, ok := dc.(pgConn); ok {
			d = Postgres
		}
		return nil
	})
	return d
}

// ForUpdate ends a SELECT of rows that its write transaction on conn is
// about to change: " FOR UPDATE" on PostgreSQL, where writers run at once
// and the rows then stay locked until the transaction ends, so that a
// second writer reads them after the first; "" on SQLite, whose write
// transaction keeps every other writer out already.
func ForUpdate(conn *sql.Conn) string { return RowLock(conn, "FOR UPDATE") }

// RowLock is ForUpdate with another strength of row lock (FOR KEY SHARE:
// the rows may change but not go).
func RowLock(conn *sql.Conn, strength string) string {
	if DialectOf(conn) == Postgres {
		return " " + strength
	}
	return ""
}

// IsConstraint reports whether err is a constraint violation (UNIQUE,
// FOREIGN KEY, CHECK, NOT NULL).
func IsConstraint(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "23")
}

// IsUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// violation: another writer inserted the same key first.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// IsForeignKeyViolation reports whether err is a row that names a parent
// row that is not there, on either engine.
func IsForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// Scanner is a row to read columns from: *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// QueryAll runs query and reads every row with scan, in order; the result
// is never nil, so that JSON shows an empty list as [].
func QueryAll[T any](ctx context.Context, d *DB, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := d.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, Classify(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, Classify(rows.Err())
}
