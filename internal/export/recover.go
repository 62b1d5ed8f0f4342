package export

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// ErrElsewhere means a run found a file of its kind that a run of another
// host wrote and did not finish, and that is not in this host's outbox
// (an outbox per host): only that host can put it into place. The kind
// stops until then, writing nothing: a later file would carry newer
// changes of its records ahead of it, and its sequence number would
// arrive out of order. That host's next run of the kind finishes it, or
// the operator gives the host up (LostHost).
var ErrElsewhere = errors.New("not finished and not in this host's outbox")

// recoverFiles finishes or abandons the files of a kind that a dead run
// left behind, as o allows (LostHost).
//
// The caller holds the kind's lock, the lock file and, on PostgreSQL, a
// session advisory lock that holds across the hosts (lockAcrossHosts). So
// no run of the kind is alive, on any host: a run that held the lock has
// ended or lost its session, and a run writes every status of its files
// through that one session, which does not come back. A file still
// "writing" can then never be recorded written, whoever wrote it, even
// when its host is alive but slow (its temporary file is never renamed:
// deliver records the file written first): abandoning it gives its
// records back to be sent once. A file recorded "written" was delivered,
// or is about to be by a rename only its writer's folder can do:
// finished here when this host sees it (the outbox shared) or wrote it
// (then a file gone from its place was taken away by a transfer).
// Another host's file that is not in sight here stops the kind
// (ErrElsewhere): that host may be alive, or dead with the file on its
// disk, and its records stay claimed by it until that host's next run of
// the kind finishes it, or the operator, giving the host up, has it
// undone (LostHost).
func recoverFiles(ctx context.Context, conn *sql.Conn, kind string, o *Options, res *Result) error {
	todo, err := leftBehind(ctx, conn, kind)
	if err != nil {
		return err
	}
	for _, l := range todo {
		finish, cause, err := decide(ctx, conn, kind, o, l)
		if err != nil {
			return err
		}
		if !finish {
			if err := abandon(conn, l.id, l.path, cause); err != nil {
				return err
			}
			res.Abandoned++
			continue
		}
		if _, err := os.Stat(tmpPath(l.path)); err == nil {
			// Finished and synced, but not renamed yet.
			if err := os.Rename(tmpPath(l.path), l.path); err != nil {
				return fmt.Errorf("recover %s: %w", l.path, err)
			}
		}
		if err := complete(ctx, conn, l.id, l.path, l.sum, l.records, l.marker); err != nil {
			return err
		}
		res.Completed++
	}
	return nil
}

// leftBehind lists the files of kind that a dead run left unfinished, in
// the order they were written.
func leftBehind(ctx context.Context, conn *sql.Conn, kind string) ([]left, error) {
	rows, err := conn.QueryContext(ctx, `SELECT f.id, f.name, f.path, f.status, f.sha256, f.records, f.marker, coalesce(r.host, '')
FROM files f LEFT JOIN runs r ON r.id = f.run_id
WHERE f.direction = 'out' AND f.kind = ? AND f.status IN (?, ?) ORDER BY f.id`, kind, fileWriting, fileWritten)
	if err != nil {
		return nil, fmt.Errorf("recover %s exports: %w", kind, db.Classify(err))
	}
	defer rows.Close()
	var todo []left
	for rows.Next() {
		var l left
		if err := rows.Scan(&l.id, &l.name, &l.path, &l.status, &l.sum, &l.records, &l.marker, &l.host); err != nil {
			return nil, err
		}
		todo = append(todo, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recover %s exports: %w", kind, db.Classify(err))
	}
	return todo, nil
}

// decide says what recoverFiles does with the file l of kind, changing
// nothing: finish it (it was delivered, or is about to be by a rename), or
// undo it for cause; an error (ErrElsewhere) stops the kind. A dry run asks
// it too, so that it says what the real run will do.
func decide(ctx context.Context, conn *sql.Conn, kind string, o *Options, l left) (finish bool, cause, err error) {
	// A SQLite file is the state of one host, whatever it was called when
	// it wrote the file: a container gets a new host name on each start.
	// A file of no recorded run is taken for this host's: runs are
	// recorded by every command that exports.
	mine := db.DialectOf(conn) == db.SQLite || l.host == "" || l.host == ledger.Hostname()
	_, tmpErr := os.Stat(tmpPath(l.path))
	_, finalErr := os.Stat(l.path)
	switch {
	case l.status == fileWriting:
		return false, errors.New("the run that wrote it died before it was finished"), nil
	case tmpErr == nil:
		// Finished and synced, but not renamed yet.
		return true, nil, nil
	case finalErr == nil || mine:
		// Renamed: under its final name, or already taken away by a
		// transfer. Either way it was delivered; sending its records
		// again would deliver them twice.
		return true, nil, nil
	case pushed(ctx, conn, l):
		// Put into place and pushed by its host before it died (the
		// ledger of transfers is shared): delivered. Waiting for a host
		// that may never come back under its name (a container), or
		// giving it up, would send its records twice.
		return true, nil, nil
	case l.host == o.LostHost:
		return false, fmt.Errorf("written on host %s, given up by the operator", l.host), nil
	}
	return false, nil, fmt.Errorf("export %s: %s, written by a run on host %s that died, is %w: %s's next run of this export finishes it; if %s will not come back, run this export with --lost-host %s, which undoes the file and sends its records again",
		kind, l.name, l.host, ErrElsewhere, l.host, l.host, l.host)
}

// left is an export file a dead run left unfinished.
type left struct {
	id      int64
	name    string
	path    string
	status  string
	sum     string
	records int64
	marker  bool
	host    string // "" for a file of no recorded run
}

// pushed says whether a push of the export file of l, with its content,
// is recorded done, to any site. A ledger that cannot be read says no:
// the kind then waits, which loses nothing.
func pushed(ctx context.Context, conn *sql.Conn, l left) bool {
	done, err := ledger.PushedWhole(ctx, conn, "", l.path, l.sum)
	return err == nil && done
}
