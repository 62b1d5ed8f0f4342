package imports

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// squeezeRef is the squeezer's rule written byte by byte: what passes on,
// and the line of each byte passed on.
func squeezeRef(in []byte) (out []byte, lines []int) {
	in = bytes.TrimPrefix(in, []byte("\xef\xbb\xbf"))
	line, pendingLines := 1, 0
	inStr, esc, inSpace := false, false, false
	for _, c := range in {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			case c == '\n':
				// Counted from the next byte on, as the decoder names the
				// line of what follows.
				pendingLines++
				out = append(out, c)
				lines = append(lines, line)
				line += pendingLines
				pendingLines = 0
				continue
			}
		case isSpace(c):
			if c == '\n' {
				pendingLines++
			}
			if inSpace {
				continue
			}
			inSpace = true
			out = append(out, c)
			lines = append(lines, line)
			continue
		default:
			inSpace = false
			inStr = c == '"'
		}
		line += pendingLines
		pendingLines = 0
		out = append(out, c)
		lines = append(lines, line)
	}
	return out, lines
}

// The squeezer passes on what the byte-by-byte rule does, read in pieces
// of any size, and names the same lines.
func FuzzSqueezer(f *testing.F) {
	for _, s := range []string{"{\"a\": 1}\n\n  {\"b\": \"x\\\"\n y\"}\n", "\xef\xbb\xbf[ 1 ,\t2 ]", "\"\\\\\"  \n\n\"", "   \n\n\n{}"} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		want, wantLines := squeezeRef(in)
		s := &squeezer{r: iotest.HalfReader(bytes.NewReader(in))}
		var got []byte
		buf := make([]byte, int(chunk)%64+1)
		for {
			n, err := s.Read(buf)
			got = append(got, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%q: passed on %q, want %q", in, got, want)
		}
		for off := range got {
			if l := s.line(int64(off)); l != wantLines[off] {
				t.Fatalf("%q: byte %d (%q) on line %d, want %d", in, off, got[off], l, wantLines[off])
			}
		}
	})
}
