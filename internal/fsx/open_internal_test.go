package fsx

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A named pipe put in place of the file after OpenRegular looked at it is
// refused by the open itself, without waiting for a writer.
func TestOpenCheckedRefusesAPipeWithoutWaiting(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "swapped.csv")
	if err := syscall.Mkfifo(fifo, 0o640); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openChecked(fifo)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("openChecked of a pipe: %v, want ErrNotRegular", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("openChecked waits for a writer")
	}
}

func TestSniffEncoding(t *testing.T) {
	utf16le := func(s string) []byte {
		var b []byte
		for _, r := range s {
			b = append(b, byte(r), 0)
		}
		return b
	}
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"UTF-8", []byte("item,description\nA,Shirt\n"), ""},
		{"UTF-8 with BOM", []byte("\xef\xbb\xbfitem,description\n"), ""},
		{"empty", nil, ""},
		{"one byte", []byte("a"), ""},
		{"NUL inside a field", []byte("item,description\nA,Sh\x00rt\n"), ""},
		{"UTF-16 LE with BOM", append([]byte{0xff, 0xfe}, utf16le("item")...), "UTF-16 (little endian)"},
		{"UTF-16 BE with BOM", []byte{0xfe, 0xff, 0, 'i', 0, 't'}, "UTF-16 (big endian)"},
		{"UTF-32 LE with BOM", []byte{0xff, 0xfe, 0, 0, 'i', 0, 0, 0}, "UTF-32 (little endian)"},
		{"UTF-32 BE with BOM", []byte{0, 0, 0xfe, 0xff, 0, 0, 0, 'i'}, "UTF-32 (big endian)"},
		{"UTF-16 LE without BOM", utf16le("item,sku,description\n"), "UTF-16 (little endian)"},
		{"UTF-16 BE without BOM", []byte{0, 'i', 0, 't', 0, 'e', 0, 'm'}, "UTF-16 (big endian)"},
		{"UTF-32 LE without BOM", []byte{'i', 0, 0, 0, 't', 0, 0, 0}, "UTF-32 (little endian)"},
		{"UTF-32 BE without BOM", []byte{0, 0, 0, 'i', 0, 0, 0, 't'}, "UTF-32 (big endian)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sniffEncoding(tt.head); got != tt.want {
				t.Fatalf("sniffEncoding(%q) = %q, want %q", tt.head, got, tt.want)
			}
		})
	}
}
