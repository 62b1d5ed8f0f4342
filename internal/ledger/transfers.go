package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/posbridge/posbridge/internal/db"
)

// Transfer statuses.
const (
	TransferStarted = "started"
	TransferDone    = "done"
	TransferFailed  = "failed"
	TransferSkipped = "skipped"
)

// Stages of a transfer attempt, recorded before each step a kill could
// leave half known, so the next run can finish the attempt instead of
// guessing (docs/transfers.md, "Recovery after a kill").
const (
	// StageTemp: nothing of the attempt is pending: what is under the
	// temporary name may be partial and is replaced by the next attempt.
	StageTemp = "temp"
	// StageRename: the temporary file is complete (its size checked, its
	// sha256 recorded) and its rename to the final name is asked for.
	// Until the row is done, whether the rename happened is unknown.
	StageRename = "rename"
)

// Transfer is one row of the transfer ledger: a file pushed to or pulled
// from a site. MTime is the remote file's modification time for a pull and
// the local one for a push, in RFC 3339 with nanoseconds.
type Transfer struct {
	ID         int64  `json:"id"`
	Site       string `json:"site"`
	Direction  string `json:"direction"`
	LocalPath  string `json:"local_path"`
	RemotePath string `json:"remote_path"`
	Size       int64  `json:"size"`
	MTime      string `json:"mtime"`
	SHA256     string `json:"sha256"`
	Status     string `json:"status"`
	Attempts   int    `json:"attempts"`
	Error      string `json:"error"`
	// Stage and TempPath say how far the last attempt got and under
	// which temporary name (on the site for a push, local for a pull).
	Stage    string `json:"stage"`
	TempPath string `json:"temp_path"`
	// TempMTime is the time the complete temporary file had on the site
	// (a push, from StageRename on): a rename keeps it.
	TempMTime string `json:"temp_mtime,omitempty"`
	RunID     int64  `json:"run_id"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

// Writer is where the transfer ledger's writes go: a database, connection
// or transaction (On), or the transfer run's writer, which prepares each
// statement once and runs them on a connection of its own.
type Writer interface {
	db.Execer
	// InsertID runs an INSERT ... RETURNING id and returns the id.
	InsertID(ctx context.Context, query string, args ...any) (int64, error)
}

// On is q as a Writer.
func On(q db.Querier) Writer { return querier{q} }

type querier struct{ db.Querier }

func (q querier) InsertID(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, query, args...).Scan(&id)
	return id, err
}

// StartTransfer records a transfer as started and returns its id.
func StartTransfer(ctx context.Context, w Writer, t Transfer) (int64, error) {
	run := db.NullID(t.RunID)
	now := db.Now()
	id, err := w.InsertID(ctx, `INSERT INTO transfers(site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error, stage, temp_path, temp_mtime, run_id, created_at, updated_at)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING id`, t.Site, t.Direction, t.LocalPath, t.RemotePath, t.Size, t.MTime, t.SHA256, TransferStarted, 1, "",
		t.Stage, t.TempPath, t.TempMTime, run, now, now)
	if err != nil {
		return 0, fmt.Errorf("record transfer of %q: %w", t.RemotePath, db.Classify(err))
	}
	return id, nil
}

// EndTransfer records how a started transfer ended: status done with the
// size and checksum that moved, or failed with the error.
func EndTransfer(ctx context.Context, q db.Execer, id int64, status string, size int64, sum string, cause error) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	_, err := q.ExecContext(ctx, `UPDATE transfers SET status=?, size=?, sha256=?, error=?, updated_at=? WHERE id=?`,
		status, size, sum, msg, db.Now(), id)
	if err != nil {
		return fmt.Errorf("record end of transfer %d: %w", id, db.Classify(err))
	}
	return nil
}

// RestartTransfer starts row id again for a new attempt at the same
// remote path (one that a killed run left started, or that failed): status
// started, one attempt more, and t's local path, size, mtime, checksum,
// stage, temporary name and run. The ledger keeps one row per file this way.
func RestartTransfer(ctx context.Context, q db.Execer, id int64, t Transfer) error {
	run := db.NullID(t.RunID)
	_, err := q.ExecContext(ctx, `UPDATE transfers SET status=?, attempts=attempts+1, error='', local_path=?, size=?, mtime=?, sha256=?,
 stage=?, temp_path=?, temp_mtime=?, run_id=coalesce(?, run_id), updated_at=? WHERE id=?`,
		TransferStarted, t.LocalPath, t.Size, t.MTime, t.SHA256, t.Stage, t.TempPath, t.TempMTime, run, db.Now(), id)
	if err != nil {
		return fmt.Errorf("record transfer of %q: %w", t.RemotePath, db.Classify(err))
	}
	return nil
}

// StageTransfer records that an attempt reached stage, with the sha256 of
// its bytes and the time of its complete temporary file (known from
// StageRename on).
func StageTransfer(ctx context.Context, q db.Execer, id int64, stage, sum, tempMTime string) error {
	_, err := q.ExecContext(ctx, `UPDATE transfers SET stage=?, sha256=?, temp_mtime=?, updated_at=? WHERE id=?`, stage, sum, tempMTime, db.Now(), id)
	if err != nil {
		return fmt.Errorf("record transfer %d: %w", id, db.Classify(err))
	}
	return nil
}

// lastTransferSQL is LastTransfer's query for each direction. The
// direction is written into the SQL, not bound: with a bound direction
// SQLite prepares the statement again at every run, to decide whether the
// partial index transfers_pulled_once (direction = 'pull') may serve it,
// which was half the query's cost in a run of many small files.
var lastTransferSQL = map[string]string{}

func init() {
	for _, dir := range []string{"push", "pull"} {
		lastTransferSQL[dir] = `SELECT id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error,
 stage, temp_path, temp_mtime, coalesce(run_id, 0), created_at, updated_at
FROM transfers WHERE site = ? AND remote_path = ? AND direction = '` + dir + `' ORDER BY id DESC LIMIT 1`
	}
}

// LastTransfer returns the newest row of a remote path of a site in one
// direction, and whether there is one.
func LastTransfer(ctx context.Context, q db.Querier, site, direction, remotePath string) (Transfer, bool, error) {
	var t Transfer
	query, ok := lastTransferSQL[direction]
	if !ok {
		return Transfer{}, false, fmt.Errorf("read transfer ledger: no direction %q", direction)
	}
	err := q.QueryRowContext(ctx, query, site, remotePath).Scan(
		&t.ID, &t.Site, &t.Direction, &t.LocalPath, &t.RemotePath, &t.Size, &t.MTime, &t.SHA256, &t.Status, &t.Attempts, &t.Error,
		&t.Stage, &t.TempPath, &t.TempMTime, &t.RunID, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return Transfer{}, false, nil
	}
	if err != nil {
		return Transfer{}, false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
	}
	return t, true, nil
}

// Fetched says whether a remote file with this path, size and mtime was
// already pulled from the site.
func Fetched(ctx context.Context, q db.Querier, site, remotePath string, size int64, mtime string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM transfers
WHERE site = ? AND remote_path = ? AND size = ? AND mtime = ? AND status = 'done' AND direction = 'pull'`,
		site, remotePath, size, mtime).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
	}
	return n > 0, nil
}

// PushedWhole says whether the file at local with this sha256 has a done
// push row for the site already (for any site when site is ""): a run
// killed between that row and moving the file to sent/ leaves the file for
// the next run, which moves it without a second row; an export file that
// a dead host put into place and pushed was delivered.
func PushedWhole(ctx context.Context, q db.Querier, site, local, sum string) (bool, error) {
	var done bool
	err := q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM transfers
WHERE (?1 = '' OR site = ?1) AND direction = 'push' AND local_path = ?2 AND sha256 = ?3 AND status = 'done')`, site, local, sum).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
	}
	return done, nil
}

// recentPulls is how far back PulledWhole looks, in transfers: a file
// that young (import.min_age, seconds) was pulled among the last few.
const recentPulls = 1000

// PulledWhole says whether the file at path (info is its os.Stat) is the
// one a recent pull wrote: a pull renames a file into place only once it
// is complete and synced, so an import need not wait for it to settle
// (import.min_age) as for a file a partner drops. The same size and the
// same file on disk as the pull's local path, among the last recentPulls
// transfers; a file changed since has another size or is another file,
// and waits like any other.
func PulledWhole(ctx context.Context, q db.Querier, path string, info os.FileInfo) (bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT local_path FROM (SELECT local_path, direction, status, size FROM transfers ORDER BY id DESC LIMIT ?) AS recent
WHERE direction = 'pull' AND status = 'done' AND size = ?`, recentPulls, info.Size())
	if err != nil {
		return false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var local string
		if err := rows.Scan(&local); err != nil {
			return false, fmt.Errorf("read transfer ledger: %w", db.Classify(err))
		}
		if filepath.Base(local) != info.Name() {
			continue
		}
		if st, err := os.Stat(local); err == nil && os.SameFile(st, info) {
			return true, nil
		}
	}
	return false, rows.Err()
}

// TransferFilter selects rows of the transfer ledger; zero fields select all.
type TransferFilter struct {
	Site, Status string
	RunID        int64
}

// ListTransfers streams the transfer ledger in id order to fn, optionally
// only one site, status or run.
func ListTransfers(ctx context.Context, d *db.DB, f TransferFilter, fn func(t Transfer) error) error {
	site, status := f.Site, f.Status
	q := `SELECT id, site, direction, local_path, remote_path, size, mtime, sha256, status, attempts, error, stage, temp_path, temp_mtime, coalesce(run_id, 0), created_at, updated_at
FROM transfers WHERE 1=1`
	var args []any
	if f.RunID > 0 {
		q += ` AND run_id = ?`
		args = append(args, f.RunID)
	}
	if site != "" {
		q += ` AND site = ?`
		args = append(args, site)
	}
	if status != "" {
		q += ` AND status = ?`
		args = append(args, status)
	}
	rows, err := d.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return fmt.Errorf("list transfers: %w", db.Classify(err))
	}
	defer rows.Close()
	for rows.Next() {
		var t Transfer
		if err := rows.Scan(&t.ID, &t.Site, &t.Direction, &t.LocalPath, &t.RemotePath, &t.Size, &t.MTime, &t.SHA256, &t.Status,
			&t.Attempts, &t.Error, &t.Stage, &t.TempPath, &t.TempMTime, &t.RunID, &t.CreatedAt, &t.UpdatedAt); err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	return rows.Err()
}

// SiteHealth is the latest transfer of a site and the failures since the
// last one that worked.
type SiteHealth struct {
	Site       string `json:"site"`
	Last       string `json:"last_transfer"`
	LastStatus string `json:"last_status"`
	// FailedInRow counts the failed transfers since the last done one.
	FailedInRow int64  `json:"failed_in_row"`
	LastError   string `json:"last_error,omitempty"`
}

// SitesHealth returns the health of every site with transfers, by name.
func SitesHealth(ctx context.Context, d *db.DB) ([]SiteHealth, error) {
	sites, err := db.QueryAll(ctx, d, func(sc db.Scanner) (SiteHealth, error) {
		var s SiteHealth
		return s, sc.Scan(&s.Site, &s.Last, &s.LastStatus, &s.LastError, &s.FailedInRow)
	}, `SELECT t.site, t.updated_at, t.status, t.error,
 (SELECT count(*) FROM transfers f WHERE f.site = t.site AND f.status = 'failed'
    AND f.id > coalesce((SELECT max(id) FROM transfers s WHERE s.site = t.site AND s.status = 'done'), 0))
FROM transfers t WHERE t.id IN (SELECT max(id) FROM transfers WHERE status <> 'skipped' GROUP BY site) ORDER BY t.site`)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return sites, nil
}
