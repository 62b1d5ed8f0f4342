package transfer

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/ledger"
)

// Parallel files write their ledger rows without opening connections:
// through the pool, each write beyond its two idle connections opened one
// (reading the schema, preparing the statement again) and closed it after.
func TestStmtsWritesKeepOneConnection(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	s := newStmts(d)
	before := d.Stats()
	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				tr := ledger.Transfer{Site: "s", Direction: "push", RemotePath: filepath.Join("d", string(rune('a'+g)), string(rune('a'+i)))}
				id, err := ledger.StartTransfer(ctx, s, tr)
				if err == nil {
					err = ledger.EndTransfer(ctx, s, id, ledger.TransferDone, 1, "x", nil)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if closed := d.Stats().MaxIdleClosed - before.MaxIdleClosed; closed != 0 {
		t.Errorf("%d connections opened and closed again for 800 writes", closed)
	}
	var n int
	if err := d.QueryRowContext(ctx, `SELECT count(*) FROM transfers WHERE status = 'done'`).Scan(&n); err != nil || n != 400 {
		t.Errorf("%d done transfers (%v), want 400", n, err)
	}
}

// A worker holds a file's done row until its next write, which commits
// both; what follows the held row runs only once it is committed, and a
// held write that fails is the held file's failure, not the next one's.
func TestWorkerHoldsTheDoneRowUntilItsNextWrite(t *testing.T) {
	ctx := context.Background()
	d, s := openStmts(t)
	w := &worker{stmts: s}
	status := func(id int64) string { return column(t, d, "status", id) }
	start := func(name string) int64 {
		id, err := ledger.StartTransfer(ctx, w, ledger.Transfer{Site: "s", Direction: "push", RemotePath: name, Stage: ledger.StageRename})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	done := func(id int64) func(context.Context, ledger.Writer) error {
		return func(ctx context.Context, lw ledger.Writer) error {
			return ledger.EndTransfer(ctx, lw, id, ledger.TransferDone, 1, "x", nil)
		}
	}

	a := start("a")
	var aThen []string // a's row as then saw it, and its error
	w.hold(ctx, done(a), func(err error) { aThen = append(aThen, status(a), fmt.Sprint(err)) })
	if got := status(a); got != ledger.TransferStarted || aThen != nil {
		t.Fatalf("held: a is %s and then ran (%v) before the next write", got, aThen)
	}
	b := start("b")
	if want := []string{ledger.TransferDone, "<nil>"}; !slices.Equal(aThen, want) {
		t.Errorf("then of a after b's write saw %v, want %v", aThen, want)
	}

	// A held write that fails: b's then has its error, c's write stands.
	var bErr error
	w.hold(ctx, func(ctx context.Context, lw ledger.Writer) error {
		_, err := lw.ExecContext(ctx, `UPDATE no_such_table SET x = 1`)
		return err
	}, func(err error) { bErr = err })
	c := start("c")
	if bErr == nil || status(c) != ledger.TransferStarted || status(b) != ledger.TransferStarted {
		t.Errorf("failed held write: then got %v, c is %s, b is %s", bErr, status(c), status(b))
	}

	// The worker's end commits what it holds, even when the run was
	// interrupted since: the file is sent.
	cDone := false
	cctx, cancel := context.WithCancel(ctx)
	w.hold(cctx, done(c), func(err error) { cDone = err == nil })
	cancel()
	w.finish()
	if !cDone || status(c) != ledger.TransferDone {
		t.Errorf("after finish: then ran %v, c is %s", cDone, status(c))
	}
}

// The rows read ahead answer for their paths; a path given twice is read
// when asked, so its second file sees the row its first one wrote.
func TestReadAheadLeavesOutPathsGivenTwice(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t)
	s := newStmts(d)
	defer s.Close()
	row := func(remote string) int64 {
		id, err := ledger.StartTransfer(ctx, s, ledger.Transfer{Site: "s", Direction: "push", RemotePath: remote})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a := row("out/a")
	row("in/b") // another folder's file of the same name
	if err := s.readAhead(ctx, "s", "push", []string{"out/a", "out/b", "out/c", "out/c"}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := s.lastTransfer(ctx, "s", "push", "out/a"); err != nil || !found || got.ID != a {
		t.Errorf("out/a: %+v %v %v, want row %d", got, found, err, a)
	}
	if _, found, err := s.lastTransfer(ctx, "s", "push", "out/b"); err != nil || found {
		t.Errorf("out/b: found %v (%v), want none", found, err)
	}
	c := row("out/c")
	if got, found, err := s.lastTransfer(ctx, "s", "push", "out/c"); err != nil || !found || got.ID != c {
		t.Errorf("out/c, given twice, after its first file's row: %+v %v %v, want row %d", got, found, err, c)
	}
}

// Only OpenSSH's own sftp server is trusted to refuse a rename over an
// existing file: not another server behind a name like it, not one
// without OpenSSH's limits extension, not Win32-OpenSSH.
func TestRenameRefuses(t *testing.T) {
	for _, c := range []struct {
		version string
		limits  bool
		want    bool
	}{
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", true, true},
		{"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3", false, false},
		{"SSH-2.0-OpenSSH_for_Windows_9.5", true, false},
		{"SSH-2.0-AWS_SFTP_1.1", true, false},
	} {
		if got := renameRefuses(c.version, c.limits); got != c.want {
			t.Errorf("renameRefuses(%q, %v) = %v, want %v", c.version, c.limits, got, c.want)
		}
	}
}
