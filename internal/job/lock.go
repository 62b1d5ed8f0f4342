package job

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// ErrBusy means another run holds a lock the job needs; try again later
// (the CLI exits 75).
var ErrBusy = errors.New("held by another run")

// ErrLockLost means a run's locks were taken over while it ran: its
// renewals had not reached the database for locks.ttl, and another run
// judged it dead. It stops rather than run beside that run (the CLI
// exits 75: the other run does the work).
var ErrLockLost error = lockLost{}

type lockLost struct{}

func (lockLost) Error() string        { return "its locks were taken over by another run" }
func (lockLost) Is(target error) bool { return target == ErrBusy }

// Lock names. The command of a step declares the data it touches with
// these (Command.Locks): two runs that need one lock never run at once.

// KindLock is the lock of the data of one kind a command writes
// (export:items, load:items, import:stores): two exports of one kind claim
// the same triggers, two loads or imports of one kind the same rows.
func KindLock(command, kind string) string { return command + ":" + kind }

// SiteLock is the lock of a site a step transfers files with.
func SiteLock(site string) string { return "site:" + site }

// TriggersLock is the lock of the steps that generate or purge triggers.
const TriggersLock = "triggers"

// FolderLock is the lock of a local folder a step reads or fills, by this
// host's name and the folder's absolute path (folder:HOST:/abs/path): the
// same path on two hosts that share a database is two folders.
func FolderLock(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return "folder:" + ledger.Hostname() + ":" + filepath.Clean(dir)
}

// PathLock is the lock of the folder of path: path itself when it is a
// folder (or does not exist yet), else the folder the file is in, so that
// two steps reading files of one folder do not run at once.
func PathLock(path string) string {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		path = filepath.Dir(path)
	}
	return FolderLock(path)
}

// Lock is one held lock.
type Lock struct {
	Name       string `json:"name"`
	Job        string `json:"job"`
	RunID      int64  `json:"run_id"`
	Host       string `json:"host"`
	PID        int    `json:"pid"`
	PIDStart   string `json:"-"`
	AcquiredAt string `json:"acquired_at"`
	ExpiresAt  string `json:"expires_at"`
}

func (l Lock) holder() string {
	return fmt.Sprintf("run %d of job %s (pid %d on %s, since %s)", l.RunID, l.Job, l.PID, l.Host, l.AcquiredAt)
}

// Takeover is a lock taken from a run that can no longer hold it.
type Takeover struct {
	Lock   Lock   `json:"lock"`
	Reason string `json:"reason"`
}

const lockColumns = `name, job, coalesce(run_id, 0), host, pid, pid_start, acquired_at, expires_at`

func scanLock(sc db.Scanner) (Lock, error) {
	var l Lock
	err := sc.Scan(&l.Name, &l.Job, &l.RunID, &l.Host, &l.PID, &l.PIDStart, &l.AcquiredAt, &l.ExpiresAt)
	return l, err
}

// Locks lists the locks held now.
func Locks(ctx context.Context, d *db.DB) ([]Lock, error) {
	locks, err := db.QueryAll(ctx, d, scanLock, `SELECT `+lockColumns+` FROM locks ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list locks: %w", err)
	}
	return locks, nil
}

// Stale says why the holder of l can no longer hold it (its process is
// gone, or the lock expired on another host), or "" when it may: the
// next run takes such a lock over.
func (l Lock) Stale(now time.Time) string { return stale(l, now) }

// stale says why the holder of l can no longer hold it, or "" when it may.
func stale(l Lock, now time.Time) string {
	alive, known := ledger.Alive(l.Host, l.PID, l.PIDStart)
	if known && !alive {
		return fmt.Sprintf("process %d on this host is gone", l.PID)
	}
	if known {
		return ""
	}
	exp, err := time.Parse(db.TimeLayout, l.ExpiresAt)
	if err == nil && now.After(exp) {
		return fmt.Sprintf("the lock expired at %s: its holder on %s stopped renewing it", l.ExpiresAt, l.Host)
	}
	return ""
}

// errRaced means another run inserted one of the locks between this
// run's look and its insert (hosts sharing a PostgreSQL database; SQLite
// has one writer at a time): the lock is busy, and a second look names
// its holder.
var errRaced = fmt.Errorf("%w: another run took it at the same moment", ErrBusy)

// acquire takes every lock in names for a new run of job, or none: in
// one transaction it takes over the locks of dead or expired holders
// (failing their runs), records the run, and inserts the locks. A lock
// held by a live run fails it with ErrBusy naming the holder.
func acquire(ctx context.Context, d *db.DB, job string, names []string, ttl time.Duration) (int64, []Takeover, error) {
	id, t, err := acquireOnce(ctx, d, job, names, ttl)
	if errors.Is(err, errRaced) {
		// The winner has committed: this look finds it.
		id, t, err = acquireOnce(ctx, d, job, names, ttl)
	}
	return id, t, err
}

// hostClock is this host's clock; a test sets it off the database's, as
// a host whose clock drifted.
var hostClock = time.Now

// leaseNow is the time a lease counts from: the database's clock on
// PostgreSQL, which every host sharing it reads alike (hosts' clocks
// drift), this host's on SQLite, whose database is on this host. In a
// transaction PostgreSQL's now() is the time the transaction began.
func leaseNow(ctx context.Context, conn *sql.Conn) (time.Time, error) {
	if db.DialectOf(conn) != db.Postgres {
		return hostClock().UTC(), nil
	}
	var now time.Time
	if err := conn.QueryRowContext(ctx, `SELECT now()`).Scan(&now); err != nil {
		return now, fmt.Errorf("read the database's clock: %w", db.Classify(err))
	}
	return now.UTC(), nil
}

// LeaseNow is the time the locks' leases are judged at (Lock.Stale), as
// the locks themselves judge them: the database's clock on PostgreSQL,
// this host's on SQLite.
func LeaseNow(ctx context.Context, d *db.DB) (time.Time, error) {
	conn, err := d.Conn(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the database's clock: %w", db.Classify(err))
	}
	defer conn.Close()
	return leaseNow(ctx, conn)
}

// acquireOnce is one attempt of acquire.
func acquireOnce(ctx context.Context, d *db.DB, job string, names []string, ttl time.Duration) (int64, []Takeover, error) {
	var runID int64
	var takeovers []Takeover
	err := d.Tx(ctx, true, func(conn *sql.Conn) error {
		runID, takeovers = 0, nil
		now, err := leaseNow(ctx, conn)
		if err != nil {
			return err
		}
		// On PostgreSQL each lock's row stays locked from this look to the
		// commit: a renewal or another host's takeover committed in
		// between would else be undone by the takeover's DELETE, which
		// finds the row by its name whoever holds it by then (two runs
		// holding one lock). The look waits for them instead and judges
		// the lease they left; a row they deleted is no lock, and the
		// insert then meets theirs (errRaced).
		look := `SELECT ` + lockColumns + ` FROM locks WHERE name = ?` + db.ForUpdate(conn)
		for _, name := range names {
			l, err := scanLock(conn.QueryRowContext(ctx, look, name))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("read lock %s: %w", name, db.Classify(err))
			}
			reason := stale(l, now)
			if reason == "" {
				what := "job " + job
				if name != "job:"+job {
					what += ": " + name
				}
				return fmt.Errorf("%s is %w: %s", what, ErrBusy, l.holder())
			}
			takeovers = append(takeovers, Takeover{Lock: l, Reason: reason})
		}
		// Every lock of a stale holder goes, not only the ones this run
		// needs: its run is over.
		for _, t := range takeovers {
			if _, err := conn.ExecContext(ctx, `DELETE FROM locks WHERE name = ? OR (run_id = ? AND run_id > 0)`, t.Lock.Name, t.Lock.RunID); err != nil {
				return fmt.Errorf("take over lock %s: %w", t.Lock.Name, db.Classify(err))
			}
			if t.Lock.RunID > 0 {
				if err := ledger.FailRun(ctx, conn, t.Lock.RunID, "lock taken over: "+t.Reason); err != nil {
					return err
				}
				// Its steps, and the steps of the jobs it runs, at any depth.
				if _, err := conn.ExecContext(ctx, `WITH RECURSIVE below(id) AS (
  SELECT id FROM runs WHERE parent_id = ?
  UNION SELECT r.id FROM runs r JOIN below b ON r.parent_id = b.id)
UPDATE runs SET status = 'failed', ended_at = ?, error = ? WHERE id IN (SELECT id FROM below) AND status = 'running'`,
					t.Lock.RunID, db.Now(), "lock of its job taken over: "+t.Reason); err != nil {
					return fmt.Errorf("fail steps of run %d: %w", t.Lock.RunID, db.Classify(err))
				}
			}
		}
		if runID, err = ledger.InsertRun(ctx, conn, ledger.Run{Command: "run " + job, Job: job}); err != nil {
			return err
		}
		host, pid := ledger.Hostname(), os.Getpid()
		start, expires := now.Format(db.TimeLayout), now.Add(ttl).Format(db.TimeLayout)
		for _, name := range names {
			_, err := conn.ExecContext(ctx, `INSERT INTO locks(name, job, run_id, host, pid, pid_start, acquired_at, expires_at) VALUES (?,?,?,?,?,?,?,?)`,
				name, job, runID, host, pid, ledger.ProcessStart(pid), start, expires)
			if db.IsUniqueViolation(err) {
				return fmt.Errorf("job %s: %s is %w", job, name, errRaced)
			}
			if err != nil {
				return fmt.Errorf("take lock %s: %w", name, db.Classify(err))
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, err
	}
	return runID, takeovers, nil
}

// acquireWait is acquire, trying again until wait has passed while the
// locks are busy.
func acquireWait(ctx context.Context, d *db.DB, job string, names []string, ttl, wait time.Duration) (int64, []Takeover, error) {
	deadline := time.Now().Add(wait)
	for {
		id, t, err := acquire(ctx, d, job, names, ttl)
		if !errors.Is(err, ErrBusy) && !errors.Is(err, db.ErrBusy) {
			return id, t, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			if wait > 0 {
				return 0, nil, fmt.Errorf("%w (waited %s)", err, wait)
			}
			return 0, nil, err
		}
		pause := min(500*time.Millisecond, left)
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// renew keeps the locks of run, named names, alive until ctx ends. When
// fewer of them are left to renew than it holds, another run has taken
// them over: renew calls lost with ErrLockLost, saying who holds them
// now, and ends.
func renew(ctx context.Context, d *db.DB, run int64, names []string, ttl time.Duration, lost func(error)) {
	t := time.NewTicker(max(ttl/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// A busy database only delays the renewal; the next tick tries
			// again, well before the lock expires.
			n, err := renewOnce(ctx, d, run, ttl)
			if err != nil || n >= int64(len(names)) {
				continue
			}
			held, err := db.QueryAll(ctx, d, scanLock, `SELECT `+lockColumns+` FROM locks WHERE run_id <> ? ORDER BY name`, run)
			var holders []string
			taken := map[string][]string{}
			for _, l := range held {
				if h := l.holder(); slices.Contains(names, l.Name) {
					if taken[h] == nil {
						holders = append(holders, h)
					}
					taken[h] = append(taken[h], l.Name)
				}
			}
			var by []string
			for _, h := range holders {
				by = append(by, strings.Join(taken[h], ", ")+" by "+h)
			}
			switch {
			case err != nil:
				by = append(by, "who holds them could not be read: "+db.Classify(err).Error())
			case len(by) == 0:
				by = append(by, "the run that took them has let them go")
			}
			lost(fmt.Errorf("run %d stopped: %w, not renewed for locks.ttl (%s) and judged dead: %s", run, ErrLockLost, ttl, strings.Join(by, "; ")))
			return
		}
	}
}

// renewOnce moves the expiry of run's locks to ttl from now (leaseNow),
// and says how many it still held.
func renewOnce(ctx context.Context, d *db.DB, run int64, ttl time.Duration) (n int64, err error) {
	err = d.Tx(ctx, true, func(conn *sql.Conn) error {
		now, err := leaseNow(ctx, conn)
		if err != nil {
			return err
		}
		res, err := conn.ExecContext(ctx, `UPDATE locks SET expires_at = ? WHERE run_id = ?`, now.Add(ttl).Format(db.TimeLayout), run)
		if err != nil {
			return db.Classify(err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// release drops the locks of run.
func release(ctx context.Context, d *db.DB, run int64) error {
	if _, err := d.ExecContext(ctx, `DELETE FROM locks WHERE run_id = ?`, run); err != nil {
		return fmt.Errorf("release locks of run %d: %w", run, db.Classify(err))
	}
	return nil
}

// describeLocks is the list of lock names for a message.
func describeLocks(names []string) string { return strings.Join(names, ", ") }
