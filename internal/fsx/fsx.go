package fsx

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteAtomic writes path through fn: the data goes to a temporary file in
// the same folder that is synced and renamed over path only when fn
// succeeded, then the folder is synced. On any error the temporary file is
// removed and path is untouched.
func WriteAtomic(path string, perm os.FileMode, fn func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 256*1024)
	if err = fn(bw); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename into %q: %w", path, err)
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a folder so a rename in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %q: %w", dir, err)
	}
	return nil
}
