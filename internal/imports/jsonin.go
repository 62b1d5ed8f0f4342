package imports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Flex is a JSON value read as text: a string (trimmed), a number or a
// boolean as written, null as "". Partners send numbers as strings and the
// other way round.
type Flex string

// UnmarshalJSON reads any JSON scalar; an object or array is an error.
func (f *Flex) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = Flex(strings.TrimSpace(s))
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return errors.New("want a value, not an object or array")
	default:
		*f = Flex(b)
	}
	return nil
}

// EachJSON reads a partner's JSON upload: one object, an array of
// objects, or objects one after the other (NDJSON), of what (orders,
// events, returns). It calls fn with each object, its number in the file
// (from 1) and the line it starts on. Invalid JSON, an empty file or
// anything but objects or an array fails the file (ErrFile, naming the
// line).
func EachJSON(r io.Reader, what string, fn func(n, line int, raw json.RawMessage) error) error {
	lr := &lineReader{r: r}
	br := bufio.NewReader(lr)
	bom := int64(0)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		bom = 3
	}
	dec := json.NewDecoder(br)
	bad := func(err error) error {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: invalid JSON: the file ends in the middle of a value", ErrFile)
		}
		off := dec.InputOffset()
		var se *json.SyntaxError
		if errors.As(err, &se) {
			off = se.Offset
		}
		return fmt.Errorf("%w: invalid JSON at line %d: %v", ErrFile, lr.line(bom+off), err)
	}
	first, err := peekByte(br)
	if err != nil {
		return fmt.Errorf("%w: no %s in the file", ErrFile, what)
	}
	n := 0
	one := func() error {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad(err)
		}
		n++
		return fn(n, lr.line(bom+dec.InputOffset()-int64(len(raw))), raw)
	}
	switch first {
	case '[':
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
		for dec.More() {
			if err := one(); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return bad(err)
		}
	case '{':
		for dec.More() {
			if err := one(); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: invalid JSON at line 1: want an %s object, an array of them, or one a line (NDJSON)", ErrFile, strings.TrimSuffix(what, "s"))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = fmt.Errorf("more after the end of the %s", what)
		}
		return bad(err)
	}
	return nil
}

// lineReader counts the lines of what passes through it, so that a byte
// offset can be named by its line.
type lineReader struct {
	r   io.Reader
	off int64
	nl  []int64
}

func (l *lineReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i, b := range p[:n] {
		if b == '\n' {
			l.nl = append(l.nl, l.off+int64(i))
		}
	}
	l.off += int64(n)
	return n, err
}

func (l *lineReader) line(off int64) int {
	return sort.Search(len(l.nl), func(i int) bool { return l.nl[i] >= off }) + 1
}

func peekByte(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\r' && b != '\n' {
			return b, br.UnreadByte()
		}
	}
}
