package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/posbridge/posbridge/internal/db"
)

// File is one row of the file ledger.
type File struct {
	Direction string `json:"direction"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Records   int64  `json:"records"`
	Rejected  int64  `json:"rejected"`
	Status    string `json:"status"`
	// Mode is how a load applied the file (delta or full).
	Mode      string `json:"mode,omitempty"`
	RunID     int64  `json:"run_id"`
	ID        int64  `json:"id"`
	CreatedAt string `json:"created_at"`
	// Error is what abandoned a file, if anything (ListFiles).
	Error string `json:"error,omitempty"`
}

// RecordFile adds f to the ledger inside the caller's transaction.
func RecordFile(ctx context.Context, q db.Execer, f File) error {
	run := db.NullID(f.RunID)
	_, err := q.ExecContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, records, rejected, status, mode, run_id, created_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`, f.Direction, f.Kind, f.Name, f.Path, f.SHA256, f.Size, f.Records, f.Rejected, f.Status, f.Mode, run, db.Now())
	if err != nil {
		return fmt.Errorf("record file %q: %w", f.Path, err)
	}
	return nil
}

// LastFile returns the newest ledger row of a direction and kind, and
// whether there is one.
func LastFile(ctx context.Context, q db.Querier, direction, kind string) (File, bool, error) {
	var f File
	var run sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT id, direction, kind, name, path, sha256, size, records, rejected, status, mode, run_id, created_at
FROM files WHERE direction = ? AND kind = ? ORDER BY id DESC LIMIT 1`, direction, kind).Scan(
		&f.ID, &f.Direction, &f.Kind, &f.Name, &f.Path, &f.SHA256, &f.Size, &f.Records, &f.Rejected, &f.Status, &f.Mode, &run, &f.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return f, false, nil
	}
	if err != nil {
		return f, false, fmt.Errorf("read file ledger: %w", db.Classify(err))
	}
	f.RunID = run.Int64
	return f, true, nil
}

// FileFilter selects rows of the file ledger; zero fields select all.
type FileFilter struct {
	Direction, Kind string
	RunID           int64
}

// ListFiles streams the file ledger in id order to fn, optionally only one
// direction, kind or run; msg is the error that abandoned a file, if any.
func ListFiles(ctx context.Context, d *db.DB, ff FileFilter, fn func(f File, msg string) error) error {
	direction, kind := ff.Direction, ff.Kind
	q := `SELECT id, direction, kind, name, path, sha256, size, records, rejected, status, mode, coalesce(run_id, 0), created_at, error
FROM files WHERE 1=1`
	var args []any
	if ff.RunID > 0 {
		q += ` AND run_id = ?`
		args = append(args, ff.RunID)
	}
	if direction != "" {
		q += ` AND direction = ?`
		args = append(args, direction)
	}
	if kind != "" {
		q += ` AND kind = ?`
		args = append(args, kind)
	}
	rows, err := d.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("list files: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var f File
		var msg string
		if err := rows.Scan(&f.ID, &f.Direction, &f.Kind, &f.Name, &f.Path, &f.SHA256, &f.Size, &f.Records, &f.Rejected,
			&f.Status, &f.Mode, &f.RunID, &f.CreatedAt, &msg); err != nil {
			return err
		}
		if err := fn(f, msg); err != nil {
			return err
		}
	}
	return rows.Err()
}
