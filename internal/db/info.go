package db

import (
	"context"
	"fmt"
	"os"
)

// Info is what db status tells of a database besides its schema version
// and tables.
type Info struct {
	// Backend is the engine: "sqlite" or "postgres".
	Backend Dialect `json:"backend"`
	// ServerVersion is SQLite's library version, or the PostgreSQL
	// server's.
	ServerVersion string `json:"server_version"`
	// SizeBytes is the SQLite file's size (without its write-ahead log),
	// or pg_database_size of the PostgreSQL database.
	SizeBytes int64 `json:"size_bytes"`
}

// Info returns the engine, its version and the size of d.
func (d *DB) Info(ctx context.Context) (Info, error) {
	in := Info{Backend: d.Dialect}
	query := `SELECT sqlite_version()`
	if d.Dialect == Postgres {
		query = `SELECT current_setting('server_version')`
	}
	if err := d.QueryRowContext(ctx, query).Scan(&in.ServerVersion); err != nil {
		return in, fmt.Errorf("read server version: %w", Classify(err))
	}
	if d.Dialect == Postgres {
		if err := d.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&in.SizeBytes); err != nil {
			return in, fmt.Errorf("read database size: %w", Classify(err))
		}
		return in, nil
	}
	st, err := os.Stat(d.Path)
	if err != nil {
		return in, fmt.Errorf("read database size: %w", err)
	}
	in.SizeBytes = st.Size()
	return in, nil
}
