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
	"unicode"
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

// Decode reads one record of a partner's upload into v (encoding/json,
// whose keys match in any letter case) after checking that no object in
// it, at any depth, gives a key twice, in the same or another letter case:
// encoding/json would keep the last one silently, and a partner's message
// that says two things of one field is ambiguous, not a choice of ours.
func Decode(raw json.RawMessage, v any) error {
	if err := CheckKeys(raw); err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// CheckKeys fails for a JSON value in which an object gives a key twice,
// in any letter case, naming both spellings and where the object is.
func CheckKeys(raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		keys   map[string]string // folded key -> the key as written
		object bool
		path   string
		expect bool // an object: the next token is a key
	}
	var stack []*frame
	path := func() string {
		if len(stack) == 0 || stack[len(stack)-1].path == "" {
			return "the record"
		}
		return stack[len(stack)-1].path
	}
	last := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			key, _ := tok.(string)
			folded := foldKey(key)
			if prev, ok := top.keys[folded]; ok {
				if prev == key {
					return fmt.Errorf("key %q is given twice in %s: ambiguous, give it once", key, path())
				}
				return fmt.Errorf("keys %q and %q in %s are one field in two spellings: ambiguous, give it once", prev, key, path())
			}
			top.keys[folded] = key
			top.expect = false
			last = key
			continue
		}
		if top != nil && top.object {
			top.expect = true
		}
		child := last
		if top != nil && !top.object {
			child = top.path + "[]"
		} else if top != nil && top.path != "" {
			child = top.path + "." + last
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]string{}, object: true, path: child, expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: child})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// foldKey maps every key that encoding/json takes for key (bytes.EqualFold:
// simple Unicode case folding, so "ſ" is "s") to one string: each rune
// becomes the smallest rune of its folding orbit.
func foldKey(key string) string {
	return strings.Map(func(r rune) rune {
		m := r
		for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
			m = min(m, c)
		}
		return m
	}, key)
}
