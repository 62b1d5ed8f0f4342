package transfer_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/db/dbtest"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/transfer"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"items_1.xml", true},
		{"a b.csv", true},
		{"été.xml", true},
		{"", false},
		{".", false},
		{"..", false},
		{"a..b", false},
		{"a/b", false},
		{`a\b`, false},
		{"a\nb", false},
		{"a\x00b", false},
		{"a\x7fb", false},
		{"a\u0085b", false},
	}
	for _, tt := range tests {
		err := transfer.CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, transfer.ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want ErrBadName", tt.name, err)
		}
	}
}

// A leading "/" is kept: the path is absolute (on the server, or on this
// machine for a local site).
func TestCleanDir(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "/", "inbox": "inbox", "/in/box/": "/in/box", "./a//b": "a/b", "//srv/./in": "/srv/in"} {
		got, err := transfer.CleanDir(in)
		if err != nil || got != want {
			t.Errorf("CleanDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "a/../..", "a/\tb", "/srv/../etc"} {
		if _, err := transfer.CleanDir(in); !errors.Is(err, transfer.ErrBadName) {
			t.Errorf("CleanDir(%q) = %v, want ErrBadName", in, err)
		}
	}
}

// An absolute path must be the root or below it; a relative one is not
// checked without the site (it depends on the login folder).
func TestCheckFolder(t *testing.T) {
	for _, tt := range []struct {
		root, p string
		in      bool
	}{
		{"/srv/p", "/srv/p", true}, {"/srv/p", "/srv/p/in/", true}, {"/srv/p", "/srv/pa", false},
		{"/srv/p", "/srv", false}, {"/srv/p", "/etc", false}, {"/", "/etc", true}, {"", "/etc", true},
		{"/srv/p", "in", true},
	} {
		_, err := transfer.CheckFolder(tt.root, tt.p)
		if (err == nil) != tt.in || (err != nil && !errors.Is(err, transfer.ErrOutsideRoot)) {
			t.Errorf("CheckFolder(%q, %q) = %v, want inside %v", tt.root, tt.p, err, tt.in)
		}
	}
	if _, err := transfer.CheckFolder("/srv/p", "/srv/p/../x"); !errors.Is(err, transfer.ErrBadName) {
		t.Errorf("CheckFolder with .. = %v, want ErrBadName", err)
	}
}

// A local site's folder is its root: a relative path starts there, an
// absolute one must lead into it, and a missing folder names the fix.
func TestLocalSitePaths(t *testing.T) {
	e := newEnv(t)
	abs := filepath.ToSlash(e.root)
	for p, want := range map[string]string{"out": "out", abs + "/out/": abs + "/out", abs: abs} {
		if got, err := e.site.Check(p); err != nil || got != want {
			t.Errorf("Check(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(e.root, "out", "a.xml"), []byte("<a/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if st, err := e.site.Stat(abs + "/out/a.xml"); err != nil || st.Size != 4 {
		t.Errorf("Stat by absolute path = %+v, %v", st, err)
	}
	for _, p := range []string{"/out", "/etc", abs + "x/out", filepath.ToSlash(filepath.Dir(e.root))} {
		if _, err := e.site.Check(p); !errors.Is(err, transfer.ErrOutsideRoot) || !strings.Contains(err.Error(), abs) {
			t.Errorf("Check(%q) = %v, want ErrOutsideRoot naming %s", p, err, abs)
		}
		if _, err := e.site.Create(p + "/x"); !errors.Is(err, transfer.ErrOutsideRoot) {
			t.Errorf("Create(%q) = %v, want ErrOutsideRoot", p+"/x", err)
		}
	}
	// A push into a folder outside the root or one that is not there
	// writes nothing and says so before any file.
	f := filepath.Join(t.TempDir(), "b.xml")
	os.WriteFile(f, []byte("<b/>"), 0o600)
	for to, want := range map[string]error{"/tmp": transfer.ErrOutsideRoot, "nothere": transfer.ErrNoFolder} {
		res, err := transfer.Push(context.Background(), e.d, e.site, transfer.PushOptions{SiteName: "s", Files: []string{f}, To: to, LockDir: e.locks})
		if !errors.Is(err, want) || res != nil {
			t.Errorf("push to %s = %v, %v; want %v", to, res, err, want)
		}
	}
	if _, err := os.Stat(f); err != nil {
		t.Errorf("the local file moved: %v", err)
	}
	// A pull from a folder that is not there, or into an archive that is
	// not, is the same mistake: nothing is fetched.
	to := t.TempDir()
	for _, o := range []transfer.PullOptions{
		{SiteName: "s", From: "nothere", To: to, LockDir: e.locks},
		{SiteName: "s", From: "out", To: to, After: transfer.AfterArchive, ArchiveDir: "gone", LockDir: e.locks},
	} {
		res, err := transfer.Pull(context.Background(), e.d, e.site, o)
		if !errors.Is(err, transfer.ErrNoFolder) || res != nil {
			t.Errorf("pull from %s (archive %q) = %v, %v; want ErrNoFolder", o.From, o.ArchiveDir, res, err)
		}
	}
	if got, _ := os.ReadDir(to); len(got) > 0 {
		t.Errorf("pulled into a missing folder: %v", got)
	}
	if _, err := transfer.NewLocal(filepath.Join(e.root, "gone")); !errors.Is(err, transfer.ErrNoFolder) || !strings.Contains(err.Error(), "mkdir -p") {
		t.Errorf("NewLocal of a missing folder = %v, want ErrNoFolder with the fix", err)
	}
}

func TestLocalSite(t *testing.T) {
	root := t.TempDir()
	s, err := transfer.NewLocal(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir("in"); err != nil {
		t.Fatal(err)
	}
	write := func(p, content string) {
		t.Helper()
		w, err := s.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("in/a", "one")
	if _, err := s.Create("in/a"); !errors.Is(err, transfer.ErrExist) {
		t.Errorf("Create over a file: %v, want ErrExist", err)
	}
	if st, _ := os.Stat(filepath.Join(root, "in", "a")); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	write("in/b", "two")
	if err := s.Rename("in/b", "in/a", false); !errors.Is(err, transfer.ErrExist) {
		t.Errorf("Rename onto a file: %v, want ErrExist", err)
	}
	if err := s.Rename("in/b", "in/a", true); err != nil {
		t.Errorf("Rename --overwrite: %v", err)
	}
	r, err := s.Open("in/a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "two" {
		t.Errorf("after overwrite: %q", b)
	}
	if _, err := s.Stat("in/b"); !errors.Is(err, transfer.ErrNotExist) {
		t.Errorf("Stat of a renamed file: %v, want ErrNotExist", err)
	}
	for _, p := range []string{"../x", "in/../../x", "/../x"} {
		if _, err := s.Open(p); !errors.Is(err, transfer.ErrBadName) {
			t.Errorf("Open(%q) = %v, want ErrBadName", p, err)
		}
	}
	entries, err := s.List("in")
	if err != nil || len(entries) != 1 || entries[0].Name != "a" || entries[0].Size != 3 {
		t.Errorf("List = %+v, %v", entries, err)
	}
}

// env is a database, a site with an outbox folder and a local folder.
type env struct {
	d     *db.DB
	site  *transfer.Local
	root  string
	local string
	locks string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	d := dbtest.Open(t)
	e := &env{d: d, root: filepath.Join(dir, "site"), local: filepath.Join(dir, "in"), locks: filepath.Join(dir, "locks")}
	for _, p := range []string{filepath.Join(e.root, "out"), filepath.Join(e.root, "archive"), e.local} {
		if err := os.MkdirAll(p, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if e.site, err = transfer.NewLocal(e.root); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) remote(t *testing.T, name, content string, age time.Duration) string {
	t.Helper()
	p := filepath.Join(e.root, "out", name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	os.Chtimes(p, old, old)
	return p
}

func (e *env) pull(o transfer.PullOptions) (*transfer.Result, error) {
	o.SiteName, o.From, o.To, o.LockDir = "s", "out", e.local, e.locks
	if o.After == "" {
		o.After = transfer.AfterKeep
	}
	if o.Sleep == nil {
		o.Sleep = func(time.Duration) {}
	}
	return transfer.Pull(context.Background(), e.d, e.site, o)
}

func statuses(res *transfer.Result) string {
	var s []string
	for _, f := range res.Files {
		s = append(s, filepath.Base(f.Remote)+":"+f.Status+":"+f.Reason)
	}
	return strings.Join(s, " | ")
}

// A file appended to between the two looks is left for a later run; the
// next run, once it is stable, fetches all of it.
// A temporary file a dead run left under the name a pull downloads to is
// replaced, and gone once the file is in place.
func TestPullReplacesALeftTemporaryFile(t *testing.T) {
	e := newEnv(t)
	e.remote(t, "a.csv", "a,b\n", time.Hour)
	tmp := filepath.Join(e.local, ".a.csv.tmp")
	if err := os.WriteFile(tmp, []byte("half of an older download"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := e.pull(transfer.PullOptions{})
	if err != nil || statuses(res) != "a.csv:done:" {
		t.Fatalf("pull: %v %s", err, statuses(res))
	}
	if b, _ := os.ReadFile(filepath.Join(e.local, "a.csv")); string(b) != "a,b\n" {
		t.Errorf("fetched %q", b)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
}

func TestPullSkipsGrowingFile(t *testing.T) {
	e := newEnv(t)
	p := e.remote(t, "grow.csv", "a,b\n", time.Hour)
	e.remote(t, "still.csv", "x\n", time.Hour)
	var waited time.Duration
	res, err := e.pull(transfer.PullOptions{StableWait: 3 * time.Second, Sleep: func(d time.Duration) {
		waited = d
		f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString("c,d\n")
		f.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if waited != 3*time.Second {
		t.Errorf("waited %s between the looks, want 3s", waited)
	}
	if got := statuses(res); got != "grow.csv:skipped:still changing | still.csv:done:" {
		t.Errorf("first run: %s", got)
	}
	if _, err := os.Stat(filepath.Join(e.local, "grow.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("growing file fetched: %v", err)
	}
	res, err = e.pull(transfer.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "still.csv:skipped:already fetched | grow.csv:done:" {
		t.Errorf("second run: %s", got)
	}
	b, _ := os.ReadFile(filepath.Join(e.local, "grow.csv"))
	if string(b) != "a,b\nc,d\n" {
		t.Errorf("fetched %q", b)
	}
}

func TestPullMinAgeUsesClock(t *testing.T) {
	e := newEnv(t)
	e.remote(t, "f.csv", "x\n", time.Minute)
	res, err := e.pull(transfer.PullOptions{MinAge: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skip != 1 || res.Done != 0 {
		t.Errorf("young file: %s", statuses(res))
	}
	later := time.Now().Add(2 * time.Minute)
	res, err = e.pull(transfer.PullOptions{MinAge: 2 * time.Minute, Now: func() time.Time { return later }})
	if err != nil || res.Done != 1 {
		t.Errorf("old enough: %s, %v", statuses(res), err)
	}
	st, err := os.Stat(filepath.Join(e.local, "f.csv"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("local copy: %v, %v; want mode 0600", st, err)
	}
}

// A run that died after recording the transfer but before --after: the
// next run does not fetch it again, but deletes it.
func TestPullFinishesAfterOfFetchedFile(t *testing.T) {
	e := newEnv(t)
	p := e.remote(t, "f.csv", "x\n", time.Hour)
	if _, err := e.pull(transfer.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.pull(transfer.PullOptions{After: transfer.AfterDelete})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "f.csv:skipped:already fetched; deleted" {
		t.Errorf("%s", got)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("remote file kept: %v", err)
	}
}

func TestPullLeavesTempAndStaleFiles(t *testing.T) {
	e := newEnv(t)
	e.remote(t, ".f.csv.tmp", "half", time.Hour)
	if err := os.WriteFile(filepath.Join(e.local, ".g.csv.tmp"), []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.remote(t, "g.csv", "whole\n", time.Hour)
	res, err := e.pull(transfer.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "g.csv:done:" {
		t.Errorf("%s", got)
	}
	entries, _ := os.ReadDir(e.local)
	if len(entries) != 1 || entries[0].Name() != "g.csv" {
		t.Errorf("local folder: %v", entries)
	}
}

func TestSiteLock(t *testing.T) {
	e := newEnv(t)
	e.remote(t, "f.csv", "x\n", time.Hour)
	l, err := fsx.TryLock(filepath.Join(e.locks, "site-s.lock"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := e.pull(transfer.PullOptions{}); !errors.Is(err, transfer.ErrBusy) {
		t.Errorf("pull while locked: %v, want ErrBusy", err)
	}
	if _, err := os.Stat(filepath.Join(e.local, "f.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("fetched while locked: %v", err)
	}
}

// failingSite fails every write after the first n bytes.
type failingSite struct {
	*transfer.Local
	n int
}

func (f failingSite) Create(p string) (io.WriteCloser, error) {
	w, err := f.Local.Create(p)
	if err != nil {
		return nil, err
	}
	return &failingWriter{w: w, left: f.n}, nil
}

type failingWriter struct {
	w    io.WriteCloser
	left int
}

func (f *failingWriter) Write(b []byte) (int, error) {
	if len(b) > f.left {
		n, _ := f.w.Write(b[:f.left])
		f.left = 0
		return n, errors.New("disk full")
	}
	f.left -= len(b)
	return f.w.Write(b)
}

func (f *failingWriter) Close() error { return f.w.Close() }

// A push that fails midway leaves nothing under the final name and no
// temporary file; the local file stays, and its marker is not sent.
func TestPushFailureLeavesNothing(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(t.TempDir(), "f.csv")
	os.WriteFile(src, []byte(strings.Repeat("x", 1000)), 0o600)
	os.WriteFile(src+".done", []byte("ok"), 0o600)
	res, err := transfer.Push(context.Background(), e.d, failingSite{e.site, 10}, transfer.PushOptions{
		SiteName: "s", Files: []string{src}, To: "out", LockDir: e.locks})
	if err == nil {
		t.Fatal("push succeeded")
	}
	if got := statuses(res); !strings.Contains(got, "f.csv:failed:upload") || !strings.Contains(got, "f.csv.done:skipped:its data file failed") {
		t.Errorf("%s", got)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "out"))
	if len(entries) != 0 {
		t.Errorf("site folder after a failed push: %v", entries)
	}
	if _, err := os.Stat(src); err != nil {
		t.Errorf("local file moved: %v", err)
	}
	res, err = transfer.Push(context.Background(), e.d, e.site, transfer.PushOptions{
		SiteName: "s", Files: []string{src}, To: "out", LockDir: e.locks})
	if err != nil || res.Done != 2 {
		t.Fatalf("second push: %s, %v", statuses(res), err)
	}
	b, _ := os.ReadFile(filepath.Join(e.root, "out", "f.csv"))
	if len(b) != 1000 {
		t.Errorf("pushed %d bytes", len(b))
	}
}
