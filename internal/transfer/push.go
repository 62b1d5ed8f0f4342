package transfer

import (
	"context"
	"errors"
	"fmt"
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
	to, err := CleanDir(o.To)
	if err != nil {
		return nil, err
	}
	files, err := pushList(o)
	if err != nil {
		return nil, err
	}
	res := &Result{Site: o.SiteName, DryRun: o.DryRun, Files: []FileResult{}}
	if !o.DryRun {
		lock, err := lockSite(o.LockDir, o.SiteName)
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
	}
	st := newStmts(d)
	defer st.Close()
	// A unit is a file with the marker that follows it.
	var units [][]string
	for _, local := range files {
		if n := len(units); n > 0 && local == units[n-1][0]+markerSuffix {
			units[n-1] = append(units[n-1], local)
			continue
		}
		units = append(units, []string{local})
	}
	for _, frs := range inParallel(ctx, o.Parallel, len(units), func(i int) []FileResult {
		fr := pushOne(ctx, st, site, o, to, units[i][0])
		out := []FileResult{fr}
		if len(units[i]) == 2 {
			// A marker says its file is complete: never send it for a
			// file that failed.
			if m := units[i][1]; fr.Status == "failed" {
				out = append(out, FileResult{Local: m, Remote: join(to, filepath.Base(m)), Status: "skipped", Reason: "its data file failed"})
			} else {
				out = append(out, pushOne(ctx, st, site, o, to, m))
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

// pushList orders the files so each marker F.done follows its F.
func pushList(o PushOptions) ([]string, error) {
	files := o.Files
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
		for _, de := range des {
			name := de.Name()
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
		if m := f + markerSuffix; !strings.HasSuffix(f, markerSuffix) && !seen[m] {
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

func pushOne(ctx context.Context, d *stmts, site Site, o PushOptions, to, local string) FileResult {
	name := filepath.Base(local)
	remote := join(to, name)
	fr := FileResult{Local: local, Remote: remote, Status: "failed"}
	if err := CheckName(name); err != nil {
		fr.Reason = err.Error()
		return fr
	}
	info, err := os.Stat(local)
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	if !info.Mode().IsRegular() {
		fr.Reason = "not a regular file"
		return fr
	}
	fr.Size = info.Size()
	if o.DryRun {
		fr.Status = "would"
		return fr
	}
	id, err := ledger.StartTransfer(ctx, d, ledger.Transfer{Site: o.SiteName, Direction: "push", LocalPath: local,
		RemotePath: remote, Size: info.Size(), MTime: mtimeKey(info.ModTime()), RunID: o.RunID})
	if err != nil {
		fr.Reason = err.Error()
		return fr
	}
	var sum string
	err = o.Retry.do(ctx, site, func() (err error) {
		sum, err = upload(site, local, to, name, info.Size(), o.Overwrite)
		return err
	})
	if err == nil {
		err = ledger.EndTransfer(ctx, d, id, ledger.TransferDone, info.Size(), sum, nil)
	} else {
		ledger.EndTransfer(context.WithoutCancel(ctx), d, id, ledger.TransferFailed, info.Size(), "", err)
	}
	if err != nil {
		fr.Reason = err.Error()
		if errors.Is(err, ErrUnreachable) {
			fr.lost = err
		}
		return fr
	}
	fr.SHA256 = sum
	fr.Status = "done"
	if err := moveToSent(local); err != nil {
		fr.Reason = "sent, but " + err.Error()
	}
	return fr
}

// upload writes the file under its temporary name, checks the remote size
// and renames it; on any failure the temporary file is removed.
func upload(site Site, local, dir, name string, size int64, overwrite bool) (sum string, err error) {
	src, err := os.Open(local)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp := join(dir, tmpName(name))
	w, err := site.Create(tmp)
	if errors.Is(err, ErrExist) {
		// A temporary file left by a run that died (looked for only
		// then: one request less per file).
		if err := site.Remove(tmp); err != nil && !errors.Is(err, ErrNotExist) {
			return "", err
		}
		w, err = site.Create(tmp)
	}
	if err != nil {
		return "", err
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
		return "", fmt.Errorf("upload %q: %w", join(dir, name), err)
	}
	st, err := site.Stat(tmp)
	if err != nil {
		return "", err
	}
	if n != size || st.Size != size {
		return "", fmt.Errorf("upload %q: sent %d bytes, remote has %d, local file has %d", join(dir, name), n, st.Size, size)
	}
	if err := site.Rename(tmp, join(dir, name), overwrite); err != nil {
		if errors.Is(err, ErrExist) {
			return "", fmt.Errorf("%q exists on the site: not replaced without --overwrite", join(dir, name))
		}
		return "", err
	}
	return sum, nil
}

// moveToSent moves a pushed file into sent/ in its folder.
func moveToSent(local string) error {
	sent := filepath.Join(filepath.Dir(local), "sent")
	if err := os.MkdirAll(sent, 0o750); err != nil {
		return fmt.Errorf("move to sent/: %w", err)
	}
	if err := os.Rename(local, filepath.Join(sent, filepath.Base(local))); err != nil {
		return fmt.Errorf("move to sent/: %w", err)
	}
	return nil
}
