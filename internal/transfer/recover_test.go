package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/posbridge/posbridge/internal/ledger"
	"github.com/posbridge/posbridge/internal/transfer"
)

// lostReply is a site whose renames happen but whose first n replies
// are lost, as when a connection drops right after the server renamed.
type lostReply struct {
	*transfer.Local
	n         *int
	reconnect bool
}

func (l lostReply) Rename(from, to string, overwrite bool) error {
	if err := l.Local.Rename(from, to, overwrite); err != nil || *l.n == 0 {
		return err
	}
	*l.n--
	return fmt.Errorf("rename %s: %w: reply lost", to, transfer.ErrUnreachable)
}

// reconnecting is lostReply with a Reconnect, so a run retries.
type reconnecting struct{ lostReply }

func (reconnecting) Reconnect() error { return nil }

// row is the one ledger row of a remote path.
func row(t *testing.T, e *env, direction, remote string) ledger.Transfer {
	t.Helper()
	var rows []ledger.Transfer
	err := ledger.ListTransfers(context.Background(), e.d, ledger.TransferFilter{Site: "s"}, func(tr ledger.Transfer) error {
		if tr.Direction == direction && tr.RemotePath == remote {
			rows = append(rows, tr)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 {
		t.Fatalf("ledger rows of %s %s: %+v, want one", direction, remote, rows)
	}
	return rows[0]
}

func (e *env) push(t *testing.T, site transfer.Site, files ...string) (*transfer.Result, error) {
	t.Helper()
	return transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", Files: files, To: "out", LockDir: e.locks})
}

// exec runs SQL on the ledger, to leave the state a kill leaves.
func (e *env) exec(t *testing.T, q string, args ...any) {
	t.Helper()
	if _, err := e.d.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// pushed pushes a fresh local file a.csv once and returns its path.
func pushed(t *testing.T, e *env, content string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "a.csv")
	if err := os.WriteFile(src, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := e.push(t, e.site, src); err != nil || res.Done != 1 {
		t.Fatalf("push: %v %s", err, statuses(res))
	}
	return src
}

// unsend puts a pushed file back where it was, with its time, as before
// the move to sent/.
func unsend(t *testing.T, src string) {
	t.Helper()
	if err := os.Rename(filepath.Join(filepath.Dir(src), "sent", filepath.Base(src)), src); err != nil {
		t.Fatal(err)
	}
}

// The rename reached the site but its reply was lost: the retry within
// the run finds the file there and finishes; one row, done.
func TestPushLostRenameReplyRetried(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(src, []byte("a,b\n"), 0o600)
	n := 1
	site := reconnecting{lostReply{e.site, &n, true}}
	res, err := transfer.Push(context.Background(), e.d, site, transfer.PushOptions{SiteName: "s", Files: []string{src}, To: "out",
		LockDir: e.locks, Retry: transfer.Retry{Retries: 2, Backoff: time.Millisecond}})
	if err != nil || res.Done != 1 {
		t.Fatalf("push: %v %s", err, statuses(res))
	}
	if got := statuses(res); !strings.Contains(got, "as far as the rename") {
		t.Errorf("reason: %s", got)
	}
	if r := row(t, e, "push", "out/a.csv"); r.Status != "done" || r.Attempts != 1 {
		t.Errorf("row %+v", r)
	}
	if !exists(filepath.Join(filepath.Dir(src), "sent", "a.csv")) || exists(filepath.Join(e.root, "out", ".a.csv.tmp")) {
		t.Errorf("not moved to sent/, or temp file left")
	}
}

// Without retries the run ends unreachable, the row keeps stage rename,
// and the next run finishes from the ledger alone.
func TestPushLostRenameReplyNextRun(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "a.csv")
	os.WriteFile(src, []byte("a,b\n"), 0o600)
	n := 1
	_, err := e.push(t, lostReply{e.site, &n, false}, src)
	if !errors.Is(err, transfer.ErrUnreachable) {
		t.Fatalf("push = %v, want unreachable", err)
	}
	if r := row(t, e, "push", "out/a.csv"); r.Status != "failed" || r.Stage != ledger.StageRename || r.SHA256 == "" {
		t.Errorf("row after the lost reply: %+v", r)
	}
	res, err := e.push(t, e.site, src)
	if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "as far as the rename") {
		t.Fatalf("next push: %v %s", err, statuses(res))
	}
	if r := row(t, e, "push", "out/a.csv"); r.Status != "done" || r.Attempts != 2 {
		t.Errorf("row %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(e.root, "out", "a.csv")); string(b) != "a,b\n" {
		t.Errorf("site file %q", b)
	}
}

// Each state a kill leaves in a push, and what the next push makes of it.
func TestPushRecoversKilledStates(t *testing.T) {
	site := func(e *env, name string) string { return filepath.Join(e.root, "out", name) }
	t.Run("after the rename, before the ledger", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "x\n")
		unsend(t, src)
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'rename'`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "the site had it already") {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if r := row(t, e, "push", "out/a.csv"); r.Status != "done" {
			t.Errorf("row %+v", r)
		}
		if exists(src) {
			t.Error("local file not moved to sent/")
		}
	})
	t.Run("after the ledger, before sent/", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "x\n")
		unsend(t, src)
		os.Remove(site(e, "a.csv")) // taken by the partner since
		res, err := e.push(t, e.site, src)
		if err != nil || res.Skip != 1 || !strings.Contains(statuses(res), "already pushed (transfer 1); moved to sent/") {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if exists(site(e, "a.csv")) || exists(src) {
			t.Error("sent again, or not moved to sent/")
		}
		row(t, e, "push", "out/a.csv")
	})
	t.Run("in the upload", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "whole file\n")
		unsend(t, src)
		os.Rename(site(e, "a.csv"), site(e, ".a.csv.tmp"))
		os.Truncate(site(e, ".a.csv.tmp"), 3)
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'temp', sha256 = ''`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 || statuses(res) != "a.csv:done:" {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if b, _ := os.ReadFile(site(e, "a.csv")); string(b) != "whole file\n" || exists(site(e, ".a.csv.tmp")) {
			t.Errorf("site: %q, temp left %v", b, exists(site(e, ".a.csv.tmp")))
		}
		if r := row(t, e, "push", "out/a.csv"); r.Status != "done" || r.Attempts != 2 {
			t.Errorf("row %+v", r)
		}
	})
	t.Run("before the rename", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "whole file\n")
		unsend(t, src)
		os.Rename(site(e, "a.csv"), site(e, ".a.csv.tmp"))
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'rename'`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "finished the rename") {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if b, _ := os.ReadFile(site(e, "a.csv")); string(b) != "whole file\n" || exists(site(e, ".a.csv.tmp")) {
			t.Errorf("site: %q", b)
		}
	})
	t.Run("between the link and unlink of a local rename", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "whole file\n")
		unsend(t, src)
		os.Link(site(e, "a.csv"), site(e, ".a.csv.tmp"))
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'rename'`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if exists(site(e, ".a.csv.tmp")) {
			t.Error("temp file left")
		}
	})
	t.Run("after the rename, the file taken since", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "x\n")
		unsend(t, src)
		os.Remove(site(e, "a.csv"))
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'rename'`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "taken from the site since") {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if exists(site(e, "a.csv")) {
			t.Error("sent twice")
		}
	})
	t.Run("a row of an older version, the same bytes there", func(t *testing.T) {
		e := newEnv(t)
		src := pushed(t, e, "x\n")
		unsend(t, src)
		e.exec(t, `UPDATE transfers SET status = 'started', stage = '', sha256 = ''`)
		res, err := e.push(t, e.site, src)
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "the site already had these bytes") {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if r := row(t, e, "push", "out/a.csv"); r.Status != "done" {
			t.Errorf("row %+v", r)
		}
	})
	t.Run("another file under the name", func(t *testing.T) {
		for _, stage := range []string{"rename", "temp", ""} {
			e := newEnv(t)
			src := pushed(t, e, "x\n")
			unsend(t, src)
			// The same size, so only the time or the bytes tell.
			os.WriteFile(site(e, "a.csv"), []byte("y\n"), 0o600)
			old := time.Now().Add(-time.Hour)
			os.Chtimes(site(e, "a.csv"), old, old)
			e.exec(t, `UPDATE transfers SET status = 'started', stage = ?`, stage)
			res, err := e.push(t, e.site, src)
			if err == nil || !strings.Contains(statuses(res), "exists on the site: not replaced without --overwrite") {
				t.Fatalf("stage %q: %v %s", stage, err, statuses(res))
			}
			if b, _ := os.ReadFile(site(e, "a.csv")); string(b) != "y\n" || exists(site(e, ".a.csv.tmp")) || !exists(src) {
				t.Errorf("stage %q: site %q, temp %v", stage, b, exists(site(e, ".a.csv.tmp")))
			}
			if r := row(t, e, "push", "out/a.csv"); r.Status != "failed" || r.Stage != ledger.StageTemp {
				t.Errorf("stage %q: row %+v", stage, r)
			}
			// Nothing pending: once the other file is gone, it is sent.
			os.Remove(site(e, "a.csv"))
			if res, err := e.push(t, e.site, src); err != nil || res.Done != 1 {
				t.Fatalf("stage %q: push after the clash: %v %s", stage, err, statuses(res))
			}
			if b, _ := os.ReadFile(site(e, "a.csv")); string(b) != "x\n" {
				t.Errorf("stage %q: site %q", stage, b)
			}
		}
	})
}

// Each state a kill leaves in a pull, and what the next pull makes of it.
func TestPullRecoversKilledStates(t *testing.T) {
	setup := func(t *testing.T) (*env, string) {
		e := newEnv(t)
		p := e.remote(t, "f.csv", "x,y\n", time.Hour)
		if res, err := e.pull(transfer.PullOptions{}); err != nil || res.Done != 1 {
			t.Fatalf("pull: %v %s", err, statuses(res))
		}
		e.exec(t, `UPDATE transfers SET status = 'started', stage = 'rename'`)
		return e, p
	}
	local := func(e *env) string { return filepath.Join(e.local, "f.csv") }
	tmp := func(e *env) string { return filepath.Join(e.local, ".f.csv.tmp") }
	check := func(t *testing.T, e *env, res *transfer.Result, err error, reason string) {
		t.Helper()
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), reason) {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if r := row(t, e, "pull", "out/f.csv"); r.Status != "done" || r.Attempts != 1 {
			t.Errorf("row %+v", r)
		}
		if exists(tmp(e)) {
			t.Error("temp file left")
		}
	}
	t.Run("after the link, before the ledger", func(t *testing.T) {
		e, p := setup(t)
		res, err := e.pull(transfer.PullOptions{After: transfer.AfterDelete})
		check(t, e, res, err, "the local copy of an interrupted pull was complete")
		if exists(p) {
			t.Error("remote file kept")
		}
	})
	t.Run("before the link", func(t *testing.T) {
		e, _ := setup(t)
		os.Rename(local(e), tmp(e))
		res, err := e.pull(transfer.PullOptions{})
		check(t, e, res, err, "finished the rename of an interrupted pull")
		if b, _ := os.ReadFile(local(e)); string(b) != "x,y\n" {
			t.Errorf("local %q", b)
		}
	})
	t.Run("after the link, the copy taken since", func(t *testing.T) {
		e, _ := setup(t)
		os.Remove(local(e))
		res, err := e.pull(transfer.PullOptions{})
		check(t, e, res, err, "the local copy has been taken since")
		if exists(local(e)) {
			t.Error("fetched twice")
		}
	})
	t.Run("in the download", func(t *testing.T) {
		e, _ := setup(t)
		os.Rename(local(e), tmp(e))
		os.Truncate(tmp(e), 1)
		e.exec(t, `UPDATE transfers SET stage = 'temp', sha256 = ''`)
		res, err := e.pull(transfer.PullOptions{})
		if err != nil || res.Done != 1 {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if r := row(t, e, "pull", "out/f.csv"); r.Status != "done" || r.Attempts != 2 {
			t.Errorf("row %+v", r)
		}
		if b, _ := os.ReadFile(local(e)); string(b) != "x,y\n" || exists(tmp(e)) {
			t.Errorf("local %q", b)
		}
	})
	t.Run("inside the archive rename of a local site", func(t *testing.T) {
		e, p := setup(t)
		e.exec(t, `UPDATE transfers SET status = 'done'`)
		os.Link(p, filepath.Join(e.root, "archive", "f.csv"))
		res, err := e.pull(transfer.PullOptions{After: transfer.AfterArchive, ArchiveDir: "archive"})
		if err != nil || statuses(res) != "f.csv:skipped:already fetched; archived" {
			t.Fatalf("%v %s", err, statuses(res))
		}
		if des, _ := os.ReadDir(filepath.Join(e.root, "archive")); len(des) != 1 || exists(p) {
			t.Errorf("archive %v, remote kept %v", des, exists(p))
		}
	})
}

// dropAfterRename is an sftp command handler that renames and then closes
// the channel before the reply, once: the rename reached the server, the
// client never hears of it.
type dropAfterRename struct {
	sftp.FileCmder
	ch      io.Closer
	dropped *atomic.Bool
}

func (d dropAfterRename) Filecmd(r *sftp.Request) error {
	err := d.FileCmder.Filecmd(r)
	if r.Method == "Rename" && err == nil && d.dropped.CompareAndSwap(false, true) {
		d.ch.Close()
	}
	return err
}

// Over SFTP: the rename's reply is lost with the connection. With a retry
// the run reconnects and finds the file there; without, the next run
// does, from the ledger alone. Neither uploads it twice.
func TestSFTPLostRenameReply(t *testing.T) {
	for _, retries := range []int{2, 0} {
		e := newEnv(t)
		h := sftp.InMemHandler()
		var dropped atomic.Bool
		var creates atomic.Int32
		srv := startSFTPWith(t, func(ch io.ReadWriteCloser) {
			hh := h
			hh.FileCmd = dropAfterRename{h.FileCmd, ch, &dropped}
			hh.FilePut = countPuts{h.FilePut, &creates}
			sftp.NewRequestServer(ch, hh).Serve()
		})
		site := dial(t, srv.config(t))
		if err := site.Mkdir("inbox"); err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(t.TempDir(), "a.csv")
		os.WriteFile(src, []byte(strings.Repeat("a,b\n", 1000)), 0o600)
		o := transfer.PushOptions{SiteName: "s", Files: []string{src}, To: "inbox", LockDir: e.locks,
			Retry: transfer.Retry{Retries: retries, Backoff: time.Millisecond}}
		res, err := transfer.Push(context.Background(), e.d, site, o)
		if retries == 0 {
			if !errors.Is(err, transfer.ErrUnreachable) || !dropped.Load() {
				t.Fatalf("push without retries = %v (dropped %v) %s, want unreachable", err, dropped.Load(), statuses(res))
			}
			site = dial(t, srv.config(t))
			res, err = transfer.Push(context.Background(), e.d, site, o)
		}
		if err != nil || res.Done != 1 || !strings.Contains(statuses(res), "as far as the rename") {
			t.Fatalf("retries %d: %v %s", retries, err, statuses(res))
		}
		if r := row(t, e, "push", "inbox/a.csv"); r.Status != "done" {
			t.Errorf("retries %d: row %+v", retries, r)
		}
		if n := creates.Load(); n != 1 {
			t.Errorf("retries %d: %d uploads, want 1", retries, n)
		}
		if _, err := site.Stat("inbox/.a.csv.tmp"); !errors.Is(err, transfer.ErrNotExist) {
			t.Errorf("retries %d: temp file: %v", retries, err)
		}
		if st, err := site.Stat("inbox/a.csv"); err != nil || st.Size != 4000 {
			t.Errorf("retries %d: site file %+v %v", retries, st, err)
		}
	}
}

// countPuts counts the files opened for writing.
type countPuts struct {
	sftp.FileWriter
	n *atomic.Int32
}

func (c countPuts) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	c.n.Add(1)
	return c.FileWriter.Filewrite(r)
}

// A marker whose data file an earlier run fetched (one that died between
// the two) is fetched alone, not left waiting for a file that is gone.
func TestPullLoneMarker(t *testing.T) {
	e := newEnv(t)
	e.remote(t, "f.csv", "x\n", time.Hour)
	e.remote(t, "f.csv.done", "", time.Hour)
	if res, err := e.pull(transfer.PullOptions{}); err != nil || res.Done != 2 {
		t.Fatalf("pull: %v %s", err, statuses(res))
	}
	// The run died after the data file's --after, before the marker.
	e.exec(t, `DELETE FROM transfers WHERE remote_path = 'out/f.csv.done'`)
	os.Remove(filepath.Join(e.local, "f.csv.done"))
	os.Rename(filepath.Join(e.root, "out", "f.csv"), filepath.Join(e.root, "archive", "f.csv"))
	res, err := e.pull(transfer.PullOptions{After: transfer.AfterArchive, ArchiveDir: "archive"})
	if err != nil || statuses(res) != "f.csv.done:done:" {
		t.Fatalf("%v %s", err, statuses(res))
	}
	if !exists(filepath.Join(e.local, "f.csv.done")) || !exists(filepath.Join(e.root, "archive", "f.csv.done")) {
		t.Error("marker not fetched and archived")
	}
	// Fetched but not archived: archived by the next run.
	e.remote(t, "g.csv", "y\n", time.Hour)
	e.remote(t, "g.csv.done", "", time.Hour)
	if res, err := e.pull(transfer.PullOptions{}); err != nil || res.Done != 2 {
		t.Fatalf("pull: %v %s", err, statuses(res))
	}
	res, err = e.pull(transfer.PullOptions{After: transfer.AfterDelete})
	if err != nil || statuses(res) != "g.csv:skipped:already fetched; deleted | g.csv.done:skipped:already fetched; deleted" {
		t.Fatalf("%v %s", err, statuses(res))
	}
	if des, _ := os.ReadDir(filepath.Join(e.root, "out")); len(des) != 0 {
		t.Errorf("left on the site: %v", des)
	}
}
