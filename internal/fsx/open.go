package fsx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped by OpenRegular's refusal of a path that is not
// a regular file.
var ErrNotRegular = errors.New("not a regular file: posbridge reads only regular files")

// OpenRegular opens path for reading only if it is a regular file (or a
// symbolic link to one). A named pipe would block the open, and every read,
// until some other process writes to it, and no signal ends a process
// waiting in open; a device or socket never ends. So the path is checked
// before opening, and the open itself does not wait (O_NONBLOCK) and checks
// the opened file again, so that a pipe put in the file's place between the
// two cannot hang the reader either. Other errors are those of os.Open.
func OpenRegular(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		// Said as os.Open says it: the file is what could not be opened.
		if pe, ok := err.(*fs.PathError); ok {
			pe.Op = "open"
		}
		return nil, err
	}
	if err := checkRegular(path, st.Mode()); err != nil {
		return nil, err
	}
	return openChecked(path)
}

// openChecked opens path without waiting for a writer and refuses it
// unless the file opened is a regular file.
func openChecked(path string) (*os.File, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err == nil {
		err = checkRegular(path, st.Mode())
	}
	if err == nil {
		// Reads of a regular file wait for the disk as they should.
		err = syscall.SetNonblock(fd, false)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkRegular fails with ErrNotRegular, saying what path is, unless mode
// is that of a regular file.
func checkRegular(path string, mode fs.FileMode) error {
	if mode.IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is %s: %w", path, Kind(mode), ErrNotRegular)
}

// Kind names what a file of mode is, for messages.
func Kind(mode fs.FileMode) string {
	switch t := mode.Type(); {
	case t == 0:
		return "a regular file"
	case t&fs.ModeDir != 0:
		return "a folder"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	default:
		return "a special file"
	}
}

// ErrEncoding is wrapped by OpenText's refusal of a file in a text
// encoding that posbridge does not read.
var ErrEncoding = errors.New("save it as UTF-8")

// OpenText opens path as OpenRegular does and refuses a UTF-16 or UTF-32
// file, told by its byte order mark or by the NUL bytes between the
// letters of its first line: read as UTF-8 its header would only be
// reported as missing every column. The file is returned at its start.
func OpenText(path string) (*os.File, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	var head [32]byte
	n, err := io.ReadFull(f, head[:])
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		if enc := sniffEncoding(head[:n]); enc != "" {
			err = fmt.Errorf("%s is %s: %w", path, enc, ErrEncoding)
		} else {
			_, err = f.Seek(0, io.SeekStart)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ErrTooLarge is ReadText's refusal of a file larger than it takes.
var ErrTooLarge = errors.New("file too large")

// ReadText reads the text file at path (OpenText) whole when it has at
// most max bytes; a larger one is refused with ErrTooLarge, read no
// further than max+1 bytes.
func ReadText(path string, max int64) ([]byte, error) {
	f, err := OpenText(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, ErrTooLarge
	}
	return data, nil
}

// sniffEncoding names the UTF-16 or UTF-32 encoding that b, the start of
// a file, is written in, or returns "".
func sniffEncoding(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte{0xff, 0xfe, 0, 0}):
		return "UTF-32 (little endian)"
	case bytes.HasPrefix(b, []byte{0, 0, 0xfe, 0xff}):
		return "UTF-32 (big endian)"
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
		return "UTF-16 (little endian)"
	case bytes.HasPrefix(b, []byte{0xfe, 0xff}):
		return "UTF-16 (big endian)"
	}
	// Without a byte order mark: ASCII letters with NUL bytes between them
	// in the pattern of one of the encodings, over the whole sample.
	for _, e := range []struct {
		name  string
		width int
		at    int // the position of the letter in each unit
	}{
		{"UTF-32 (little endian)", 4, 0}, {"UTF-32 (big endian)", 4, 3},
		{"UTF-16 (little endian)", 2, 0}, {"UTF-16 (big endian)", 2, 1},
	} {
		units := len(b) / e.width
		if units < 2 {
			continue
		}
		match := true
		for i := 0; i < units*e.width && match; i++ {
			c := b[i]
			if i%e.width == e.at {
				match = c != 0 && c < 0x80
			} else {
				match = c == 0
			}
		}
		if match {
			return e.name
		}
	}
	return ""
}

// ContextReader reads r until ctx is done, then fails every read with
// ctx's error, so that a reader that does nothing else between reads
// stops when the command is interrupted.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return &ctxReader{ctx: ctx, r: r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
