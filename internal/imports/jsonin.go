package imports

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// line). What it holds is bounded by the largest object, not the file.
func EachJSON(r io.Reader, what string, fn func(n, line int, raw json.RawMessage) error) error {
	js := NewJSONStream(r)
	bad := func(err error) error { return fmt.Errorf("%w: %v", ErrFile, js.Invalid(err)) }
	first, err := js.First()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: no %s in the file", ErrFile, what)
		}
		return err
	}
	n := 0
	one := func() error {
		raw, line, err := js.Value()
		if err != nil {
			return bad(err)
		}
		n++
		return fn(n, line, raw)
	}
	switch first {
	case '[':
		if _, err := js.Dec.Token(); err != nil {
			return bad(err)
		}
		for js.Dec.More() {
			if err := one(); err != nil {
				return err
			}
		}
		if _, err := js.Dec.Token(); err != nil {
			return bad(err)
		}
	case '{':
		for js.Dec.More() {
			if err := one(); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: invalid JSON at line 1: want an %s object, an array of them, or one a line (NDJSON)", ErrFile, strings.TrimSuffix(what, "s"))
	}
	if err := js.End(); errors.Is(err, ErrMore) {
		return bad(fmt.Errorf("more after the end of the %s", what))
	} else if err != nil {
		return bad(err)
	}
	return nil
}

// JSONStream decodes a partner's JSON file value by value, holding no
// more than the value it decodes (the file's white space is squeezed),
// and names the line of a value or of an error. Dec is the decoder, for
// its tokens.
type JSONStream struct {
	Dec *json.Decoder
	sq  *squeezer
	br  *bufio.Reader
}

// NewJSONStream reads JSON text from r (a UTF-8 byte order mark is
// dropped).
func NewJSONStream(r io.Reader) *JSONStream {
	sq := &squeezer{r: r}
	br := bufio.NewReader(sq)
	return &JSONStream{Dec: json.NewDecoder(br), sq: sq, br: br}
}

// First is the first character of the text, without reading it: io.EOF
// for a file of white space only.
func (s *JSONStream) First() (byte, error) {
	// Squeezed, the white space before the first value is one byte at
	// most; it stays for the decoder, whose offsets are then the
	// squeezer's.
	head, err := s.br.Peek(2)
	if len(head) > 0 && isSpace(head[0]) {
		head = head[1:]
	}
	if len(head) == 0 {
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	return head[0], nil
}

// Value decodes the next value and says the line it starts on.
func (s *JSONStream) Value() (raw json.RawMessage, line int, err error) {
	if err := s.Dec.Decode(&raw); err != nil {
		return nil, 0, err
	}
	return raw, s.sq.line(s.Dec.InputOffset() - int64(len(raw))), nil
}

// ErrMore is text after the last value of a JSON file.
var ErrMore = errors.New("more after the end")

// End checks that nothing but white space follows what was decoded.
func (s *JSONStream) End() error {
	if _, err := s.Dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = ErrMore
		}
		return err
	}
	return nil
}

// Invalid is the error err of the decoder as the user reads it: where in
// the file the JSON stopped being valid.
func (s *JSONStream) Invalid(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: the file ends in the middle of a value")
	}
	off := s.Dec.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// The decoder counts the offset of an error inside a value over
		// the bytes of every value it scanned, not the file's; the value
		// is still in its buffer, and scanning it again gives the error's
		// place in it.
		var v json.RawMessage
		if errors.As(json.NewDecoder(s.Dec.Buffered()).Decode(&v), &se) && se.Offset > 0 {
			off += se.Offset - 1
		}
	}
	return fmt.Errorf("invalid JSON at line %d: %v", s.sq.line(off), err)
}

// squeezer passes JSON text on without a leading UTF-8 byte order mark
// and with every run of white space outside strings cut to its first
// byte, and counts the lines of what it read, so that an offset in what
// it passed on can be named by its line. json.Decoder keeps the white
// space before a value in its buffer until the value ends, so a file of
// blank lines would otherwise be held whole; and of the line ends only
// those after the last offset asked about are kept.
type squeezer struct {
	r       io.Reader
	in      []byte // read from r
	pend    []byte // of in, not yet passed on
	err     error  // r's error, once pend is passed on
	started bool
	out     int64 // bytes passed on
	inStr   bool
	esc     bool
	inSpace bool
	spaceAt int64 // where the run of white space going on was passed on
	// marks are the line ends at offsets after the last one asked about,
	// marks[i].n of them at offset marks[i].off; before is the number of
	// line ends before those.
	marks  []lineMark
	before int
}

type lineMark struct {
	off int64
	n   int
}

func (s *squeezer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := s.squeeze(p)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// squeeze passes on what it can of the bytes read; none when they were
// all white space that goes.
func (s *squeezer) squeeze(p []byte) (int, error) {
	for len(s.pend) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		if s.in == nil {
			s.in = make([]byte, 32*1024)
		}
		n, err := io.ReadAtLeast(s.r, s.in, 1)
		if !s.started {
			// Enough to see a byte order mark.
			s.started = true
			for n < 3 && err == nil {
				var m int
				m, err = s.r.Read(s.in[n:])
				n += m
			}
			if bytes.HasPrefix(s.in[:n], []byte("\xef\xbb\xbf")) {
				copy(s.in, s.in[3:n])
				n -= 3
			}
		}
		s.pend, s.err = s.in[:n], err
	}
	w := 0
	for len(s.pend) > 0 && w < len(p) {
		// A run of bytes that change no state goes across in one copy.
		if n := plainRun(s.pend[:min(len(s.pend), len(p)-w)], s.inStr, s.esc); n > 0 {
			copy(p[w:], s.pend[:n])
			s.pend = s.pend[n:]
			w += n
			if !s.inStr {
				s.inSpace = false
			}
			continue
		}
		c := s.pend[0]
		s.pend = s.pend[1:]
		at := s.out + int64(w)
		switch {
		case s.inStr:
			switch {
			case s.esc:
				s.esc = false
			case c == '\\':
				s.esc = true
			case c == '"':
				s.inStr = false
			case c == '\n':
				s.mark(at) // invalid in a string: the decoder names its line
			}
		case isSpace(c):
			if !s.inSpace {
				s.inSpace, s.spaceAt = true, at
			}
			if c == '\n' {
				s.mark(s.spaceAt)
			}
			if at != s.spaceAt {
				continue
			}
		default:
			s.inSpace = false
			s.inStr = c == '"'
		}
		p[w] = c
		w++
	}
	s.out += int64(w)
	return w, nil
}

// plainRun is the length of the run at the start of b that the squeezer
// passes on as it is, changing no state: in a string (not after a
// backslash), all but a backslash, a quote and a line end; outside, all
// but white space and a quote.
func plainRun(b []byte, inStr, esc bool) int {
	switch {
	case esc:
		return 0
	case inStr:
		for i, c := range b {
			if c == '"' || c == '\\' || c == '\n' {
				return i
			}
		}
	default:
		for i, c := range b {
			if c == '"' || isSpace(c) {
				return i
			}
		}
	}
	return len(b)
}

// mark counts a line end at offset off of what was passed on.
func (s *squeezer) mark(off int64) {
	if k := len(s.marks) - 1; k >= 0 && s.marks[k].off == off {
		s.marks[k].n++
		return
	}
	s.marks = append(s.marks, lineMark{off: off, n: 1})
}

// line is the line of offset off of what was passed on. Offsets are asked
// about in file order: the line ends before off are forgotten.
func (s *squeezer) line(off int64) int {
	i := 0
	for i < len(s.marks) && s.marks[i].off < off {
		s.before += s.marks[i].n
		i++
	}
	s.marks = append(s.marks[:0], s.marks[i:]...)
	return s.before + 1
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

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
