package transfer

import (
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Entry is one file or folder of a site listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	IsDir   bool      `json:"is_dir"`
}

// Site is a place files are pushed to and pulled from. Paths are
// slash-separated, as CleanDir makes them: relative to the folder the site
// starts in, or absolute with a leading "/".
type Site interface {
	// Check cleans a site path (CleanDir) and refuses one that leads
	// outside the site's root (ErrOutsideRoot); every other method
	// checks its paths the same way.
	Check(p string) (string, error)
	List(dir string) ([]Entry, error)
	Stat(p string) (Entry, error)
	Open(p string) (io.ReadCloser, error)
	// Create makes a new file, failing if it exists.
	Create(p string) (io.WriteCloser, error)
	// Rename moves from to to, failing with ErrExist if to exists and
	// overwrite is false.
	Rename(from, to string, overwrite bool) error
	Remove(p string) error
	Mkdir(p string) error
}

// Errors with their own handling.
var (
	// ErrExist means the target of a rename or create exists.
	ErrExist = errors.New("already exists")
	// ErrNotExist means a file or folder is not there.
	ErrNotExist = errors.New("does not exist")
	// ErrBadName means a file name could escape its folder or confuse a
	// partner: it holds "/", "..", or a control character.
	ErrBadName = errors.New("refused file name")
	// ErrBusy means another run holds the site's lock (exit 75).
	ErrBusy = errors.New("another transfer of this site is running")
	// ErrOutsideRoot means a path leads outside the site's root: the
	// command line or the configuration must change (exit 2).
	ErrOutsideRoot = errors.New("outside the site root")
	// ErrNoFolder means a site's folder does not exist: someone must
	// create it or correct the configuration (exit 2).
	ErrNoFolder = errors.New("no such folder")
)

// CheckName refuses a single file name that is empty, ".", "..", or holds
// "/", "\", ".." or a control character.
func CheckName(name string) error {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "..") || strings.ContainsAny(name, `/\`) {
		return fmt.Errorf("%w %q", ErrBadName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w %q: control character", ErrBadName, name)
		}
	}
	return nil
}

// CleanDir turns a site path given by a user or the config into its clean
// form, refusing any element CheckName refuses (".." above all: with it a
// path could leave a root unseen, through a link on the server). A leading
// "/" is kept: the path is absolute, on the server for an sftp site as for
// the OpenSSH sftp client, on this machine for a local site. Without it the
// path is relative to the folder the site starts in; "" is that folder.
func CleanDir(dir string) (string, error) {
	var parts []string
	for _, p := range strings.Split(strings.Trim(dir, "/"), "/") {
		if p == "" || p == "." {
			continue
		}
		if err := CheckName(p); err != nil {
			return "", fmt.Errorf("folder %q: %w", dir, err)
		}
		parts = append(parts, p)
	}
	if strings.HasPrefix(dir, "/") {
		return "/" + path.Join(parts...), nil
	}
	return path.Join(parts...), nil
}

// within says whether the clean absolute path p is root or below it.
func within(root, p string) bool {
	return p == root || root == "/" || strings.HasPrefix(p, root+"/")
}

// CheckFolder checks a site path without reaching the site: its names
// (CleanDir) and, when it is absolute, that it lies within root (none when
// root is ""). It returns the path cleaned.
func CheckFolder(root, p string) (string, error) {
	clean, err := CleanDir(p)
	if err != nil || !path.IsAbs(clean) {
		return clean, err
	}
	return clean, confine(root, p, clean)
}

// confine refuses the site path p, which is abs in full (a relative p
// joined to the folder the site starts in), when root is set and abs is not
// within it.
func confine(root, p, abs string) error {
	if root == "" || within(root, abs) {
		return nil
	}
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("folder %q is %w %s", p, ErrOutsideRoot, root)
	}
	return fmt.Errorf("folder %q (%s) is %w %s", p, abs, ErrOutsideRoot, root)
}

// join names a file in a site folder.
func join(dir, name string) string {
	switch {
	case dir == "":
		return name
	case strings.HasSuffix(dir, "/"):
		return dir + name
	}
	return dir + "/" + name
}

// tmpName is the temporary name a file is written under in its folder;
// names starting with "." are never pushed or pulled.
func tmpName(name string) string { return "." + name + ".tmp" }

// markerSuffix marks F.done, written after F is complete.
const markerSuffix = ".done"

// Probe checks that a site folder can be listed and takes a new file: it
// creates and removes a temporary file there.
func Probe(site Site, dir string) error {
	dir, err := site.Check(dir)
	if err != nil {
		return err
	}
	if _, err := site.List(dir); err != nil {
		return err
	}
	p := join(dir, tmpName("posbridge-probe"))
	w, err := site.Create(p)
	if err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		site.Remove(p)
		return err
	}
	return site.Remove(p)
}
