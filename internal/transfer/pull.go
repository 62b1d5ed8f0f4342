package transfer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/fsx"
	"github.com/posbridge/posbridge/internal/ledger"
)

// What a pull does with a remote file once its local copy is recorded.
const (
	AfterKeep    = "keep"
	AfterDelete  = "delete"
	AfterArchive = "archive"
)

// PullOptions say what a pull fetches from where.
type PullOptions struct {
	SiteName string
	// From is the site folder, To the local folder.
	From, To string
	Pattern  string
	// After is keep, delete or archive; ArchiveDir is the site folder
	// archived files go to.
	After      string
	ArchiveDir string
	// MinAge skips files modified less than this long ago.
	MinAge time.Duration
	// StableWait is the time between the two looks at the folder; a file
	// whose size or mtime changed between them is still being written.
	StableWait    time.Duration
	RequireMarker bool
	DryRun        bool
	LockDir       string
	RunID         int64
	// Parallel is how many files are fetched at once (at least 1); a
	// marker is fetched after its file.
	Parallel int
	// Retry says how a file lost to an unreachable site is retried.
	Retry Retry

	// Now and Sleep default to the real clock; tests replace them.
	Now   func() time.Time
	Sleep func(time.Duration)

	dirSync *groupSync // syncs To for the files of a run
}

// Pull fetches the stable files of a site folder into a local folder.
func Pull(ctx context.Context, d *db.DB, site Site, o PullOptions) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		// An interrupted run (a signal, a job's timeout) stops waiting.
		o.Sleep = func(d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
	if o.Pattern == "" {
		o.Pattern = "*"
	}
	if _, err := filepath.Match(o.Pattern, ""); err != nil {
		return nil, fmt.Errorf("--pattern %q: %w", o.Pattern, err)
	}
	from, err := site.Check(o.From)
	if err != nil {
		return nil, err
	}
	// Without an archive folder there is nothing to check: "" would be the
	// login folder, which may lie outside the site's root.
	var archive string
	if o.ArchiveDir != "" {
		if archive, err = site.Check(o.ArchiveDir); err != nil {
			return nil, err
		}
	}
	if o.After == AfterArchive && archive == "" {
		return nil, errors.New("--after archive needs the site's archive folder")
	}
	// A missing folder fails as a push to one does, before anything is
	// fetched: a missing archive would leave every fetched file behind.
	if err := folderThere(ctx, site, o.SiteName, o.Retry, from, "the folder (--from, or the site's folders: in the config)"); err != nil {
		return nil, err
	}
	if o.After == AfterArchive {
		if err := folderThere(ctx, site, o.SiteName, o.Retry, archive, "the site's archive folder (folders: archive: in the config)"); err != nil {
			return nil, err
		}
	}
	// A missing local folder is created, as the outbox of an export is.
	if _, err := os.Stat(o.To); errors.Is(err, os.ErrNotExist) && !o.DryRun {
		if err := os.MkdirAll(o.To, 0o750); err != nil {
			return nil, fmt.Errorf("local folder %q: %w", o.To, err)
		}
	}
	if st, err := os.Stat(o.To); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("local folder %q: not a folder", o.To)
	}
	if o.To, err = filepath.Abs(o.To); err != nil {
		return nil, err
	}
	res, st, release, err := startRun(ctx, d, o.SiteName, o.LockDir, o.DryRun)
	if err != nil {
		return nil, err
	}
	defer release()
	o.dirSync = &groupSync{sync: func() error { return fsx.SyncDir(o.To) }}
	// list reads the remote folder, retried as every call to the site.
	list := func() (entries []Entry, err error) {
		err = o.Retry.do(ctx, site, func() (err error) {
			entries, err = site.List(from)
			return err
		})
		return entries, err
	}
	first, err := list()
	if err != nil {
		return nil, err
	}
	now := o.Now()
	files := map[string]Entry{}
	var candidates []Entry
	// settle takes e into this run, or finishes it when the ledger has it
	// fetched: a run that died between the ledger and --after left it.
	settle := func(e Entry, fr FileResult) error {
		done, err := ledger.Fetched(ctx, st, o.SiteName, fr.Remote, e.Size, mtimeKey(e.ModTime))
		switch {
		case err != nil:
			return err
		case done:
			res.add(finishFetched(site, o, fr, archive, e.Name, now))
		default:
			candidates = append(candidates, e)
		}
		return nil
	}
	for _, e := range first {
		if e.IsDir || strings.HasPrefix(e.Name, ".") {
			continue
		}
		files[e.Name] = e
	}
	for _, e := range first {
		if e.IsDir || strings.HasPrefix(e.Name, ".") || strings.HasSuffix(e.Name, markerSuffix) {
			continue
		}
		fr := FileResult{Remote: join(from, e.Name), Size: e.Size, Status: "skipped"}
		if err := CheckName(e.Name); err != nil {
			fr.Status, fr.Reason = "failed", err.Error()
			res.add(fr)
			continue
		}
		if ok, _ := filepath.Match(o.Pattern, e.Name); !ok {
			continue
		}
		fr.Local = filepath.Join(o.To, e.Name)
		_, marked := files[e.Name+markerSuffix]
		switch {
		case now.Sub(e.ModTime) < o.MinAge:
			fr.Reason = fmt.Sprintf("younger than --min-age %s", o.MinAge)
		case o.RequireMarker && !marked:
			fr.Reason = "no marker " + e.Name + markerSuffix
		default:
			if err := settle(e, fr); err != nil {
				return res, err
			}
			continue
		}
		res.add(fr)
	}
	// A marker goes with its data file. It goes alone when that file was
	// fetched already and is not fetched again now (a run that died
	// between the two, or before the marker's --after): else it would
	// wait for a file that never comes again.
	inRun := map[string]bool{}
	for _, e := range candidates {
		inRun[e.Name] = true
	}
	for _, e := range first {
		data := strings.TrimSuffix(e.Name, markerSuffix)
		if e.IsDir || strings.HasPrefix(e.Name, ".") || data == e.Name || inRun[data] || CheckName(e.Name) != nil {
			continue
		}
		if ok, _ := filepath.Match(o.Pattern, data); !ok {
			continue
		}
		last, found, err := ledger.LastTransfer(ctx, st, o.SiteName, "pull", join(from, data))
		if err != nil {
			return res, err
		}
		if !found || last.Status != ledger.TransferDone {
			continue
		}
		fr := FileResult{Remote: join(from, e.Name), Local: filepath.Join(o.To, e.Name), Size: e.Size, Status: "skipped"}
		if err := settle(e, fr); err != nil {
			return res, err
		}
	}
	if len(candidates) == 0 {
		return res, res.errOn(site)
	}

	// The second look: a file still being written changes in between.
	o.Sleep(o.StableWait)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	second, err := list()
	if err != nil {
		return nil, err
	}
	again := map[string]Entry{}
	for _, e := range second {
		again[e.Name] = e
	}
	var stable []Entry
	for _, e := range candidates {
		fr := FileResult{Remote: join(from, e.Name), Local: filepath.Join(o.To, e.Name), Size: e.Size, Status: "skipped"}
		if a, ok := again[e.Name]; !ok {
			fr.Reason = "gone between two looks"
			res.add(fr)
			continue
		} else if a.Size != e.Size || !a.ModTime.Equal(e.ModTime) {
			fr.Reason = "still changing"
			res.add(fr)
			continue
		}
		stable = append(stable, e)
	}
	if !o.DryRun {
		remotes := make([]string, len(stable))
		for i, e := range stable {
			remotes[i] = join(from, e.Name)
		}
		if err := st.readAhead(ctx, o.SiteName, "pull", remotes); err != nil {
			return res, err
		}
	}
	for _, frs := range inParallel(ctx, st, o.Parallel, len(stable), func(w *worker, i int) []FileResult {
		e := stable[i]
		m, marked := again[e.Name+markerSuffix]
		return pullUnit(ctx, w, site, o, from, archive, e, m, marked)
	}) {
		for _, fr := range frs {
			res.add(fr)
		}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, res.errOn(site)
}

// pullUnit pulls the stable file e and then, when it is marked, its
// marker m: the marker only once e is done, its done row committed (after
// the folder's sync, finishPull), so that a file that fails at the last
// step leaves its marker on the site, and the next run takes both.
func pullUnit(ctx context.Context, w *worker, site Site, o PullOptions, from, archive string, e, m Entry, marked bool) []FileResult {
	unit := &Result{}
	if !pullOne(ctx, w, site, o, from, archive, e, true, unit) || !marked {
		return unit.Files
	}
	w.finish()
	if unit.Files[0].Status == "failed" {
		return unit.Files
	}
	pullOne(ctx, w, site, o, from, archive, m, false, unit)
	return unit.Files
}

// pullOne fetches one stable file, records it and then applies --after;
// it reports whether the file is now here. checked says this run has
// asked the ledger already whether e was fetched (and it was not): the
// run holds the site's lock, so the answer still holds.
func pullOne(ctx context.Context, d *worker, site Site, o PullOptions, from, archive string, e Entry, checked bool, res *Result) bool {
	remote := join(from, e.Name)
	local := filepath.Join(o.To, e.Name)
	fr := FileResult{Remote: remote, Local: local, Size: e.Size, Status: "skipped"}
	mtime := mtimeKey(e.ModTime)
	done := false
	if !checked {
		var err error
		if done, err = ledger.Fetched(ctx, d, o.SiteName, remote, e.Size, mtime); err != nil {
			fr.Status, fr.Reason = "failed", err.Error()
			res.add(fr)
			return false
		}
	}
	if done {
		res.add(finishFetched(site, o, fr, archive, e.Name, o.Now()))
		return true
	}
	if o.DryRun {
		fr.Status = "would"
		res.add(fr)
		return true
	}
	tmp := filepath.Join(o.To, tmpName(e.Name))
	t := ledger.Transfer{Site: o.SiteName, Direction: "pull", LocalPath: local, RemotePath: remote, Size: e.Size,
		MTime: mtime, RunID: o.RunID, TempPath: tmp}
	prev, found, err := d.lastTransfer(ctx, o.SiteName, "pull", remote)
	if err != nil {
		fr.Status, fr.Reason = "failed", err.Error()
		res.add(fr)
		return false
	}
	// The row of a run that died (this run holds the site's lock) is
	// taken over, and finished when the local copy was complete.
	var reuse int64
	if found && prev.Status == ledger.TransferStarted && (o.RunID == 0 || prev.RunID != o.RunID) {
		reuse = prev.ID
		if prev.Stage == ledger.StageRename && prev.LocalPath == local && prev.Size == e.Size && prev.MTime == mtime {
			note, ok, serr := settlePull(remote, local, tmp, e.Size, prev.SHA256)
			if serr == nil && ok {
				return finishPull(ctx, d, site, o, archive, remote, e, reuse, prev.SHA256, note, res)
			}
		}
	}
	// write records the attempt, once there is something to record.
	write := func(ctx context.Context, stage, sum string) (int64, error) {
		t.Stage, t.SHA256 = stage, sum
		var lw ledger.Writer = d
		if stage == ledger.StageRename && o.dirSync != nil {
			// The temporary file's name is durable in the folder before
			// the row says the complete copy is there: after a power cut,
			// recovery takes a copy under neither name for one made and
			// taken since, and --after delete would remove the only one.
			lw = syncedWriter{d, o.dirSync}
		}
		if reuse != 0 {
			return reuse, ledger.RestartTransfer(ctx, lw, reuse, t)
		}
		return ledger.StartTransfer(ctx, lw, t)
	}
	var sum string
	var id int64
	err = o.Retry.do(ctx, site, func() (err error) {
		sum, err = fetch(site, remote, tmp, e.Size)
		return err
	})
	if err == nil {
		// Recorded before the rename: a run that dies after it finds the
		// complete copy (or knows it was made) instead of fetching again.
		if id, err = write(ctx, ledger.StageRename, sum); err != nil {
			os.Remove(tmp)
		}
	}
	if err == nil {
		if err = place(tmp, local, remote, sum); err != nil {
			// Certain failure: the ledger says so before the temporary
			// file goes.
			if serr := ledger.StageTransfer(context.WithoutCancel(ctx), d, id, ledger.StageTemp, "", ""); serr == nil {
				os.Remove(tmp)
			}
		}
	}
	if err != nil {
		nctx := context.WithoutCancel(ctx)
		if id == 0 {
			id, _ = write(nctx, ledger.StageTemp, "")
		}
		if id != 0 {
			ledger.EndTransfer(nctx, d, id, ledger.TransferFailed, e.Size, "", err)
		}
		fr.Status, fr.Reason = "failed", err.Error()
		if errors.Is(err, ErrUnreachable) {
			fr.lost = err
		}
		res.add(fr)
		return false
	}
	return finishPull(ctx, d, site, o, archive, remote, e, id, sum, "", res)
}

// finishFetched applies --after to a file fetched by an earlier run: one
// that died between the ledger and --after left it.
func finishFetched(site Site, o PullOptions, fr FileResult, archive, name string, now time.Time) FileResult {
	fr.Reason = "already fetched"
	if o.After != AfterKeep && !o.DryRun {
		if err := after(site, o.After, fr.Remote, archive, name, now); err != nil {
			fr.Status, fr.Reason = "failed", "already fetched, but "+err.Error()
		} else {
			fr.Reason += "; " + o.After + "d"
		}
	}
	return fr
}

// finishPull records a fetched file done and only then applies --after:
// a crash in between fetches nothing twice and loses nothing. The done
// row is held (see worker): the file's result in res is finished, and
// --after applied, once it is committed.
func finishPull(ctx context.Context, d *worker, site Site, o PullOptions, archive, remote string, e Entry, id int64, sum, note string, res *Result) bool {
	k := len(res.Files)
	res.Files = append(res.Files, FileResult{Remote: remote, Local: filepath.Join(o.To, e.Name), Size: e.Size, Status: "done", SHA256: sum, Reason: note})
	d.holdSynced(ctx, o.dirSync, func(ctx context.Context, w ledger.Writer) error {
		return ledger.EndTransfer(ctx, w, id, ledger.TransferDone, e.Size, sum, nil)
	}, func(err error) {
		fr := &res.Files[k]
		if err != nil {
			fr.Status, fr.Reason = "failed", err.Error()
		} else if err := after(site, o.After, remote, archive, e.Name, o.Now()); err != nil {
			fr.Status, fr.Reason = "failed", join2(note, "fetched, but "+err.Error())
		}
	})
	return true
}

// settlePull finishes a fetch a run that died had recorded as complete
// (stage rename, with its sha256): ok when the local file is there with
// those bytes, or the complete temporary copy was renamed now, or neither
// is there because the copy was made and taken since (the temporary name
// goes only with the rename). With other bytes under the name it is not
// ok, and the file is fetched again as usual.
func settlePull(remote, local, tmp string, size int64, sum string) (note string, ok bool, err error) {
	if _, err := os.Stat(local); err == nil {
		if same, err := sameSum(local, sum); err != nil || !same {
			return "", false, err
		}
		os.Remove(tmp)
		return "the local copy of an interrupted pull was complete", true, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	st, err := os.Stat(tmp)
	if errors.Is(err, os.ErrNotExist) {
		return "an interrupted pull had fetched it; the local copy has been taken since", true, nil
	}
	if err != nil || st.Size() != size {
		return "", false, err
	}
	if same, err := sameSum(tmp, sum); err != nil || !same {
		return "", false, err
	}
	if err := place(tmp, local, remote, sum); err != nil {
		return "", false, err
	}
	return "finished the rename of an interrupted pull", true, nil
}

// smallRead is the size below which fetch reads a file with plain reads:
// pkg/sftp's largest request, so two reads (the bytes, then the end).
const smallRead = 32 << 10

// fetch writes the remote file to a temporary local name (0600), checks
// the size and syncs it; on failure the temporary file is removed.
func fetch(site Site, remote, tmp string, size int64) (sum string, err error) {
	src, err := site.Open(remote)
	if err != nil {
		return "", err
	}
	defer src.Close()
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Left by a run that died (removed only then: a remove of nothing
		// is two system calls per file).
		os.Remove(tmp)
		f, err = os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	}
	if err != nil {
		return "", fmt.Errorf("download %q: %w", remote, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// A small file is read with plain reads: pkg/sftp's WriteTo first
	// asks for the file's size, to plan reads in parallel, one request
	// more per file.
	var r io.Reader = src
	if size < smallRead {
		r = struct{ io.Reader }{src}
	}
	n, sum, err := copyCounted(f, r)
	if err != nil {
		return "", fmt.Errorf("download %q: %w", remote, err)
	}
	if n != size {
		return "", fmt.Errorf("download %q: got %d bytes, the listing said %d", remote, n, size)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("download %q: sync: %w", remote, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("download %q: %w", remote, err)
	}
	return sum, nil
}

// place renames the complete temporary copy to its name without
// replacing anything (linkRename); the folder is synced before the file's
// done row is committed (finishPull). A local file of the same name is
// kept when it holds the same bytes (a run that died after the rename);
// otherwise place fails and replaces nothing.
func place(tmp, local, remote, sum string) error {
	err := linkRename(tmp, local)
	if errors.Is(err, os.ErrExist) {
		if same, _ := sameSum(local, sum); !same {
			return fmt.Errorf("download %q: local file %q exists with other content: not replaced", remote, local)
		}
		err = nil
		os.Remove(tmp)
	}
	if err != nil {
		return fmt.Errorf("download %q: %w", remote, err)
	}
	return nil
}

func sameSum(path, sum string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	want, _ := hex.DecodeString(sum)
	return bytes.Equal(h.Sum(nil), want), nil
}

// sameEntry says whether two names of a site show the same size and
// modification time.
func sameEntry(site Site, a, b string) bool {
	ea, err := site.Stat(a)
	if err != nil {
		return false
	}
	eb, err := site.Stat(b)
	return err == nil && ea.Size == eb.Size && ea.ModTime.Equal(eb.ModTime)
}

// after deletes or archives a fetched remote file. An archived file whose
// name is taken in the archive by another file gets the time appended.
func after(site Site, action, remote, archive, name string, now time.Time) error {
	switch action {
	case AfterDelete:
		return site.Remove(remote)
	case AfterArchive:
		err := site.Rename(remote, join(archive, name), false)
		if errors.Is(err, ErrExist) && sameEntry(site, remote, join(archive, name)) {
			// A run that died inside the rename of a local site (link,
			// then unlink) left the file under both names: only the
			// remote name goes, no second archived copy is made.
			return site.Remove(remote)
		}
		if errors.Is(err, ErrExist) {
			err = site.Rename(remote, join(archive, name+"."+now.UTC().Format("20060102T150405.000000000Z")), false)
		}
		return err
	}
	return nil
}
