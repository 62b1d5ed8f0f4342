package fsx_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/fsx"
)

func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "items.csv")
	if err := os.WriteFile(regular, []byte("item\nA\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "pipe.csv")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "pipe-link.csv")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tests := []struct {
		path string
		want string // "" opens; else the error says this
	}{
		{path: regular},
		{path: link},
		{path: fifo, want: "pipe.csv is a named pipe (FIFO): not a regular file"},
		{path: fifoLink, want: "pipe-link.csv is a named pipe (FIFO)"},
		{path: dir, want: "is a folder: not a regular file"},
		{path: "/dev/null", want: "/dev/null is a device"},
		{path: sock, want: "s.sock is a socket"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			done := make(chan struct{})
			var f *os.File
			var err error
			go func() { f, err = fsx.OpenRegular(tt.path); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("OpenRegular blocks")
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("OpenRegular: %v", err)
				}
				defer f.Close()
				b, err := io.ReadAll(f)
				if err != nil || string(b) != "item\nA\n" {
					t.Fatalf("read %q, %v", b, err)
				}
				return
			}
			if err == nil {
				f.Close()
				t.Fatal("OpenRegular opened it")
			}
			if !errors.Is(err, fsx.ErrNotRegular) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want ErrNotRegular saying %q", err, tt.want)
			}
		})
	}
	if _, err := fsx.OpenRegular(filepath.Join(dir, "missing.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v, want os.ErrNotExist", err)
	}
}

func TestOpenText(t *testing.T) {
	dir := t.TempDir()
	utf8 := filepath.Join(dir, "utf8.csv")
	utf16 := filepath.Join(dir, "utf16.csv")
	os.WriteFile(utf8, []byte("item\nA\n"), 0o640)
	os.WriteFile(utf16, []byte("\xff\xfei\x00t\x00e\x00m\x00\n\x00"), 0o640)
	f, err := fsx.OpenText(utf8)
	if err != nil {
		t.Fatalf("OpenText of a UTF-8 file: %v", err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "item\nA\n" {
		t.Fatalf("read %q, want the whole file from its start", b)
	}
	_, err = fsx.OpenText(utf16)
	if want := utf16 + " is UTF-16 (little endian): save it as UTF-8"; err == nil || err.Error() != want || !errors.Is(err, fsx.ErrEncoding) {
		t.Fatalf("OpenText of a UTF-16 file: %v, want %q", err, want)
	}
	if _, err := fsx.OpenText(dir); !errors.Is(err, fsx.ErrNotRegular) {
		t.Fatalf("OpenText of a folder: %v, want ErrNotRegular", err)
	}
}

func TestReadText(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "request.xml")
	os.WriteFile(path, []byte("<Message/>"), 0o640)
	if b, err := fsx.ReadText(path, 10); err != nil || string(b) != "<Message/>" {
		t.Fatalf("ReadText of 10 bytes at most 10: %q, %v", b, err)
	}
	if b, err := fsx.ReadText(path, 9); !errors.Is(err, fsx.ErrTooLarge) || b != nil {
		t.Fatalf("ReadText of 10 bytes at most 9: %q, %v, want ErrTooLarge", b, err)
	}
	if _, err := fsx.ReadText(dir, 10); !errors.Is(err, fsx.ErrNotRegular) {
		t.Fatalf("ReadText of a folder: %v, want ErrNotRegular", err)
	}
}

func TestContextReader(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := fsx.ContextReader(ctx, strings.NewReader("0123456789"))
	b := make([]byte, 4)
	if n, err := r.Read(b); n != 4 || err != nil {
		t.Fatalf("read %d, %v before the cancel", n, err)
	}
	cancel()
	if n, err := r.Read(b); n != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("read %d, %v after the cancel, want context.Canceled", n, err)
	}
}
