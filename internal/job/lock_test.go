package job

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Locks across hosts sharing one PostgreSQL database. These tests start
// their own PostgreSQL database whatever backend the suite runs on.

// skewHost sets this host's clock off by skew for the test.
func skewHost(t *testing.T, skew time.Duration) {
	old := hostClock
	hostClock = func() time.Time { return time.Now().Add(skew) }
	t.Cleanup(func() { hostClock = old })
}

func expiresAt(t *testing.T, d *db.DB, name string) time.Time {
	t.Helper()
	var s string
	if err := d.QueryRowContext(context.Background(), `SELECT expires_at FROM locks WHERE name = ?`, name).Scan(&s); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(db.TimeLayout, s)
	if err != nil {
		t.Fatal(err)
	}
	return exp
}

// On PostgreSQL a lease is measured by the database's clock: a host whose
// clock runs an hour ahead neither sets leases an hour too long nor takes
// over a lock another host renewed a minute ago.
func TestLeaseUsesDatabaseClock(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	skewHost(t, time.Hour)

	run, _, err := acquire(ctx, d, "j1", []string{"job:j1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if exp := expiresAt(t, d, "job:j1"); exp.After(time.Now().Add(time.Minute+5*time.Second)) || exp.Before(time.Now().Add(55*time.Second)) {
		t.Errorf("lease taken with the host's clock an hour ahead expires at %s, want a minute from the database's now (%s)",
			exp.Format(db.TimeLayout), time.Now().UTC().Format(db.TimeLayout))
	}
	if _, err := renewOnce(ctx, d, run, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	if exp := expiresAt(t, d, "job:j1"); exp.After(time.Now().Add(2*time.Minute+5*time.Second)) || exp.Before(time.Now().Add(115*time.Second)) {
		t.Errorf("renewed lease expires at %s, want two minutes from the database's now", exp.Format(db.TimeLayout))
	}

	// Another host's lock, valid for half an hour by the database's clock.
	hold(t, d, holder{job: "j2", host: "elsewhere.invalid", pid: 4242, expires: time.Now().Add(30 * time.Minute), locks: []string{"job:j2"}})
	if _, _, err := acquire(ctx, d, "j2", []string{"job:j2"}, time.Minute); !errors.Is(err, ErrBusy) {
		t.Errorf("acquire of a lease valid by the database's clock (this host an hour ahead): %v, want ErrBusy", err)
	}
}

// On SQLite the database is on this host, and its clock is the host's.
func TestLeaseUsesHostClockOnSQLite(t *testing.T) {
	if dbtest.Postgres() {
		t.Skip("SQLite only")
	}
	d := openDB(t)
	skewHost(t, time.Hour)
	if _, _, err := acquire(context.Background(), d, "j1", []string{"job:j1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if exp := expiresAt(t, d, "job:j1"); exp.Before(time.Now().Add(time.Hour)) {
		t.Errorf("lease expires at %s, want a minute from the host's clock, an hour ahead", exp.Format(db.TimeLayout))
	}
}

// Two hosts inserting the same lock at once: the one that inserts second
// waits for the first to commit, and then finds the lock busy, naming its
// holder, instead of failing on the unique key.
func TestAcquireRaceLoserIsBusy(t *testing.T) {
	ctx := context.Background()
	d := dbtest.OpenPostgres(t)
	// The other host, in the middle of its acquire: the lock row
	// inserted, not committed yet.
	other, err := d.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	pid := os.Getpid()
	if _, err := other.ExecContext(ctx, `INSERT INTO locks(name, job, host, pid, pid_start, acquired_at, expires_at) VALUES (?,?,?,?,?,?,?)`,
		"job:j1", "j1", ledger.Hostname(), pid, ledger.ProcessStart(pid), db.Now(), time.Now().UTC().Add(time.Hour).Format(db.TimeLayout)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := acquire(ctx, d, "j1", []string{"job:j1"}, time.Minute)
		done <- err
	}()
	// acquire has looked (no committed lock) and waits on the key.
	if dbtest.LockWaiters(t, d, 1) == 0 {
		t.Fatal("acquire never waited on the other host's insert")
	}
	if _, err := other.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, ErrBusy) || db.IsConstraint(err) {
		t.Fatalf("the second insert of a lock: %v, want ErrBusy", err)
	}
	if !strings.Contains(err.Error(), "job j1 is held by another run: run 0 of job j1 (pid ") {
		t.Errorf("busy error %q should name the holder", err)
	}
	if n := count(t, d, `SELECT count(*) FROM runs`); n != 0 {
		t.Errorf("the loser left %d runs", n)
	}
}

// A folder lock names its host: the same path on another host is another
// folder, and another lock.
func TestFolderLockPerHost(t *testing.T) {
	if got, want := FolderLock("/srv/inbox/"), "folder:"+ledger.Hostname()+":/srv/inbox"; got != want {
		t.Errorf("FolderLock = %q, want %q", got, want)
	}
	ctx := context.Background()
	d := dbtest.Open(t)
	hold(t, d, holder{job: "pickup", host: "elsewhere.invalid", pid: 4242, expires: time.Now().Add(time.Hour),
		locks: []string{"folder:elsewhere.invalid:/srv/inbox"}})
	if _, _, err := acquire(ctx, d, "pickup", []string{FolderLock("/srv/inbox")}, time.Minute); err != nil {
		t.Errorf("acquire of /srv/inbox here while another host holds its own /srv/inbox: %v", err)
	}
	if _, _, err := acquire(ctx, d, "again", []string{FolderLock("/srv/inbox")}, time.Minute); !errors.Is(err, ErrBusy) {
		t.Errorf("acquire of /srv/inbox held on this host: %v, want ErrBusy", err)
	}
}
