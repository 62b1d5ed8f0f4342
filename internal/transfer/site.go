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
// slash-separated and relative to the site's root.
type Site interface {
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

// CleanDir turns a folder given by a user or the config into a path
// relative to the site root, refusing any element CheckName refuses. ""
// and "/" are the root.
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
	return path.Join(parts...), nil
}

// join names a file in a site folder.
func join(dir, name string) string {
	if dir == "" {
		return name
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
	dir, err := CleanDir(dir)
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
