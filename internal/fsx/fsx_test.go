package fsx_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/posbridge/posbridge/internal/fsx"
)

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteAtomicWrites(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 64*1024) // 1 MiB, more than the write buffer
	tests := []struct {
		name    string
		old     []byte // existing content, nil for a new file
		content []byte
		perm    os.FileMode
	}{
		{name: "new file", content: []byte("line,error\n2,bad\n"), perm: 0o640},
		{name: "replaces an existing file", old: []byte("old content that is longer than the new"), content: []byte("new\n"), perm: 0o600},
		{name: "empty content", old: []byte("old"), content: nil, perm: 0o644},
		{name: "large content", content: big, perm: 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.csv")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			err := fsx.WriteAtomic(path, tt.perm, func(w io.Writer) error {
				_, err := w.Write(tt.content)
				return err
			})
			if err != nil {
				t.Fatalf("WriteAtomic: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.content) {
				t.Fatalf("file holds %d bytes, want %d", len(got), len(tt.content))
			}
			st, _ := os.Stat(path)
			if st.Mode().Perm() != tt.perm {
				t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.perm)
			}
			if names := entries(t, dir); len(names) != 1 {
				t.Errorf("folder holds %q, want only out.csv", names)
			}
		})
	}
}

func TestWriteAtomicFailureLeavesTheOldFile(t *testing.T) {
	errDisk := errors.New("disk on fire")
	tests := []struct {
		name    string
		old     []byte // nil: there was no file
		written int    // bytes fn writes before it fails
	}{
		{name: "fails before writing, old file kept", old: []byte("precious\n"), written: 0},
		{name: "fails half way, old file kept", old: []byte("precious\n"), written: 100},
		{name: "fails after more than the buffer, old file kept", old: []byte("precious\n"), written: 1 << 20},
		{name: "fails with no old file: none is created", written: 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.csv")
			if tt.old != nil {
				if err := os.WriteFile(path, tt.old, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			err := fsx.WriteAtomic(path, 0o600, func(w io.Writer) error {
				if _, err := w.Write(bytes.Repeat([]byte("x"), tt.written)); err != nil {
					return err
				}
				return errDisk
			})
			if !errors.Is(err, errDisk) {
				t.Fatalf("WriteAtomic error %v, want it to wrap fn's error", err)
			}
			got, readErr := os.ReadFile(path)
			if tt.old == nil {
				if !errors.Is(readErr, os.ErrNotExist) {
					t.Fatalf("failed write created the file (%v)", readErr)
				}
			} else if !bytes.Equal(got, tt.old) {
				t.Fatalf("failed write changed the file: %q", got)
			}
			want := 0
			if tt.old != nil {
				want = 1
			}
			if names := entries(t, dir); len(names) != want {
				t.Fatalf("folder holds %q after a failed write, want no temporary file", names)
			}
		})
	}
}

func TestWriteAtomicMissingFolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "out.csv")
	called := false
	err := fsx.WriteAtomic(path, 0o600, func(io.Writer) error { called = true; return nil })
	if err == nil {
		t.Fatal("WriteAtomic into a missing folder succeeded")
	}
	if called {
		t.Error("fn was called although the file could not be created")
	}
}

func TestSyncDir(t *testing.T) {
	if err := fsx.SyncDir(t.TempDir()); err != nil {
		t.Fatalf("SyncDir: %v", err)
	}
	if err := fsx.SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("SyncDir of a missing folder succeeded")
	}
}
