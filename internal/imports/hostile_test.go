package imports

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestCapWarnings(t *testing.T) {
	for _, n := range []int{0, 3, 4, 1000} {
		var got []string
		add, done := capWarnings(func(m string) { got = append(got, m) }, 3)
		for i := range n {
			add(fmt.Sprint("w", i))
		}
		done("f.csv")
		want := []string{}
		for i := range min(n, 3) {
			want = append(want, fmt.Sprint("w", i))
		}
		if n > 3 {
			want = append(want, fmt.Sprintf("f.csv: %d more warnings not shown", n-3))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d warnings: reported %q, want %q", n, got, want)
		}
	}
}

// Directory mode names what is not a regular file in the folder and goes
// on; a named pipe is never opened.
func TestPathsSkipsAPipeWithAWarning(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "a.csv"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "b.csv"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b.csv", filepath.Join(dir, "c.csv")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	var warned, ran []string
	fo := Folders{Warn: func(m string) { warned = append(warned, m) }}
	Paths([]string{dir}, fo, func(path, _ string) (*Result, error) {
		ran = append(ran, filepath.Base(path))
		return &Result{File: path, Read: 1, Applied: 1}, nil
	}, func(Outcome) {})
	if !slices.Equal(ran, []string{"b.csv"}) {
		t.Errorf("imported %q, want only b.csv", ran)
	}
	want := []string{
		filepath.Join(dir, "a.csv") + " is a named pipe (FIFO): not a regular file, skipped",
		filepath.Join(dir, "c.csv") + " is a symbolic link: not a regular file, skipped",
	}
	if !slices.Equal(warned, want) {
		t.Errorf("warned %q, want %q", warned, want)
	}
}
