package db

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql migrations_pg/*.sql
var migrationFS embed.FS

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in order.
func Migrations() []Migration {
	return readMigrations("migrations")
}

// PGMigrations returns the embedded PostgreSQL migrations in order: the
// same versions and names as Migrations, each giving a PostgreSQL database
// the schema its SQLite namesake gives a SQLite file (schema_parity_test.go).
func PGMigrations() []Migration {
	return readMigrations("migrations_pg")
}

// readMigrations reads the migrations embedded from dir, in version order.
func readMigrations(dir string) []Migration {
	entries, err := fs.ReadDir(migrationFS, dir)
	if err != nil {
		panic(err) // embedded at build time: cannot fail
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			panic(fmt.Sprintf("migration %q: name must start with a number and _", name))
		}
		b, _ := migrationFS.ReadFile(dir + "/" + name)
		ms = append(ms, Migration{Version: v, Name: strings.TrimSuffix(name, ".sql"), SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms
}

// LatestVersion is the schema version this binary writes.
func LatestVersion() int {
	ms := Migrations()
	return ms[len(ms)-1].Version
}

// Version returns the schema version recorded in the database, 0 for a new file.
func (d *DB) Version(ctx context.Context) (int, error) {
	ok, err := hasMigrations(ctx, d, d.Dialect)
	if err != nil {
		return 0, Classify(err)
	}
	if !ok {
		return 0, nil
	}
	var v int
	if err := d.QueryRowContext(ctx, `SELECT coalesce(max(version),0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, Classify(err)
	}
	return v, nil
}

// hasMigrations reports whether the schema_migrations table exists.
func hasMigrations(ctx context.Context, q Querier, dialect Dialect) (bool, error) {
	query := `SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='schema_migrations'`
	if dialect == Postgres {
		query = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'`
	}
	var n int
	err := q.QueryRowContext(ctx, query).Scan(&n)
	return n > 0, err
}

// Exists reports whether the database target holds a posbridge schema
// already: the SQLite file exists, or the PostgreSQL database has the
// schema_migrations table.
func Exists(ctx context.Context, target string) (bool, error) {
	if !IsURL(target) {
		_, err := os.Stat(target)
		return err == nil, nil
	}
	v, err := ReadVersion(ctx, target)
	return v > 0, err
}

// ReadVersion returns the schema version of the database at path, as
// Version does, without Open's side effects: it creates no file, applies
// no migration, sets no pragma in the file and reads a newer schema's
// version instead of refusing it, so that it can answer for a database
// this binary cannot use. A missing file is ErrMissing.
func ReadVersion(ctx context.Context, path string) (int, error) {
	if IsURL(path) {
		d, err := Open(ctx, path, Options{NoMigrate: true, anyVersion: true})
		if err != nil {
			return 0, err
		}
		defer d.Close()
		return d.Version(ctx)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			err = ErrMissing
		}
		return 0, fmt.Errorf("read schema version of %q: %w", path, err)
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro&_pragma=busy_timeout(2000)"
	sqldb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return 0, fmt.Errorf("read schema version of %q: %w", path, err)
	}
	defer sqldb.Close()
	v, err := (&DB{DB: sqldb, Path: path}).Version(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version of %q: %w", path, err)
	}
	return v, nil
}

// How a database's schema version stands to this binary's (SchemaStatus).
const (
	SchemaCurrent = "current"
	SchemaPending = "pending" // older: migrations to apply
	SchemaNewer   = "newer"   // written by a newer posbridge: refused
)

// SchemaStatus says how a database at schema version v stands to this
// binary: SchemaCurrent, SchemaPending or SchemaNewer.
func SchemaStatus(v int) string {
	switch latest := LatestVersion(); {
	case v < latest:
		return SchemaPending
	case v > latest:
		return SchemaNewer
	}
	return SchemaCurrent
}

func (d *DB) checkVersion(ctx context.Context) error {
	cur, err := d.Version(ctx)
	if err != nil {
		return fmt.Errorf("read schema version of %q: %w", d.Path, err)
	}
	if latest := LatestVersion(); cur > latest {
		return fmt.Errorf("open database %q: %w: schema version %d, this binary knows up to %d; upgrade posbridge", d.Path, ErrTooNew, cur, latest)
	}
	return nil
}

// Migrate applies every pending migration, each in its own transaction,
// and returns the names of those it applied.
func (d *DB) Migrate(ctx context.Context) ([]string, error) {
	if err := d.checkVersion(ctx); err != nil {
		return nil, err
	}
	cur, err := d.Version(ctx)
	if err != nil {
		return nil, err
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return nil, Classify(err)
	}
	defer conn.Close()
	migrations := Migrations()
	if d.Dialect == Postgres {
		migrations = PGMigrations()
	}
	var applied []string
	for _, m := range migrations {
		if m.Version <= cur {
			continue
		}
		err := WithTx(ctx, conn, true, func() error {
			// On PostgreSQL writers do not wait for each other: two hosts
			// migrating at once take turns on this lock, released at
			// commit.
			if d.Dialect == Postgres {
				if err := LockForTx(ctx, conn, migrationLock); err != nil {
					return err
				}
			}
			// Another process may have applied it while we waited for the lock.
			if ok, err := hasMigrations(ctx, conn, d.Dialect); err != nil {
				return err
			} else if ok {
				var done int
				if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version=?`, m.Version).Scan(&done); err != nil {
					return err
				}
				if done > 0 {
					return nil
				}
			}
			if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?,?,?)`, m.Version, m.Name, Now())
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("apply migration %s to %q: %w", m.Name, d.Path, Classify(err))
		}
		applied = append(applied, m.Name)
	}
	return applied, nil
}
