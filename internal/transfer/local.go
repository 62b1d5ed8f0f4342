package transfer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/posbridge/posbridge/internal/fsx"
)

// Local is a site that is a folder on this machine, such as an NFS drop
// folder. The folder is both where relative paths start and the site's
// root: an absolute path must lead into it, so every path stays inside.
type Local struct {
	root string // as configured, for messages
	abs  string // absolute and clean, slash-separated
}

// NewLocal returns the site rooted at dir, which must exist: a folder that
// is not there fails with ErrNoFolder, naming the folder and the fix.
func NewLocal(dir string) (*Local, error) {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local site folder %s: %w: create it (mkdir -p %s)", dir, ErrNoFolder, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("local site folder: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("local site folder %q is not a folder", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local site folder %q: %w", dir, err)
	}
	return &Local{root: dir, abs: filepath.ToSlash(abs)}, nil
}

// Check cleans p; an absolute p must lead into the site's folder.
func (l *Local) Check(p string) (string, error) { return CheckFolder(l.abs, p) }

func (l *Local) resolve(p string) (string, error) {
	clean, err := l.Check(p)
	if err != nil {
		return "", err
	}
	if path.IsAbs(clean) {
		return filepath.FromSlash(clean), nil
	}
	return filepath.Join(l.root, filepath.FromSlash(clean)), nil
}

// localErr maps os errors to the package's sentinels, keeping the text.
func localErr(op, p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s %q: %w", op, p, ErrExist)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %q: %w", op, p, ErrNotExist)
	}
	return fmt.Errorf("%s %q: %w", op, p, err)
}

// List returns the entries of a folder, sorted by name.
func (l *Local) List(dir string) ([]Entry, error) {
	full, err := l.resolve(dir)
	if err != nil {
		return nil, err
	}
	des, err := os.ReadDir(full)
	if err != nil {
		return nil, localErr("list", dir, err)
	}
	out := make([]Entry, 0, len(des))
	for _, de := range des {
		info, err := de.Info()
		if err != nil {
			continue // removed since ReadDir
		}
		out = append(out, entryOf(info))
	}
	return out, nil
}

func entryOf(info fs.FileInfo) Entry {
	return Entry{Name: info.Name(), Size: info.Size(), ModTime: info.ModTime(), IsDir: info.IsDir()}
}

// Stat describes one file or folder.
func (l *Local) Stat(p string) (Entry, error) {
	full, err := l.resolve(p)
	if err != nil {
		return Entry{}, err
	}
	info, err := os.Stat(full)
	if err != nil {
		return Entry{}, localErr("stat", p, err)
	}
	return entryOf(info), nil
}

// Open opens a file for reading.
func (l *Local) Open(p string) (io.ReadCloser, error) {
	full, err := l.resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := fsx.OpenRegular(full)
	if err != nil {
		return nil, localErr("open", p, err)
	}
	return f, nil
}

// Create makes a new file readable only by its owner; Close syncs it.
func (l *Local) Create(p string) (io.WriteCloser, error) {
	full, err := l.resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, localErr("create", p, err)
	}
	return syncCloser{f}, nil
}

type syncCloser struct{ *os.File }

func (s syncCloser) Close() error {
	if err := s.File.Sync(); err != nil {
		s.File.Close()
		return err
	}
	return s.File.Close()
}

// errNoReplaceUnsupported says a filesystem has no rename that refuses an
// existing target in one step.
var errNoReplaceUnsupported = errors.New("rename without replacing is not supported here")

// linkRename renames from to to, failing when to exists: in one step where
// the filesystem can (renameat2 RENAME_NOREPLACE), else by linking the new
// name, which fails atomically when the target exists, and dropping the
// old one; a kill between the two leaves the file under both names, which
// the next push or pull resolves (docs/transfers.md).
func linkRename(from, to string) error {
	err := renameNoReplace(from, to)
	if errors.Is(err, errNoReplaceUnsupported) {
		if err = os.Link(from, to); err == nil {
			err = os.Remove(from)
		}
	}
	return err
}

// Rename moves a file; without overwrite it never replaces the target
// (linkRename).
func (l *Local) Rename(from, to string, overwrite bool) error {
	src, err := l.resolve(from)
	if err != nil {
		return err
	}
	dst, err := l.resolve(to)
	if err != nil {
		return err
	}
	if overwrite {
		err = os.Rename(src, dst)
	} else {
		err = linkRename(src, dst)
	}
	if err != nil {
		return localErr("rename "+from+" to", to, err)
	}
	return fsx.SyncDir(filepath.Dir(dst))
}

// Remove deletes a file.
func (l *Local) Remove(p string) error {
	full, err := l.resolve(p)
	if err != nil {
		return err
	}
	if err := os.Remove(full); err != nil {
		return localErr("remove", p, err)
	}
	return nil
}

// Mkdir makes a folder and its parents.
func (l *Local) Mkdir(p string) error {
	full, err := l.resolve(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(full, 0o750); err != nil {
		return localErr("mkdir", p, err)
	}
	return nil
}

// String names the site's folder for messages.
func (l *Local) String() string { return strings.TrimSuffix(l.root, "/") }
