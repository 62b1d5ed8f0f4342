package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/posbridge/posbridge/internal/db"
	"github.com/posbridge/posbridge/internal/ledger"
)

// PushOptions say what a push sends where.
type PushOptions struct {
	SiteName string
	// Files are explicit local files; FromDir with Pattern is the
	// alternative.
	Files   []string
	FromDir string
	Pattern string
	// To is the site folder, relative to its root.
	To        string
	Overwrite bool
	DryRun    bool
	LockDir   string
	RunID     int64
	// Parallel is how many files move at once (at least 1); a file and
	// its marker always go one after the other.
	Parallel int
	// Retry says how a file lost to an unreachable site is retried.
	Retry Retry
}

// Push uploads each file to a temporary name in the target folder, checks
// the remote size, renames it to its name, records the transfer and moves
// the local file to sent/ beside it. A file F.done is sent right after F.
// A failed file leaves nothing under its final name and the run goes on
// with the next one.
func Push(ctx context.Context, d *db.DB, site Site, o PushOptions) (*Result, error) {
	to, err := site.Check(o.To)
	if err != nil {
		return nil, err
	}
	files, err := pushList(o)
	if err != nil {
		return nil, err
	}
	if err := folderThere(ctx, site, o.SiteName, o.Retry, to, "the folder (--to, or the site's folders: in the config)"); err != nil {
		return nil, err
	}
	res, st, release, err := startRun(ctx, d, o.SiteName, o.LockDir, o.DryRun)
	if err != nil {
		return nil, err
	}
	defer release()
	// A unit is a file with the marker that follows it.
	var units [][]string
	for _, local := range files {
		if n := len(units); n > 0 && local == units[n-1][0]+markerSuffix {
			units[n-1] = append(units[n-1], local)
			continue
		}
		units = append(units, []string{local})
	}
	if !o.DryRun {
		remotes := make([]string, len(files))
		for i, local := range files {
			remotes[i] = join(to, filepath.Base(local))
		}
		if err := st.readAhead(ctx, o.SiteName, "push", remotes); err != nil {
			return res, err
		}
	}
	for _, frs := range inParallel(ctx, st, o.Parallel, len(units), func(w *worker, i int) []FileResult {
		// pushOne finishes a result once its held write is committed: the
		// slice never grows past its capacity, so the results stay put.
		out := make([]FileResult, 1, 2)
		pushOne(ctx, w, site, o, to, units[i][0], &out[0])
		if len(units[i]) == 2 {
			out = out[:2]
			// A marker says its file is complete: never send it for a
			// file that failed.
			if m := units[i][1]; out[0].Status == "failed" {
				out[1] = FileResult{Local: m, Remote: join(to, filepath.Base(m)), Status: "skipped", Reason: "its data file failed"}
			} else {
				pushOne(ctx, w, site, o, to, m, &out[1])
			}
		}
		return out
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

// folderThere fails with ErrNoFolder, naming the site and what to
// correct (fix), when the folder dir of the site is not there: then every
// file would fail the same way, and a person must act, whichever way the
// files go.
func folderThere(ctx context.Context, site Site, name string, rt Retry, dir, fix string) error {
	err := rt.do(ctx, site, func() error {
		_, err := site.Stat(dir)
		return err
	})
	if errors.Is(err, ErrNotExist) {
		shown := dir
		if dir == "" {
			shown = "."
		}
		err = fmt.Errorf("folder %s of %s: %w: create it, or correct %s", shown, siteWhere(site), ErrNoFolder, fix)
	}
	if err != nil {
		return fmt.Errorf("site %s: %w", name, err)
	}
	return nil
}

// siteWhere names a site for messages: its folder or its server.
func siteWhere(site Site) string {
	if st, ok := site.(fmt.Stringer); ok {
		return st.String()
	}
	return "the site"
}

// pushList orders the files so each marker F.done follows its F.
func pushList(o PushOptions) ([]string, error) {
	files := o.Files
	// listed holds the folder's names: a marker is looked for only
	// among them, not with a system call per file.
	var listed map[string]bool
	if o.FromDir != "" {
		if len(files) > 0 {
			return nil, errors.New("give files or a folder, not both")
		}
		des, err := os.ReadDir(o.FromDir)
		if errors.Is(err, os.ErrNotExist) && o.DryRun {
			// A dry run of a job whose export (a dry run too) has not
			// made the folder yet: nothing to push.
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read %q: %w", o.FromDir, err)
		}
		pattern := o.Pattern
		if pattern == "" {
			pattern = "*"
		}
		listed = make(map[string]bool, len(des))
		for _, de := range des {
			name := de.Name()
			listed[name] = true
			if !de.Type().IsRegular() || strings.HasPrefix(name, ".") {
				continue
			}
			data := strings.TrimSuffix(name, markerSuffix)
			if ok, err := filepath.Match(pattern, data); err != nil {
				return nil, fmt.Errorf("--pattern %q: %w", pattern, err)
			} else if ok {
				files = append(files, filepath.Join(o.FromDir, name))
			}
		}
	}
	// The marker of an explicit file goes with it.
	seen := map[string]bool{}
	for _, f := range files {
		seen[f] = true
	}
	for _, f := range files {
		if m := f + markerSuffix; !strings.HasSuffix(f, markerSuffix) && !seen[m] && (listed == nil || listed[filepath.Base(m)]) {
			if _, err := os.Stat(m); err == nil {
				files = append(files, m)
				seen[m] = true
			}
		}
	}
	for i, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, err
		}
		files[i] = abs
	}
	// Sorting puts every marker F.done right after its F.
	sort.Strings(files)
	return files, nil
}

// pushOne pushes one file into fr. A pushed file's done row is held (see
// worker): fr is finished, and the file moved to sent/, once it is
// committed.
func pushOne(ctx context.Context, d *worker, site Site, o PushOptions, to, local string, fr *FileResult) {
	name := filepath.Base(local)
	remote := join(to, name)
	*fr = FileResult{Local: local, Remote: remote, Status: "failed"}
	if err := CheckName(name); err != nil {
		fr.Reason = err.Error()
		return
	}
	info, ok := fr.stat(local)
	if !ok {
		return
	}
	if o.DryRun {
		fr.Status = "would"
		return
	}
	p := &pushing{ctx: ctx, d: d, site: site, local: local, remote: remote, tmp: join(to, tmpName(name)),
		size: info.Size(), overwrite: o.Overwrite}
	p.row = ledger.Transfer{Site: o.SiteName, Direction: "push", LocalPath: local, RemotePath: remote, Size: info.Size(),
		MTime: mtimeKey(info.ModTime()), RunID: o.RunID, TempPath: p.tmp}
	prev, found, err := d.lastTransfer(ctx, o.SiteName, "push", remote)
	if err != nil {
		fr.Reason = err.Error()
		return
	}
	// The same local file as the last attempt at this name.
	same := found && prev.LocalPath == local && prev.Size == p.row.Size && prev.MTime == p.row.MTime
	if same && prev.Status == ledger.TransferDone {
		// A run that died after recording the push, before moving the
		// file to sent/: it is not sent again.
		if sum, err := fileSum(local); err == nil && sum == prev.SHA256 {
			fr.Status, fr.SHA256 = "skipped", sum
			fr.Reason = fmt.Sprintf("already pushed (transfer %d)", prev.ID)
			if err := moveToSent(local); err != nil {
				fr.Status, fr.Reason = "failed", fr.Reason+", but "+err.Error()
			} else {
				fr.Reason += "; moved to sent/"
			}
			return
		}
	}
	switch {
	case same && prev.Stage == ledger.StageRename && prev.Status != ledger.TransferDone:
		// That attempt asked for the rename and never learnt the outcome
		// (killed, or the reply was lost): this attempt takes its row
		// over and looks at the site first.
		p.renaming, p.sum, p.tmtime = true, prev.SHA256, prev.TempMTime
		p.row.Stage, p.row.SHA256, p.row.TempMTime = prev.Stage, prev.SHA256, prev.TempMTime
		p.id = prev.ID
		if err := ledger.RestartTransfer(ctx, d, p.id, p.row); err != nil {
			fr.Reason = err.Error()
			return
		}
	case found && prev.Status == ledger.TransferStarted && (o.RunID == 0 || prev.RunID != o.RunID):
		// Left started by a run that died (this run holds the site's
		// lock): taken over once this attempt writes its row.
		p.reuse = prev.ID
	}
	if err = o.Retry.do(ctx, site, p.attempt); err != nil {
		// With the rename asked for and its outcome unknown the row keeps
		// stage rename, so the next run looks at the site first.
		nctx := context.WithoutCancel(ctx)
		if p.id == 0 {
			p.row.Stage = ledger.StageTemp
			p.id, _ = p.write(nctx)
		}
		if p.id != 0 {
			ledger.EndTransfer(nctx, d, p.id, ledger.TransferFailed, p.size, p.sum, err)
		}
		fr.Reason = err.Error()
		if errors.Is(err, ErrUnreachable) {
			fr.lost = err
		}
		return
	}
	fr.SHA256, fr.Status, fr.Reason = p.sum, "done", p.note
	d.hold(ctx, func(ctx context.Context, w ledger.Writer) error {
		return ledger.EndTransfer(ctx, w, p.id, ledger.TransferDone, p.size, p.sum, nil)
	}, func(err error) {
		if err != nil {
			fr.Status, fr.Reason = "failed", err.Error()
		} else if err := moveToSent(local); err != nil {
			fr.Reason = join2(fr.Reason, "sent, but "+err.Error())
		}
	})
}

// join2 joins two parts of a reason.
func join2(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// pushing is one file's push: its ledger row and how far it got.
type pushing struct {
	ctx                context.Context
	d                  *worker
	site               Site
	local, remote, tmp string
	size               int64
	overwrite          bool
	// row is the ledger row written once the bytes are on the site; id
	// is its id from then on, reuse the row of a dead run it takes over.
	row       ledger.Transfer
	id, reuse int64
	// renaming says the rename was asked for (by this run or one that
	// died) and its outcome is unknown; sum is the sha256 of the bytes.
	renaming bool
	sum      string
	tmtime   string // the complete temporary file's time on the site
	// note says how a file that needed no new upload was finished.
	note string
}

// attempt is one try at the push, run again after a lost connection.
// When a rename's outcome is unknown it first settles that on the site.
func (p *pushing) attempt() error {
	if p.renaming {
		if done, err := p.settle(); done || err != nil {
			return err
		}
		// Nothing of that attempt to keep: the ledger says so before a
		// new upload, whose failure removes the temporary file.
		if err := ledger.StageTransfer(p.ctx, p.d, p.id, ledger.StageTemp, "", ""); err != nil {
			return err
		}
		p.renaming, p.sum, p.tmtime = false, "", ""
	}
	sum, tmp, err := upload(p.site, p.local, p.tmp, p.remote, p.size)
	if err != nil {
		return err
	}
	return p.rename(sum, mtimeKey(tmp.ModTime))
}

// rename records that the complete temporary file is being renamed, then
// renames it. Only a refusal that is certain removes the temporary file,
// and only after the ledger says no rename is pending: while the ledger
// may say so, the temporary file stays for the next run.
func (p *pushing) rename(sum, tmtime string) error {
	var err error
	if p.id != 0 {
		err = ledger.StageTransfer(p.ctx, p.d, p.id, ledger.StageRename, sum, tmtime)
	} else {
		p.row.Stage, p.row.SHA256, p.row.TempMTime = ledger.StageRename, sum, tmtime
		p.id, err = p.write(p.ctx)
	}
	if err != nil {
		return err
	}
	p.renaming, p.sum, p.tmtime = true, sum, tmtime
	err = p.site.Rename(p.tmp, p.remote, p.overwrite)
	if err == nil || errors.Is(err, ErrUnreachable) {
		// Unreachable: the rename may have happened; settled next time.
		return err
	}
	if errors.Is(err, ErrExist) {
		// Someone's file is there: read back only now, when the ledger
		// cannot tell whose it is.
		same, serr := sameRemote(p.site, p.remote, p.size, sum)
		if serr != nil {
			return serr
		}
		if same {
			if err := p.site.Remove(p.tmp); err != nil && !errors.Is(err, ErrNotExist) {
				return err
			}
			p.note = "the site already had these bytes under this name"
			return nil
		}
		err = fmt.Errorf("%q exists on the site: not replaced without --overwrite", p.remote)
	}
	if serr := ledger.StageTransfer(context.WithoutCancel(p.ctx), p.d, p.id, ledger.StageTemp, sum, ""); serr != nil {
		return err
	}
	p.renaming = false
	p.site.Remove(p.tmp)
	return err
}

// write records the attempt as started, taking over the row of a dead
// run if there is one.
func (p *pushing) write(ctx context.Context) (int64, error) {
	if p.reuse != 0 {
		if err := ledger.RestartTransfer(ctx, p.d, p.reuse, p.row); err != nil {
			return 0, err
		}
		return p.reuse, nil
	}
	return ledger.StartTransfer(ctx, p.d, p.row)
}

// settle finds out what became of an attempt whose rename was asked for:
// done says the file is on the site (or was, and was taken since); false
// with no error means it must be uploaded again.
func (p *pushing) settle() (done bool, err error) {
	final, ferr := p.site.Stat(p.remote)
	if ferr != nil && !errors.Is(ferr, ErrNotExist) {
		return false, ferr
	}
	tmp, terr := p.site.Stat(p.tmp)
	if terr != nil && !errors.Is(terr, ErrNotExist) {
		return false, terr
	}
	switch {
	case terr == nil && tmp.Size == p.size:
		// The rename did not happen (or, on a local site, was cut
		// between its link and unlink): the complete temporary file is
		// renamed now.
		if err := p.rename(p.sum, mtimeKey(tmp.ModTime)); err != nil {
			return false, err
		}
		if p.note == "" {
			p.note = "finished the rename of an interrupted push"
		}
		return true, nil
	case terr == nil:
		// A partial temporary file: upload again (it is replaced).
		return false, nil
	case ferr == nil && final.Size == p.size && mtimeKey(final.ModTime) == p.tmtime:
		// The size and time the temporary file had: the rename happened.
		p.note = "the site had it already: an interrupted push got as far as the rename"
		return true, nil
	case ferr == nil:
		// The ledger cannot tell whose file this is: read it back.
		same, err := sameRemote(p.site, p.remote, p.size, p.sum)
		if err != nil {
			return false, err
		}
		if same {
			p.note = "the site already had these bytes under this name"
			return true, nil
		}
		if p.overwrite {
			return false, nil
		}
		err = fmt.Errorf("%q exists on the site: not replaced without --overwrite", p.remote)
		if serr := ledger.StageTransfer(p.ctx, p.d, p.id, ledger.StageTemp, p.sum, ""); serr != nil {
			return false, serr
		}
		p.renaming = false
		return false, err
	}
	// Neither name: the rename happened and the partner has taken the
	// file since (a removed temporary file is always recorded first).
	p.note = "an interrupted push got as far as the rename; the file has been taken from the site since"
	return true, nil
}

// upload writes the file under its temporary name and checks the remote
// size; it returns the sha256 sent and the temporary file's entry. On any
// failure the temporary file is removed.
func upload(site Site, local, tmp, remote string, size int64) (sum string, st Entry, err error) {
	src, err := os.Open(local)
	if err != nil {
		return "", st, err
	}
	defer src.Close()
	w, err := site.Create(tmp)
	if errors.Is(err, ErrExist) {
		// A temporary file left by a run that died (looked for only
		// then: one request less per file).
		if err := site.Remove(tmp); err != nil && !errors.Is(err, ErrNotExist) {
			return "", st, err
		}
		w, err = site.Create(tmp)
	}
	if err != nil {
		return "", st, err
	}
	defer func() {
		if err != nil {
			site.Remove(tmp)
		}
	}()
	n, sum, err := copySized(w, src, size)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", st, fmt.Errorf("upload %q: %w", remote, err)
	}
	if st, err = site.Stat(tmp); err != nil {
		return "", st, err
	}
	if n != size || st.Size != size {
		return "", st, fmt.Errorf("upload %q: sent %d bytes, remote has %d, local file has %d", remote, n, st.Size, size)
	}
	return sum, st, nil
}

// sameRemote reads the site's file p back and says whether it holds size
// bytes with this sha256.
func sameRemote(site Site, p string, size int64, sum string) (bool, error) {
	st, err := site.Stat(p)
	if err != nil || st.Size != size {
		return false, err
	}
	r, err := site.Open(p)
	if err != nil {
		return false, err
	}
	defer r.Close()
	n, got, err := copyCounted(io.Discard, r)
	if err != nil {
		return false, fmt.Errorf("read back %q: %w", p, err)
	}
	return n == size && got == sum, nil
}

// fileSum is the sha256 of a local file.
func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, sum, err := copyCounted(io.Discard, f)
	return sum, err
}

// moveToSent moves a pushed file into sent/ in its folder. The folder is
// made when the rename finds it missing: looked for before each file, it
// was a system call per file.
func moveToSent(local string) error {
	sent := filepath.Join(filepath.Dir(local), "sent")
	to := filepath.Join(sent, filepath.Base(local))
	err := renameFile(local, to)
	if errors.Is(err, fs.ErrNotExist) {
		if err = os.MkdirAll(sent, 0o750); err == nil {
			err = renameFile(local, to)
		}
	}
	if err != nil {
		return fmt.Errorf("move to sent/: %w", err)
	}
	return nil
}
