package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/posbridge/posbridge/internal/db"
)

// Execer runs statements on a connection or transaction.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Run statuses.
const (
	RunRunning = "running"
	RunOK      = "ok"
	RunRejects = "rejects"
	RunFailed  = "failed"
)

// StartRun records the start of a state-changing command and returns its id.
func StartRun(ctx context.Context, d *db.DB, command, job string) (int64, error) {
	host, _ := os.Hostname()
	res, err := d.ExecContext(ctx, `INSERT INTO runs(command, job, status, started_at, host, pid) VALUES (?,?,?,?,?,?)`,
		command, job, RunRunning, db.Now(), host, os.Getpid())
	if err != nil {
		return 0, fmt.Errorf("record run: %w", db.Classify(err))
	}
	return res.LastInsertId()
}

// EndRun records the end of a run with its status, counts and error text.
func EndRun(ctx context.Context, d *db.DB, id int64, status string, counts any, runErr error) error {
	b, err := json.Marshal(counts)
	if err != nil {
		return err
	}
	msg := ""
	if runErr != nil {
		msg = runErr.Error()
	}
	_, err = d.ExecContext(ctx, `UPDATE runs SET status=?, ended_at=?, counts=?, error=? WHERE id=?`, status, db.Now(), string(b), msg, id)
	if err != nil {
		return fmt.Errorf("record end of run %d: %w", id, db.Classify(err))
	}
	return nil
}

// File is one row of the file ledger.
type File struct {
	Direction string
	Kind      string
	Name      string
	Path      string
	SHA256    string
	Size      int64
	Records   int64
	Rejected  int64
	Status    string
	// Mode is how a load applied the file (delta or full).
	Mode      string
	RunID     int64
	ID        int64
	CreatedAt string
}

// RecordFile adds f to the ledger inside the caller's transaction.
func RecordFile(ctx context.Context, q Execer, f File) error {
	var run any
	if f.RunID > 0 {
		run = f.RunID
	}
	_, err := q.ExecContext(ctx, `INSERT INTO files(direction, kind, name, path, sha256, size, records, rejected, status, mode, run_id, created_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`, f.Direction, f.Kind, f.Name, f.Path, f.SHA256, f.Size, f.Records, f.Rejected, f.Status, f.Mode, run, db.Now())
	if err != nil {
		return fmt.Errorf("record file %q: %w", f.Path, err)
	}
	return nil
}

// Querier runs queries on a database, connection or transaction.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// LastFile returns the newest ledger row of a direction and kind, and
// whether there is one.
func LastFile(ctx context.Context, q Querier, direction, kind string) (File, bool, error) {
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

// ListFiles streams the file ledger in id order to fn, optionally only one
// direction and kind; msg is the error that abandoned a file, if any.
func ListFiles(ctx context.Context, d *db.DB, direction, kind string, fn func(f File, msg string) error) error {
	q := `SELECT id, direction, kind, name, path, sha256, size, records, rejected, status, mode, coalesce(run_id, 0), created_at, error
FROM files WHERE 1=1`
	var args []any
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
